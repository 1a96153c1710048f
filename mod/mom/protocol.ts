/**
 * MOM wire vocabulary (append-only). Applications talk to their daemon; daemons talk to
 * the broker. Every frame is a MessagePack map with `t`, framed as in `mod/wire`; requests
 * carry `rid` and replies echo it. {@linkcode MOM_FRAMES} lists every frame: it is the
 * table in docs/mom.md (tests/protocol_docs_test.ts compares the two, and the frame
 * handlers of the daemon and the broker with it).
 *
 * @module
 */
import type { FrameSpec } from "../wire/mod.ts";

const APP = "app → daemon";
const TO_BROKER = "daemon → broker";
const TO_DAEMON = "broker → daemon";

/** Every frame of the MOM protocol. */
export const MOM_FRAMES: readonly FrameSpec[] = [
  {
    t: "create",
    route: APP,
    fields: "",
    reply: "created {user}",
    note: "a new user on this daemon",
  },
  {
    t: "attach",
    route: APP,
    fields: "user",
    reply: "attached {user, subs}",
    note: "use an existing user of this daemon",
  },
  {
    t: "subscribe",
    route: APP,
    fields: "user, topic, own?",
    reply: "ok",
    note:
      "`topic` is a pattern (`+` one level, `#` the rest); `own`: also the user's own publications",
  },
  {
    t: "unsubscribe",
    route: APP,
    fields: "user, topic",
    reply: "ok",
    note: "drops a subscription",
  },
  {
    t: "publish",
    route: APP,
    fields: "user, topic, payload, meta?",
    reply: "published {id}",
    note:
      "answered once stored on the daemon's disk; without `rid` no reply (`flush` proves it); " +
      "`meta`: bytes stored and routed with it (MQTT QoS, retain, properties)",
  },
  {
    t: "flush",
    route: APP,
    fields: "",
    reply: "flushed",
    note: "answered once every earlier publish of this connection is stored",
  },
  {
    t: "receive",
    route: APP,
    fields: "user, after, max, wait, from?",
    reply: "messages {messages}",
    note:
      "long poll; `after` acknowledges (deletes) the inbox entries up to that `seq`; the reply " +
      "starts after `from` (≥ `after`, default `after`); messages are `{seq, id, topic, payload, from, meta?}`",
  },
  {
    t: "retained",
    route: APP,
    fields: "user, topic",
    reply: "ok {count}",
    note: "the broker's retained messages matching `topic` go into the user's inbox",
  },
  { t: "destroy", route: APP, fields: "user", reply: "ok {removed}", note: "deletes the user" },
  {
    t: "attach",
    route: TO_BROKER,
    fields: "epoch, broker, acked",
    reply: "attach.ok {broker, seen, acked, others}",
    note: "first frame of a broker link: the daemon's store epoch, the broker epoch it knows, " +
      "the last delivery it committed; the reply gives the broker's epoch, the last publication it stored " +
      "and whether a user of another daemon has a subscription",
  },
  {
    t: "user.create",
    route: TO_BROKER,
    fields: "",
    reply: "user.created {user}",
    note: "a catalogue entry for a new user of this daemon",
  },
  {
    t: "user.attach",
    route: TO_BROKER,
    fields: "user",
    reply: "user.attached {user, subs, own}",
    note: "a user's subscriptions (`own`: those that take the user's own publications)",
  },
  {
    t: "user.where",
    route: TO_BROKER,
    fields: "user",
    reply: "user.where {user, daemon}",
    note: "the daemon a user lives on",
  },
  {
    t: "user.destroy",
    route: TO_BROKER,
    fields: "user",
    reply: "ok {removed}",
    note: "removes a user and its subscriptions",
  },
  {
    t: "sub.add",
    route: TO_BROKER,
    fields: "user, topic, own?",
    reply: "ok",
    note: "a subscription",
  },
  { t: "sub.remove", route: TO_BROKER, fields: "user, topic", reply: "ok", note: "drops one" },
  {
    t: "stream.state",
    route: TO_BROKER,
    fields: "",
    reply: "stream.state {seen, dseq}",
    note: "the link's heartbeat: last publication stored, last delivery sent",
  },
  {
    t: "retained",
    route: TO_BROKER,
    fields: "user, topic",
    reply: "retained {messages}",
    note: "retained messages matching `topic`, as `{id, topic, payload, from, meta}`",
  },
  {
    t: "pub",
    route: TO_BROKER,
    fields: "seq, user, topic, payload, local?, meta?",
    reply: "",
    note: "one publication (stream, acknowledged by `puback`); `local`: the daemon delivered it " +
      "to its own users, the broker routes it to the other daemons only",
  },
  {
    t: "pubs",
    route: TO_BROKER,
    fields: "seq, users, topics, payloads, local?, metas?",
    reply: "",
    note: "publications `seq`, `seq + 1`, … as parallel arrays in one frame (what a daemon sends)",
  },
  {
    t: "dack",
    route: TO_BROKER,
    fields: "dseq",
    reply: "",
    note: "cumulative acknowledgement of deliveries",
  },
  {
    t: "interest.ok",
    route: TO_BROKER,
    fields: "n",
    reply: "",
    note: "the daemon applies `interest` notice `n` (and the ones before it) from now on",
  },
  {
    t: "deliver",
    route: TO_DAEMON,
    fields: "dseq, id, topic, payload, from, users, meta?",
    reply: "",
    note: "a publication for the daemon's `users` (stream, acknowledged by `dack`)",
  },
  {
    t: "puback",
    route: TO_DAEMON,
    fields: "seq",
    reply: "",
    note: "cumulative acknowledgement: publications up to `seq` are stored",
  },
  {
    t: "interest",
    route: TO_DAEMON,
    fields: "others, n",
    reply: "",
    note:
      "whether a user of another daemon has a subscription changed (sent to attached daemons); " +
      "a `sub.add` that made it true is answered once `interest.ok` came back (or after 2 s)",
  },
];

/** The routes of {@linkcode MOM_FRAMES}. */
export const MOM_ROUTES = { app: APP, toBroker: TO_BROKER, toDaemon: TO_DAEMON } as const;

/** Error codes of the MOM (besides the wire's own). */
export const MomErrorCode = {
  /** A topic or pattern breaks the rules. */
  BadTopic: "bad_topic",
  /** No such user. */
  UnknownUser: "unknown_user",
  /** The user lives on another daemon. */
  WrongDaemon: "wrong_daemon",
  /** Already subscribed to that topic. */
  AlreadySubscribed: "already_subscribed",
  /** Not subscribed to that topic. */
  NotSubscribed: "not_subscribed",
  /** The daemon has no broker link right now (catalogue changes need the broker). */
  BrokerUnavailable: "broker_unavailable",
} as const;

/** Largest payload of one publication, in bytes. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** Most messages one `receive` reply carries. */
export const MAX_RECEIVE_BATCH = 2_000;

/** Most stored rows one pump pass reads from SQLite before yielding. */
export const PUMP_CHUNK = 1_000;

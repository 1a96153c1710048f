/**
 * MOM wire vocabulary (append-only). Applications talk to their daemon; daemons talk to
 * the broker. Every frame is a MessagePack map with `t`, framed as in `mod/wire`.
 *
 * Application → daemon (requests carry `rid`, replies echo it):
 * - `create {}` → `created {user}`; `attach {user}` → `attached {user}`
 * - `subscribe {user, topic, own?}` / `unsubscribe {user, topic}` → `ok {}`
 * - `publish {user, topic, payload}` → `published {id}` once stored on the daemon's disk
 *   (without `rid`: no reply; `flush` then proves it was stored)
 * - `flush {}` → `flushed {}` after every earlier publish of this connection is stored
 * - `receive {user, after, max, wait, from?}` →
 *   `messages {messages:[{seq,id,topic,payload,from,meta?}]}`; `after` acknowledges (deletes)
 *   the inbox entries up to that `seq`; `from` (≥ `after`, default `after`): the reply starts
 *   after it (a gateway with deliveries in flight)
 * - `publish {…, meta?}`: `meta`, bytes routed and stored with the publication (MQTT's QoS,
 *   retain flag and properties, see `mqtt/meta.ts`; the broker reads its retain bit)
 * - `retained {user, topic}` → `ok {count}`: the broker's retained messages matching the
 *   pattern `topic` go into the user's inbox
 * - `destroy {user}` → `ok {}`
 *
 * Daemon → broker: `attach {epoch, acked}` → `attach.ok {epoch, seen}`; `user.create`,
 * `user.attach` (→ `user.attached {subs, own}`), `user.where`, `user.destroy`, `sub.add`,
 * `sub.remove`, `stream.state` (→ `{seen, dseq}`), `retained {user, topic}` (→
 * `retained {messages:[{id, topic, payload, from, meta}]}`) (requests);
 * `pub {seq, user, topic, payload, local?}` (stream, acknowledged by `puback {seq}`,
 * cumulative; `local`: the daemon delivered it to its own users, the broker routes it to the
 * other daemons only); `pubs {seq, users, topics, payloads, local?, metas?}` (publications `seq`,
 * `seq + 1`, … in one frame, parallel arrays; what a daemon sends); `dack {dseq}`
 * (cumulative acknowledgement of deliveries).
 *
 * Broker → daemon: `deliver {dseq, id, topic, payload, from, users, meta?}` (stream),
 * `puback {seq}`.
 *
 * @module
 */

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

/**
 * The `daemon` role: one per machine. Local applications connect to it (loopback TCP, and
 * a Unix socket with `--socket`); it multiplexes all local users over one broker link.
 *
 * Guarantees: a publication is acknowledged to its application (`published {id}`) only
 * once it is in the daemon's SQLite outbox; the outbox is streamed to the broker in seq
 * order and an entry is deleted only when the broker acknowledged it (`puback`), so
 * publications made while the broker is away, or before a crash, are sent when the link is
 * back. Deliveries from the broker are stored in the users' inboxes together with the
 * delivery seq in one transaction before they are acknowledged (`dack`), so a resent
 * delivery is recognised and stored once. An inbox entry is deleted only when the
 * application acknowledges it (the `after` of its next `receive`).
 *
 * The daemon keeps its own users' subscriptions too (the broker confirmed each one): a
 * publication by a local user goes into the inboxes of the local users it reaches in the
 * same commit as its outbox entry, and the broker routes it to the other daemons only.
 *
 * @module
 */
import { ConfigError, type HostPort, parseHostPort } from "../config/mod.ts";
import {
  aborted,
  defineRole,
  linkSecurity,
  type RoleContext,
  startNodeServer,
} from "../process/mod.ts";
import {
  Backoff,
  ENCODED,
  encodeValue,
  ErrorCode,
  fieldBool,
  fieldBytes,
  fieldInt,
  fieldString,
  type FrameServer,
  heartbeat,
  type Message,
  type PeerSession,
  type PreEncoded,
  ProtocolError,
  RemoteError,
  retryConnect,
  RpcClient,
  sleep,
} from "../wire/mod.ts";
import { DaemonStore, type Delivery, type InboxEntry, type OutboxEntry } from "./daemon_store.ts";
import { MAX_PAYLOAD_BYTES, MAX_RECEIVE_BATCH, MomErrorCode, PUMP_CHUNK } from "./protocol.ts";
import { Tick } from "../process/mod.ts";
import { IdleCheckpoint } from "./idle_checkpoint.ts";
import { checkPattern, checkTopic, TopicError } from "./topic.ts";
import { SubscriptionIndex } from "./subscriptions.ts";
import {
  prepareDataDir,
  type StorageError,
  STORE_FAILED,
  StoreFailureLatch,
} from "../storage/mod.ts";
import { mqttAddress, MqttGateway, mqttUsers } from "./mqtt/gateway.ts";

interface Waiter {
  session: PeerSession;
  msg: Message;
  user: number;
  after: number;
  max: number;
  timer: ReturnType<typeof setTimeout>;
}

interface PendingPublish {
  entry: OutboxEntry;
  session: PeerSession;
  rid: unknown;
  /** Meta values written in the same commit (in-process gateways, see COMMIT_META). */
  meta?: Record<string, number>;
}

/**
 * A `publish` message from an in-process gateway (never from the wire: frames carry no
 * symbols) may carry meta values under this key, written in the publication's commit.
 */
export const COMMIT_META: unique symbol = Symbol("commit meta");

function topicError(err: unknown): never {
  if (err instanceof TopicError) throw new ProtocolError(MomErrorCode.BadTopic, err.message);
  throw err;
}

/** Finds the broker address: `--broker`, else the first `broker` node of the peers file. */
export function brokerAddress(
  ctx: Pick<RoleContext<{ readonly broker?: string }>, "options" | "cluster">,
): HostPort {
  const given = ctx.options.broker;
  if (given) return parseHostPort(given, "--broker");
  const node = ctx.cluster?.nodes.find((n) => n.role === "broker");
  if (node) return { hostname: node.hostname, port: node.port };
  throw new ConfigError(
    "daemon: --broker HOST:PORT is required (or a node with role broker in --peers)",
  );
}

/** The daemon's state machine: application requests, the broker link, the inbox. */
export class MomDaemon {
  readonly #ctx: RoleContext;
  readonly #store: DaemonStore;
  readonly #broker: HostPort;
  readonly #users = new Set<number>();
  /** The local users' subscriptions: their publications to each other stay on this daemon. */
  readonly #subs = new SubscriptionIndex();
  /** Whether `#subs` matches the broker's catalogue (false after an upgrade, until synced). */
  #subsSynced: boolean;
  readonly #waiters = new Map<number, Set<Waiter>>();
  #lastSeq: number;
  #seqReserved: number;
  /** Inbox positions up to this one may be handed out before their commit. */
  #inboxReserved: number;
  #pubAcked = 0;
  #pubAckPending = 0;
  #pubSent = 0;
  #pubCommitted: number;
  #pumping = false;
  #lastDseq: number;
  #lastDseqCommitted: number;
  #brokerEpoch: string;
  #out: PendingPublish[] = [];
  #in: Delivery[] = [];
  /** Per user, the inbox position of its last entry in `#in` (cleared with each commit). */
  #inLast = new Map<number, number>();
  /** Deliveries in the last commit (a measure of load). */
  #lastCommitIn = 0;
  /** When the last commit ran (`performance.now()`). */
  #lastCommitAt = -Infinity;
  readonly #seenFrom: Map<string, number>;
  #seenPending = new Map<string, number>();
  #takes = 0;
  /** Per user whose receives keep up: the inbox entries committed since (see RecentInbox). */
  readonly #recent = new Map<number, RecentInbox>();
  #recentBytes = 0;
  /** Inbox acknowledgements (user → position) waiting for the next commit. */
  #ackPending = new Map<number, number>();
  /** Highest dseq acknowledged to the broker on the current link. */
  #dackSent = 0;
  #dackTimer: ReturnType<typeof setTimeout> | undefined;
  #flushes: Array<{ session: PeerSession; msg: Message }> = [];
  /** Publications and flushes held while local subscriptions are being synced. */
  #held: Array<PendingPublish | { session: PeerSession; msg: Message }> | undefined;
  readonly #tick = new Tick(() => this.#flushOrFail());
  readonly #idle: IdleCheckpoint;
  #link: RpcClient | undefined;
  #attached = false;
  #closed = false;
  #linkTask: Promise<void> | undefined;
  #linkAbort = new AbortController();
  #sentEarly = 0;
  #sentStored = 0;
  /** Publications to send to the broker before their commit (at the end of this turn). */
  #early: OutboxEntry[] = [];
  /** Publications accepted from local applications. */
  published = 0;
  /** Deliveries stored into local inboxes (one per user). */
  delivered = 0;

  readonly #storeFailure: StoreFailureLatch;
  /** Resolves when a write to the database failed: the daemon stopped acknowledging. */
  get failed(): Promise<StorageError> {
    return this.#storeFailure.failed;
  }

  constructor(ctx: RoleContext, store: DaemonStore, broker: HostPort) {
    this.#ctx = ctx;
    this.#store = store;
    this.#storeFailure = new StoreFailureLatch(ctx);
    this.#broker = broker;
    this.#idle = new IdleCheckpoint(() => store.checkpoint());
    for (const u of store.users()) this.#users.add(u);
    for (const sub of store.subs()) this.#subs.add(sub.user, sub.pattern, sub.own);
    this.#subsSynced = store.meta("subs_synced") === "1";
    // publications may reach the broker before they are committed here, so numbers up to
    // the reservation may be known to the broker: never reuse them after a restart
    this.#lastSeq = Math.max(store.lastSeq(), Number(store.meta("seq_reserved") ?? 0));
    this.#seqReserved = this.#lastSeq;
    this.#inboxReserved = store.nextPosition - 1;
    this.#pubCommitted = store.lastSeq();
    this.#lastDseq = Number(store.meta("last_dseq") ?? 0);
    this.#lastDseqCommitted = this.#lastDseq;
    this.#brokerEpoch = store.meta("broker_epoch") ?? "";
    this.#seenFrom = store.seenFrom();
  }

  /** The daemon's store (for in-process gateways such as MQTT's). */
  get store(): DaemonStore {
    return this.#store;
  }

  /** The daemon's name (the prefix of its publication ids). */
  get name(): string {
    return this.#ctx.name;
  }

  /** Whether `user` is a user of this daemon. */
  hasUser(user: number): boolean {
    return this.#users.has(user);
  }

  /** Whether the broker link is up and attached. */
  get linkUp(): boolean {
    return this.#attached;
  }

  /** Starts the broker link (reconnects with capped, jittered backoff until closed). */
  start(): void {
    this.#linkTask = this.#linkLoop();
  }

  /** Frame handlers for application connections. */
  handlers(): Record<
    string,
    (msg: Message, s: PeerSession) => Message | undefined | Promise<Message>
  > {
    return {
      create: async () => {
        const reply = await this.#brokerRequest({ t: "user.create" });
        const user = fieldInt(reply, "user", { min: 1 });
        this.#store.addUser(user);
        this.#users.add(user);
        this.#ctx.events.emit("user.created", { user });
        return { t: "created", user };
      },
      attach: async (msg) => {
        const user = fieldInt(msg, "user", { min: 1 });
        if (!this.#attached && this.#users.has(user)) return { t: "attached", user };
        const reply = await this.#brokerRequest({ t: "user.attach", user });
        this.#store.addUser(user);
        this.#users.add(user);
        this.#mirrorSubs(user, reply);
        return { t: "attached", user, subs: reply.subs ?? [] };
      },
      subscribe: async (msg) => {
        const user = await this.#localUser(msg);
        let topic: string;
        try {
          topic = checkPattern(msg.topic);
        } catch (err) {
          topicError(err);
        }
        const own = fieldBool(msg, "own", false);
        await this.#brokerRequest({ t: "sub.add", user, topic, own });
        this.#store.addSub(user, topic, own);
        this.#subs.add(user, topic, own);
        this.#ctx.events.emit("sub.added", { user, topic, own });
        return { t: "ok" };
      },
      unsubscribe: async (msg) => {
        const user = await this.#localUser(msg);
        const topic = fieldString(msg, "topic", { maxLength: 1024 });
        await this.#brokerRequest({ t: "sub.remove", user, topic });
        this.#store.removeSub(user, topic);
        this.#subs.remove(user, topic);
        this.#ctx.events.emit("sub.removed", { user, topic });
        return { t: "ok" };
      },
      retained: async (msg) => {
        // the broker's retained messages for a new subscription, into the user's inbox
        const user = await this.#localUser(msg);
        const topic = fieldString(msg, "topic", { maxLength: 1024 });
        const reply = await this.#brokerRequest({ t: "retained", user, topic });
        const rows = Array.isArray(reply.messages) ? reply.messages as Message[] : [];
        for (const r of rows) {
          if (!this.#users.has(user)) break;
          const meta = new Uint8Array(fieldBytes(r, "meta"));
          if (meta.length > 0) meta[0] |= RETAINED_DELIVERY;
          this.#queueDelivery({
            users: [user],
            id: fieldString(r, "id"),
            topic: fieldString(r, "topic"),
            payload: fieldBytes(r, "payload"),
            from: fieldInt(r, "from"),
            meta,
          });
        }
        this.#schedule();
        return { t: "ok", count: rows.length };
      },
      destroy: async (msg) => {
        const user = await this.#localUser(msg);
        const reply = await this.#brokerRequest({ t: "user.destroy", user });
        this.#store.removeUser(user);
        this.#users.delete(user);
        this.#subs.removeUser(user);
        this.#dropRecent(user);
        for (const w of this.#waiters.get(user) ?? []) this.#answer(w, []);
        this.#waiters.delete(user);
        this.#ctx.events.emit("user.destroyed", { user });
        return { t: "ok", removed: reply.removed ?? 0 };
      },
      publish: (msg, s) => {
        const user = fieldInt(msg, "user", { min: 1 });
        if (!this.#users.has(user)) return this.#refuseUser(msg);
        let topic: string;
        try {
          topic = checkTopic(msg.topic);
        } catch (err) {
          topicError(err);
        }
        const payload = fieldBytes(msg, "payload");
        if (payload.length > MAX_PAYLOAD_BYTES) {
          throw new ProtocolError(
            ErrorCode.BadField,
            `Cannot publish: payload of ${payload.length} bytes is over ${MAX_PAYLOAD_BYTES}`,
          );
        }
        const seq = ++this.#lastSeq;
        if (seq > this.#seqReserved) {
          this.#seqReserved = seq + SEQ_RESERVATION;
          this.#store.setMeta({ seq_reserved: this.#seqReserved });
        }
        const entry: OutboxEntry = { seq, user, topic, payload, local: false };
        if (msg.meta !== undefined) entry.meta = fieldBytes(msg, "meta");
        const pending: PendingPublish = {
          entry,
          session: s,
          rid: msg.rid,
        };
        const meta = (msg as { [COMMIT_META]?: Record<string, number> })[COMMIT_META];
        if (meta !== undefined) pending.meta = meta;
        this.published++;
        if (this.#held) this.#held.push(pending);
        else this.#accept(pending);
        return undefined;
      },
      flush: (msg, s) => {
        if (this.#held) {
          this.#held.push({ session: s, msg });
          return undefined;
        }
        this.#flushes.push({ session: s, msg });
        this.#schedule();
        return undefined;
      },
      receive: (msg, s) => {
        const user = fieldInt(msg, "user", { min: 1 });
        if (!this.#users.has(user)) return this.#refuseUser(msg);
        const after = fieldInt(msg, "after", { min: 0 });
        // `from` (default `after`): hand out entries after it, acknowledge only up to `after`
        const from = msg.from === undefined ? after : fieldInt(msg, "from", { min: after });
        const max = Math.min(fieldInt(msg, "max", { min: 0 }), MAX_RECEIVE_BATCH);
        const wait = Math.min(fieldInt(msg, "wait", { min: 0 }), 3_600_000);
        if (after > (this.#ackPending.get(user) ?? 0)) {
          this.#ackPending.set(user, after);
          this.#takes++;
        }
        let rows = this.#recentAfter(user, after, max, from);
        if (rows === undefined) {
          rows = this.#store.select(user, from, max);
          // nothing stored after `from`: from here on, what is committed for this user is
          // also kept in memory, and its next receives need no read back (a `max` of 0
          // read nothing, so it proves nothing)
          if (rows.length === 0 && max > 0) {
            this.#dropRecent(user);
            this.#recent.set(user, { from: from + 1, entries: [], head: 0, bytes: 0 });
          }
        }
        if (rows.length > 0) {
          // an acknowledgement is on disk before the user is handed anything after it
          this.#commitAck(user);
          return { t: "messages", messages: rows };
        }
        if (this.#ackPending.size > 0) this.#tick.scheduleWithin(LAZY_COMMIT_MS);
        if (wait === 0 || max === 0) return { t: "messages", messages: [] };
        const waiter: Waiter = {
          session: s,
          msg,
          user,
          after: from,
          max,
          timer: setTimeout(() => this.#answer(waiter, []), wait),
        };
        let set = this.#waiters.get(user);
        if (!set) this.#waiters.set(user, set = new Set());
        set.add(waiter);
        return undefined;
      },
    };
  }

  /** Queues a publication for the next commit and sends it to the broker when it can. */
  #accept(p: PendingPublish): void {
    const entry = p.entry;
    // local subscribers get it in the same commit as the outbox entry; the broker routes
    // it to the other daemons only
    entry.local = this.#subsSynced;
    this.#out.push(p);
    // a publication with commit meta (MQTT QoS 2: its packet id) leaves only once committed:
    // sent before and lost in a crash, its resend would be a second publication
    const early = p.meta === undefined;
    if (entry.local) this.#deliverLocally(entry, early);
    // overlap the broker hop with the local commit (the app is answered after the commit)
    const link = this.#link;
    if (
      early && this.#attached && link && !this.#pumping && this.#pubSent === entry.seq - 1 &&
      link.conn.pendingBytes < EARLY_SEND_LIMIT
    ) {
      this.#pubSent = entry.seq;
      // the publications of this turn of the event loop go out together, in one frame
      if (this.#early.length === 0) queueMicrotask(() => this.#sendEarly());
      this.#early.push(entry);
      this.#sentEarly++;
    }
    this.#schedule();
  }

  #sendEarly(): void {
    const early = this.#early;
    this.#early = [];
    for (const frame of pubsFrames(early)) this.#linkSend(frame);
  }

  /** Low load: the last commit was small and a while ago (see EARLY_HANDOUT_MAX). */
  #quiet(): boolean {
    return this.#lastCommitIn <= EARLY_HANDOUT_MAX &&
      performance.now() - this.#lastCommitAt >= EARLY_HANDOUT_QUIET_MS;
  }

  /** Puts a local publication into the inboxes of the local users it reaches. */
  #deliverLocally(entry: OutboxEntry, early: boolean): void {
    const matches = this.#subs.match(entry.topic);
    if (matches.length === 0) return;
    let users: number[] | undefined;
    for (const m of matches) {
      if ((m.user === entry.user && !m.own) || !this.#users.has(m.user)) continue;
      (users ??= []).push(m.user);
    }
    if (users === undefined) return;
    const delivery: Delivery = {
      users,
      id: `${this.#ctx.name}:${entry.seq}`,
      topic: entry.topic,
      payload: entry.payload,
      from: entry.user,
    };
    if (entry.meta !== undefined) delivery.meta = entry.meta;
    // at low load a waiting receive gets it now, before the commit: the publisher is
    // acknowledged only after the commit, so a crash in between loses nothing acknowledged,
    // and the position is reserved on disk so that it is never given to another message
    // (under load, one answer per commit carries more messages for less work)
    const before = early && this.#quiet() ? users.map((u) => this.#inLast.get(u)) : undefined;
    const seq = this.#queueDelivery(delivery);
    if (before === undefined) return;
    let inbox: InboxEntry | undefined;
    for (let k = 0; k < users.length; k++) {
      const set = this.#waiters.get(users[k]);
      if (set === undefined || set.size === 0) continue;
      // the user's last entry in this commit before this one: its waiter must have it
      const previous = before[k];
      for (const w of [...set]) {
        if ((previous !== undefined && w.after < previous) || seq <= w.after) continue;
        if (inbox === undefined) {
          if (seq > this.#inboxReserved) {
            this.#inboxReserved = seq + INBOX_RESERVATION;
            this.#store.setMeta({ inbox_reserved: this.#inboxReserved });
          }
          inbox = inboxEntry(seq, delivery);
        }
        this.#answer(w, [inbox], true);
      }
    }
  }

  /** Queues a delivery for the next commit; returns the inbox position it will have. */
  #queueDelivery(delivery: Delivery): number {
    this.#in.push(delivery);
    const position = this.#store.nextPosition + this.#in.length - 1;
    for (const u of delivery.users) this.#inLast.set(u, position);
    return position;
  }

  /** Stores `user`'s subscriptions as a `user.attached` reply from the broker lists them. */
  #mirrorSubs(user: number, reply: Message): void {
    const patterns = Array.isArray(reply.subs) ? reply.subs.map(String) : [];
    const own = new Set(Array.isArray(reply.own) ? reply.own.map(String) : []);
    this.#store.replaceSubs(user, patterns, own);
    this.#subs.removeUser(user);
    for (const p of patterns) this.#subs.add(user, p, own.has(p));
  }

  /**
   * Makes the local subscriptions match the broker's (a data directory from before they were
   * kept here). Until then this daemon's publications reach its own users through the
   * broker; to keep each publisher's order, new publications (and flushes) are held until
   * the broker has routed, and this daemon has received, every earlier one.
   */
  async #syncSubs(link: RpcClient): Promise<void> {
    if (this.#subsSynced || this.#held) return;
    this.#held = [];
    try {
      for (const user of [...this.#users]) {
        const reply = await this.#brokerRequest({ t: "user.attach", user });
        if (this.#users.has(user)) this.#mirrorSubs(user, reply);
      }
      const barrier = this.#lastSeq;
      for (let round = 0; round < SYNC_ROUNDS && this.#link === link; round++) {
        const state = await this.#brokerRequest({ t: "stream.state" });
        if (Number(state.seen) >= barrier && this.#lastDseq >= Number(state.dseq)) {
          this.#store.setMeta({ subs_synced: 1 });
          this.#subsSynced = true;
          this.#ctx.log.info("local subscriptions synced with the broker");
          return;
        }
        await sleep(SYNC_PAUSE_MS, this.#linkAbort.signal);
      }
    } finally {
      const held = this.#held;
      this.#held = undefined;
      for (const h of held) {
        if ("entry" in h) this.#accept(h);
        else this.#flushes.push(h);
      }
      this.#schedule();
    }
  }

  /** Forgets the waiting receives of a closed connection. */
  sessionClosed(s: PeerSession): void {
    for (const set of this.#waiters.values()) {
      for (const w of set) {
        if (w.session === s) {
          clearTimeout(w.timer);
          set.delete(w);
        }
      }
    }
  }

  /** Status fields for `ctl status`. */
  status(): Record<string, unknown> {
    this.#flushOrFail(); // deferred deletions first, so the sizes below are exact
    return {
      broker: `${this.#broker.hostname}:${this.#broker.port}`,
      link: this.#attached ? "up" : "down",
      users: [...this.#users],
      local_subscriptions: this.#subs.size,
      local_delivery: this.#subsSynced,
      inbox: this.#store.inboxSizes(),
      inbox_memory_bytes: this.#recentBytes,
      outbox: this.#store.outboxSize(this.#pubAcked) + this.#out.length,
      published: this.published,
      delivered: this.delivered,
      sent_early: this.#sentEarly,
      sent_from_disk: this.#sentStored,
      last_seq: this.#lastSeq,
      acked_seq: this.#pubAcked,
      last_dseq: this.#lastDseqCommitted,
    };
  }

  /** Stops the link, writes what is pending, answers waiting receives. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#takes = COLLECT_EVERY;
    if (!this.#storeFailure.tripped) this.#flush();
    this.#closed = true;
    clearTimeout(this.#dackTimer);
    this.#tick.close();
    this.#idle.close();
    this.#linkAbort.abort();
    await this.#link?.close();
    await this.#linkTask;
    for (const set of this.#waiters.values()) {
      for (const w of set) clearTimeout(w.timer);
    }
    this.#waiters.clear();
  }

  /** Answers a request for a user that is not (yet) local with the right error. */
  async #refuseUser(msg: Message): Promise<never> {
    const user = await this.#localUser(msg);
    throw new ProtocolError(
      ErrorCode.Unavailable,
      `Cannot ${msg.t} for user ${user}: it was attached meanwhile; try again`,
    );
  }

  async #localUser(msg: Message): Promise<number> {
    const user = fieldInt(msg, "user", { min: 1 });
    if (this.#users.has(user)) return user;
    if (this.#attached) {
      let where: Message | undefined;
      try {
        where = await this.#brokerRequest({ t: "user.where", user });
      } catch (err) {
        if (!(err instanceof ProtocolError) || err.code !== MomErrorCode.UnknownUser) throw err;
      }
      if (where) {
        throw new ProtocolError(
          MomErrorCode.WrongDaemon,
          `Cannot use user ${user} on daemon ${this.#ctx.name}: it lives on daemon ${
            String(where.daemon)
          }`,
        );
      }
    }
    throw new ProtocolError(
      MomErrorCode.UnknownUser,
      `Cannot use user ${user}: no such user on daemon ${this.#ctx.name}`,
    );
  }

  async #brokerRequest(msg: Message): Promise<Message> {
    const link = this.#link;
    if (!link || !this.#attached) {
      throw new ProtocolError(
        MomErrorCode.BrokerUnavailable,
        `Cannot ${msg.t}: the broker link is down (publishing still works); try again`,
      );
    }
    try {
      return await link.request(msg, { timeoutMs: 10_000 });
    } catch (err) {
      if (err instanceof RemoteError) {
        throw new ProtocolError(err.code, String(err.frame.message ?? err.message));
      }
      throw new ProtocolError(
        MomErrorCode.BrokerUnavailable,
        `Cannot ${msg.t}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  #answer(w: Waiter, rows: InboxEntry[], urgent = false): void {
    clearTimeout(w.timer);
    this.#waiters.get(w.user)?.delete(w);
    w.session.reply(w.msg, { t: "messages", messages: rows }, urgent);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#tick.schedule();
  }

  /**
   * A failed write leaves the in-memory streams ahead of the disk: stop writing and
   * acknowledging at once, emit `store.failed`, and resolve {@linkcode failed} so the role
   * exits 1; the restart resends whatever was not acknowledged.
   */
  #flushOrFail(): void {
    try {
      this.#flush();
    } catch (err) {
      this.#storeFailure.trip(err);
    }
  }

  #flush(): void {
    if (this.#closed || this.#storeFailure.tripped) return;
    const out = this.#out;
    const incoming = this.#in;
    const flushes = this.#flushes;
    const ack = this.#pubAckPending;
    const dseq = this.#lastDseq;
    if (
      out.length === 0 && incoming.length === 0 && flushes.length === 0 &&
      ack <= this.#pubAcked && dseq === this.#lastDseqCommitted && this.#ackPending.size === 0
    ) return;
    this.#out = [];
    this.#in = [];
    if (this.#inLast.size > 0) this.#inLast = new Map();
    this.#lastCommitIn = incoming.length;
    this.#lastCommitAt = performance.now();
    this.#flushes = [];
    const inboxAcks = this.#ackPending;
    this.#ackPending = new Map();
    const collect = this.#takes >= COLLECT_EVERY ? this.#users : undefined;
    if (collect) this.#takes = 0;
    const positions: Record<string, number> = {};
    if (out.length > 0) positions.last_seq = out[out.length - 1].entry.seq;
    for (const p of out) if (p.meta !== undefined) Object.assign(positions, p.meta);
    if (dseq !== this.#lastDseqCommitted) positions.last_dseq = dseq;
    const seen = this.#seenPending;
    this.#seenPending = new Map();
    this.#idle.wrote();
    let firstN: number;
    try {
      firstN = this.#store.commit(
        out.map((p) => p.entry),
        incoming,
        ack > this.#pubAcked ? ack : 0,
        positions,
        seen,
        inboxAcks,
        collect,
      );
    } catch (err) {
      // nothing of this batch is stored: its publishers and flushers hear so at once
      const refusal = new ProtocolError(
        STORE_FAILED,
        `Cannot store the publication: ${err instanceof Error ? err.message : String(err)}`,
      );
      for (const p of out) {
        if (p.rid !== undefined) p.session.replyError({ rid: p.rid, t: "publish" }, refusal);
      }
      for (const f of flushes) f.session.replyError(f.msg, refusal);
      throw err;
    }
    for (const [k, v] of seen) this.#seenFrom.set(k, v);
    if (ack > this.#pubAcked) this.#pubAcked = ack;
    const events = this.#ctx.events;
    const name = this.#ctx.name;
    const tell = events.active;
    for (const p of out) {
      if (p.rid !== undefined) {
        const id = `${name}:${p.entry.seq}`;
        p.session.reply({ rid: p.rid, t: "published" }, { t: "published", id });
      }
      if (tell) {
        events.emit("msg.published", {
          id: `${name}:${p.entry.seq}`,
          topic: p.entry.topic,
          user: p.entry.user,
        });
      }
    }
    if (out.length > 0) this.#pubCommitted = out[out.length - 1].entry.seq;
    for (const f of flushes) f.session.reply(f.msg, { t: "flushed" });
    // the inbox entries just committed, as receives hand them out (one object per message,
    // shared by its recipients)
    const entries: InboxEntry[] = new Array(incoming.length);
    const woken = new Set<number>();
    for (let i = 0; i < incoming.length; i++) {
      const e = incoming[i];
      entries[i] = e.users.length > 1
        ? new SharedEntry(firstN + i, e.id, e.topic, e.payload, e.from, e.meta)
        : inboxEntry(firstN + i, e);
      this.delivered += e.users.length;
      for (const user of e.users) {
        if (tell) events.emit("msg.delivered", { id: e.id, user, topic: e.topic });
        if (this.#waiters.has(user)) woken.add(user);
      }
    }
    if (dseq !== this.#lastDseqCommitted) {
      this.#lastDseqCommitted = dseq;
      // a dack only lets the broker delete: one per ACK_EVERY deliveries, or ACK_LAZY_MS
      // after the last, saves a frame (and a wake-up of the broker) per message
      if (dseq - this.#dackSent >= ACK_EVERY) this.#sendDack();
      else if (this.#dackTimer === undefined && !this.#closed) {
        this.#dackTimer = setTimeout(() => {
          this.#dackTimer = undefined;
          this.#sendDack();
        }, ACK_LAZY_MS);
      }
    }
    if (this.#recent.size > 0) this.#remember(incoming, entries);
    for (const u of woken) this.#wakeUser(u, incoming, entries);
    if (this.#attached && this.#pubSent < this.#pubCommitted) this.#pump();
  }

  /**
   * Answers `user`'s waiting receives with the deliveries just committed (`incoming`, their
   * inbox entries `entries`). A receive waits only when the inbox had nothing after its
   * position, and every commit wakes the waiting receives of its recipients, so these are
   * exactly the entries it is waiting for: no read back from the database.
   */
  #wakeUser(user: number, incoming: Delivery[], entries: InboxEntry[]): void {
    const set = this.#waiters.get(user);
    if (!set || set.size === 0) return;
    let mine: InboxEntry[] = entries;
    if (!incoming.every((e) => e.users.length === 1 && e.users[0] === user)) {
      mine = entries.filter((_, i) => incoming[i].users.includes(user));
    }
    for (const w of [...set]) {
      const rows = mine.length > 0 && mine[0].seq > w.after && mine.length <= w.max
        ? mine
        : mine.filter((r) => r.seq > w.after).slice(0, w.max);
      if (rows.length > 0) this.#answer(w, rows);
    }
  }

  /**
   * `user`'s inbox entries after `after` (up to `max`) from memory, or undefined when memory
   * does not hold all of them; entries after `from` when given. Drops the entries up to
   * `after` (acknowledged).
   */
  #recentAfter(
    user: number,
    after: number,
    max: number,
    from = after,
  ): InboxEntry[] | undefined {
    const recent = this.#recent.get(user);
    if (recent === undefined || from + 1 < recent.from) return undefined;
    const entries = recent.entries;
    let head = recent.head;
    let freed = 0;
    while (head < entries.length && entries[head].seq <= after) {
      freed += entryBytes(entries[head++]);
    }
    recent.bytes -= freed;
    this.#recentBytes -= freed;
    if (head > 1024 && head * 2 > entries.length) {
      recent.entries = entries.slice(head);
      head = 0;
    }
    recent.head = head;
    const kept = recent.entries;
    if (from <= after) return kept.slice(head, head + max);
    // the first entry after `from` (entries are in position order)
    let lo = head;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].seq <= from) lo = mid + 1;
      else hi = mid;
    }
    return kept.slice(lo, lo + max);
  }

  /** Adds just-committed deliveries to the in-memory inboxes of the users that have one. */
  #remember(incoming: Delivery[], entries: InboxEntry[]): void {
    for (let i = 0; i < incoming.length; i++) {
      const e = incoming[i];
      const entry = entries[i];
      let bytes = 0;
      for (const user of e.users) {
        const recent = this.#recent.get(user);
        if (recent === undefined) continue;
        bytes ||= entryBytes(entry);
        if (
          recent.entries.length - recent.head >= RECENT_MAX_ENTRIES ||
          recent.bytes + bytes > RECENT_MAX_BYTES ||
          this.#recentBytes + bytes > RECENT_MAX_TOTAL_BYTES
        ) {
          // a user that does not keep up reads from the database again
          this.#dropRecent(user);
          continue;
        }
        recent.entries.push(entry);
        recent.bytes += bytes;
        this.#recentBytes += bytes;
      }
    }
  }

  #dropRecent(user: number): void {
    const recent = this.#recent.get(user);
    if (recent === undefined) return;
    this.#recentBytes -= recent.bytes;
    this.#recent.delete(user);
  }

  /** Acknowledges the deliveries committed so far to the broker. */
  #sendDack(): void {
    if (!this.#attached || this.#lastDseqCommitted <= this.#dackSent) return;
    if (this.#linkSend({ t: "dack", dseq: this.#lastDseqCommitted })) {
      this.#dackSent = this.#lastDseqCommitted;
    }
  }

  /** Commits `user`'s pending inbox acknowledgement now (it precedes handing out more). */
  #commitAck(user: number): void {
    const upTo = this.#ackPending.get(user);
    if (upTo === undefined) return;
    this.#ackPending.delete(user);
    this.#store.ack(user, upTo);
    this.#idle.wrote();
    if (this.#takes >= COLLECT_EVERY) {
      this.#takes = 0;
      this.#store.collect(this.#users);
    }
  }

  #linkSend(msg: Message): boolean {
    try {
      return this.#link?.send(msg) ?? false;
    } catch {
      return false;
    }
  }

  /** Streams stored publications after `pubSent` to the broker, with backpressure. */
  #pump(): void {
    if (this.#pumping || !this.#attached || this.#closed) return;
    this.#pumping = true;
    const link = this.#link!;
    void (async () => {
      try {
        for (let round = 0; round < 1_000_000; round++) {
          if (this.#closed || this.#link !== link || !this.#attached) return;
          if (link.conn.pendingBytes > 0) await link.conn.drained();
          if (this.#link !== link || !this.#attached) return;
          if (this.#pubSent >= this.#pubCommitted) return;
          const rows = this.#store.outbox(this.#pubSent, PUMP_CHUNK);
          if (rows.length === 0) {
            // nothing stored after `pubSent` (acknowledged, or a numbering gap): caught up
            this.#pubSent = Math.max(this.#pubSent, this.#pubCommitted);
            return;
          }
          let blocked = false;
          for (const frame of pubsFrames(rows)) {
            if (!link.send(frame)) blocked = true;
          }
          this.#pubSent = rows[rows.length - 1].seq;
          this.#sentStored += rows.length;
          if (blocked) await link.conn.drained();
        }
      } catch (err) {
        this.#ctx.log.warn(`sending the outbox stopped: ${String(err)}`);
      } finally {
        this.#pumping = false;
        if (this.#link === link && this.#attached && this.#pubSent < this.#pubCommitted) {
          queueMicrotask(() => this.#pump());
        }
      }
    })();
  }

  #onBrokerMessage(msg: Message): void {
    if (msg.t === "deliver") {
      const dseq = fieldInt(msg, "dseq", { min: 1 });
      if (dseq <= this.#lastDseq) {
        if (this.#lastDseq === this.#lastDseqCommitted) {
          this.#linkSend({ t: "dack", dseq: this.#lastDseq });
        }
        return;
      }
      const id = fieldString(msg, "id");
      const topic = fieldString(msg, "topic");
      const payload = fieldBytes(msg, "payload");
      const from = fieldInt(msg, "from");
      const meta = msg.meta instanceof Uint8Array ? msg.meta : undefined;
      this.#lastDseq = dseq;
      this.#schedule();
      // a publication resent after a broker crash comes again with a new dseq: drop it by
      // (publishing daemon, seq), which only ever grows per publishing daemon
      const colon = id.lastIndexOf(":");
      const publisher = id.slice(0, colon);
      const seq = Number(id.slice(colon + 1));
      if (colon > 0 && Number.isSafeInteger(seq)) {
        const last = this.#seenPending.get(publisher) ?? this.#seenFrom.get(publisher) ?? 0;
        if (seq <= last) return;
        this.#seenPending.set(publisher, seq);
      }
      const users = Array.isArray(msg.users) ? msg.users as unknown[] : [];
      const local = users.length === 1 && this.#users.has(users[0] as number)
        ? users as number[]
        : users.map(Number).filter((u) => this.#users.has(u));
      if (local.length > 0) {
        const delivery: Delivery = { users: local, id, topic, payload, from };
        if (meta !== undefined) delivery.meta = meta;
        this.#queueDelivery(delivery);
      }
      this.#schedule();
    } else if (msg.t === "puback") {
      const seq = fieldInt(msg, "seq", { min: 0 });
      if (seq > this.#pubAckPending) {
        // deleting acknowledged publications is not urgent: it rides along with the next
        // commit (or a lazy one), off the path of the next message
        this.#pubAckPending = seq;
        this.#tick.scheduleWithin(LAZY_COMMIT_MS);
      }
    }
  }

  async #linkLoop(): Promise<void> {
    const signal = this.#linkAbort.signal;
    const ctx = this.#ctx;
    const where = `${this.#broker.hostname}:${this.#broker.port}`;
    const backoff = new Backoff(LINK_BACKOFF);
    for (let link = 0; !signal.aborted; link++) {
      if (link > 0) await sleep(backoff.next(), signal); // a link that was up dropped
      let attached: { client: RpcClient; closed: Promise<void> };
      try {
        attached = await retryConnect(() => this.#attach(signal), {
          backoff,
          signal,
          onFailure: ({ error, failures }) => {
            if (failures === 1 || failures % 20 === 0) {
              ctx.log.warn(
                `Cannot attach to broker ${where}: ${
                  error instanceof Error ? error.message : String(error)
                }; retrying`,
              );
            }
          },
        });
      } catch (err) {
        if (signal.aborted) return; // nothing else ends retrying (no fatal error, no give-up)
        throw err;
      }
      const { client, closed } = attached;
      const beat = this.#heartbeat(client, closed, signal);
      await Promise.race([closed, aborted(signal)]);
      this.#attached = false;
      this.#link = undefined;
      await client.close();
      const reason = await beat;
      ctx.events.emit("link.down", { broker: where, ...(reason ? { reason } : {}) });
    }
  }

  /**
   * One attempt at the broker link: connects, attaches (the broker learns this daemon's
   * epoch and what it has committed) and hands over the deliveries that came early. The
   * connection is closed when any of it fails.
   */
  async #attach(signal: AbortSignal): Promise<{ client: RpcClient; closed: Promise<void> }> {
    const ctx = this.#ctx;
    let client: RpcClient | undefined;
    try {
      client = await RpcClient.connect(this.#broker, {
        role: "daemon",
        name: ctx.name,
        ...linkSecurity(ctx),
        maxFrame: ctx.maxFrame,
        signal,
        timeoutMs: 3_000,
      });
      const c = client;
      const early: Message[] = [];
      const closed = new Promise<void>((resolve) => {
        c.onClose = () => resolve();
      });
      c.onMessage = (m) => {
        if (!this.#attached || this.#link !== c) early.push(m);
        else this.#safeBrokerMessage(m);
      };
      const reply = await c.request({
        t: "attach",
        epoch: this.#store.epoch,
        broker: this.#brokerEpoch,
        acked: this.#lastDseqCommitted,
      }, { timeoutMs: 5_000, signal });
      const brokerEpoch = String(reply.broker ?? "");
      if (brokerEpoch !== this.#brokerEpoch) {
        // a new broker incarnation numbers deliveries afresh
        this.#brokerEpoch = brokerEpoch;
        this.#lastDseq = this.#lastDseqCommitted = Number(reply.acked ?? 0);
        this.#store.setMeta({ broker_epoch: brokerEpoch, last_dseq: this.#lastDseq });
      }
      const seen = Number(reply.seen ?? 0);
      if (seen > this.#pubAckPending) this.#pubAckPending = seen;
      this.#pubSent = Math.max(seen, this.#pubAcked);
      this.#link = c;
      this.#dackSent = this.#lastDseqCommitted; // the attach told the broker
      this.#attached = true;
      const where = `${this.#broker.hostname}:${this.#broker.port}`;
      ctx.events.emit("link.up", { broker: where });
      ctx.log.info(`attached to broker ${where}`);
      for (const m of early.splice(0)) this.#safeBrokerMessage(m);
      this.#schedule();
      this.#pump();
      if (!this.#subsSynced) {
        this.#syncSubs(c).catch((err) =>
          ctx.log.warn(`Cannot sync local subscriptions yet: ${String(err)}`)
        );
      }
      return { client: c, closed };
    } catch (err) {
      await client?.close();
      throw err;
    }
  }

  /**
   * While the link is up, asks the broker for its stream state every LINK_HEARTBEAT_MS; no
   * answer within LINK_SILENCE_MS closes the link (the loop then reconnects): a partition
   * leaves TCP silent, not broken, so without this the daemon would report `link: up`
   * throughout and resume only at TCP's next retransmission after the heal. Resolves with
   * `"heartbeat"` when it closed the link, undefined otherwise.
   */
  async #heartbeat(
    client: RpcClient,
    closed: Promise<void>,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const stop = new AbortController();
    closed.then(() => stop.abort());
    try {
      const how = await heartbeat(client, {
        probe: { t: "stream.state" },
        intervalMs: LINK_HEARTBEAT_MS,
        silenceMs: LINK_SILENCE_MS,
        signal: AbortSignal.any([signal, stop.signal]),
      });
      if (how !== "silent") return undefined;
      this.#ctx.log.warn(
        `broker ${this.#broker.hostname}:${this.#broker.port} silent for ${LINK_SILENCE_MS} ms: reconnecting`,
      );
      return "heartbeat";
    } finally {
      stop.abort();
    }
  }

  #safeBrokerMessage(m: Message): void {
    try {
      this.#onBrokerMessage(m);
    } catch (err) {
      this.#ctx.log.warn(`bad frame from broker: ${String(err)}`);
    }
  }
}

/** Gap between two heartbeats (`stream.state` requests) on the broker link. */
export const LINK_HEARTBEAT_MS = 1_000;
/** A broker link with no answer to a heartbeat for this long is closed and reconnected. */
export const LINK_SILENCE_MS = 3_000;
/**
 * Pacing of broker-link reconnects: 50 ms doubling to 500 ms, each delay drawn from ±50 %
 * of its step (as before this used `Backoff`, except that the cap now holds after the
 * jitter too: at most 500 ms, not 750).
 */
const LINK_BACKOFF = { initialMs: 50, maxMs: 500, jitter: 0.5 } as const;
/** Bit of meta byte 0 marking a retained message handed out at subscription time (MQTT). */
const RETAINED_DELIVERY = 8;

/** Checks of the broker's stream state while syncing subscriptions (then retried next link). */
const SYNC_ROUNDS = 500;
/** Pause between those checks. */
const SYNC_PAUSE_MS = 20;

/**
 * Local publications are handed to waiting receives before their commit when the last commit
 * carried at most this many deliveries and ran EARLY_HANDOUT_QUIET_MS ago or more.
 */
const EARLY_HANDOUT_MAX = 4;
/** See EARLY_HANDOUT_MAX. */
const EARLY_HANDOUT_QUIET_MS = 0.5;

/** Inbox positions reserved on disk at a time for early hand-outs (skipped after a restart). */
const INBOX_RESERVATION = 100_000;

/** Publication numbers reserved on disk at a time (skipped after a restart). */
const SEQ_RESERVATION = 100_000;

/**
 * A user's inbox entries committed since its receives last found nothing stored: complete
 * for every position ≥ `from`, so a receive after `from - 1` or later needs no read back.
 */
interface RecentInbox {
  from: number;
  entries: InboxEntry[];
  /** Index of the first entry not yet acknowledged. */
  head: number;
  /** Approximate bytes of the entries from `head` on. */
  bytes: number;
}

/** An inbox entry several local users receive: encoded once for all their replies. */
class SharedEntry implements InboxEntry, PreEncoded {
  #bytes: Uint8Array | undefined;
  constructor(
    readonly seq: number,
    readonly id: string,
    readonly topic: string,
    readonly payload: Uint8Array,
    readonly from: number,
    readonly meta?: Uint8Array,
  ) {}

  [ENCODED](): Uint8Array {
    this.#bytes ??= encodeValue(
      this.meta === undefined
        ? { seq: this.seq, id: this.id, topic: this.topic, payload: this.payload, from: this.from }
        : {
          seq: this.seq,
          id: this.id,
          topic: this.topic,
          payload: this.payload,
          from: this.from,
          meta: this.meta,
        },
    );
    return this.#bytes;
  }
}

/** The inbox entry of `d` at position `seq` (with `meta` only when it has one). */
function inboxEntry(seq: number, d: Delivery): InboxEntry {
  const e: InboxEntry = { seq, id: d.id, topic: d.topic, payload: d.payload, from: d.from };
  if (d.meta !== undefined) e.meta = d.meta;
  return e;
}

/** Unacknowledged entries kept in memory per user at most (past it, reads go to SQLite). */
const RECENT_MAX_ENTRIES = 50_000;
/** Bytes of unacknowledged entries kept in memory per user at most. */
const RECENT_MAX_BYTES = 8 * 1024 * 1024;
/** Bytes kept in memory over all users at most. */
const RECENT_MAX_TOTAL_BYTES = 64 * 1024 * 1024;

/** Memory an in-memory inbox entry is counted for. */
function entryBytes(e: InboxEntry): number {
  return e.payload.length + e.topic.length + e.id.length + 64;
}

/** Deliveries after which a `dack` goes out at once (else after ACK_LAZY_MS). */
const ACK_EVERY = 1_000;
/** How long a `dack` may wait. */
const ACK_LAZY_MS = 20;

/** How long deletions (acknowledged outbox and inbox entries) may wait for a commit. */
const LAZY_COMMIT_MS = 50;
/** Acknowledgements after which fully taken messages are garbage-collected. */
const COLLECT_EVERY = 64;

/** Queued bytes on the broker link below which a publication is sent before its commit. */
const EARLY_SEND_LIMIT = 256 * 1024;

/** Payload bytes one `pubs` frame carries at most (a larger publication goes alone). */
const PUBS_FRAME_BYTES = 1024 * 1024;
/** Publications one `pubs` frame carries at most (as the broker accepts). */
const PUBS_FRAME_MAX = 1_000;

/**
 * `pubs` frames for `entries` (in seq order): runs of consecutive seqs with the same
 * `local`, bounded in count and payload bytes.
 */
export function pubsFrames(entries: readonly OutboxEntry[]): Message[] {
  const frames: Message[] = [];
  let i = 0;
  while (i < entries.length) {
    const first = entries[i];
    const users: number[] = [];
    const topics: string[] = [];
    const payloads: Uint8Array[] = [];
    let metas: Array<Uint8Array | null> | undefined;
    let bytes = 0;
    let j = i;
    for (; j < entries.length; j++) {
      const e = entries[j];
      if (
        j > i && (e.seq !== first.seq + (j - i) || e.local !== first.local ||
          j - i >= PUBS_FRAME_MAX || bytes + e.payload.length > PUBS_FRAME_BYTES)
      ) break;
      if (e.meta !== undefined && metas === undefined) metas = users.map(() => null);
      metas?.push(e.meta ?? null);
      users.push(e.user);
      topics.push(e.topic);
      payloads.push(e.payload);
      bytes += e.payload.length;
    }
    const frame: Message = first.local
      ? { t: "pubs", seq: first.seq, users, topics, payloads, local: true }
      : { t: "pubs", seq: first.seq, users, topics, payloads };
    if (metas !== undefined) frame.metas = metas;
    frames.push(frame);
    i = j;
  }
  return frames;
}

/** The `daemon` role. */
export const daemonRole = defineRole({
  name: "daemon",
  summary: "MOM daemon: local applications' gateway to the broker, durable inbox and outbox",
  peers: "optional",
  defaultPort: 7411,
  options: {
    broker: {
      type: "string",
      arg: "host:port",
      help: "the broker (default: the peers file's broker)",
    },
    socket: { type: "string", arg: "path", help: "also listen on this Unix socket" },
    mqtt: {
      type: "string",
      arg: "[host:]port",
      help: "also speak MQTT 3.1.1 / 5.0 here (off by default; host 127.0.0.1 if omitted)",
    },
  },
  examples: [
    "peerd --role daemon --name d1 --peers peers.json --broker 127.0.0.1:7401",
    "peerd mom --daemon 127.0.0.1:7411 create",
    "peerd --role daemon --name d1 --peers peers.json --mqtt 127.0.0.1:1883",
  ],
  async run(ctx): Promise<number> {
    const broker = brokerAddress(ctx);
    prepareDataDir(ctx.dataDir);
    const store = new DaemonStore(`${ctx.dataDir}/daemon.sqlite`);
    const daemon = new MomDaemon(ctx, store, broker);
    const servers: FrameServer[] = [];
    let mqtt: MqttGateway | undefined;
    try {
      const handlers = daemon.handlers();
      const options = {
        handlers,
        ctl: {
          status: () => mqtt ? { ...daemon.status(), mqtt: mqtt.status() } : daemon.status(),
        },
        onSessionClose: (s: PeerSession) => daemon.sessionClosed(s),
      };
      servers.push(startNodeServer(ctx, options));
      const socket = ctx.options.socket;
      if (socket) {
        try {
          await Deno.remove(socket);
        } catch {
          // no stale socket
        }
        servers.push(startNodeServer(ctx, { ...options, listen: { path: socket } }));
      }
      daemon.start();
      const mqttListen = mqttAddress(ctx.options.mqtt);
      if (mqttListen) {
        mqtt = new MqttGateway(daemon, handlers, {
          listen: mqttListen,
          dataDir: ctx.dataDir,
          events: ctx.events,
          log: ctx.log,
          users: mqttUsers(ctx),
          secret: ctx.secret,
        });
        mqtt.start();
      }
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${servers[0].port}`,
        socket: socket ?? null,
        broker: `${broker.hostname}:${broker.port}`,
        mqtt: mqtt ? `${mqttListen!.hostname}:${mqtt.port}` : null,
      });
      ctx.log.info(`daemon listening on ${ctx.listen.hostname}:${servers[0].port}`);
      const failure = await Promise.race([aborted(ctx.signal), daemon.failed]);
      if (failure) throw failure;
    } finally {
      await mqtt?.close();
      await Promise.all(servers.map((s) => s.close()));
      await daemon.close();
      store.close();
      ctx.events.emit("stopped", {});
    }
    return 0;
  },
});

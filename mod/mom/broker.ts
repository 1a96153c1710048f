/**
 * The `broker` role: the catalogue of users, topics and subscriptions, and the router.
 *
 * Guarantees: a publication is acknowledged to its daemon (`puback`) only after it is
 * routed and its deliveries are in the outbox on disk; its `(daemon, seq)` is remembered
 * in the same transaction, so a resend after a crash is recognised and not routed twice.
 * Deliveries to one daemon carry a per-daemon sequence (`dseq`) and stay in the outbox
 * until that daemon acknowledges them (`dack`), so a daemon that was away (or a broker
 * that was killed) gets them again, in order. Memory stays bounded under a slow daemon:
 * when its connection is above the high-water mark the broker stops sending and later
 * streams the backlog from SQLite in chunks, waiting for `drained()` between them.
 *
 * @module
 */
import { type RoleContext, Tick } from "../process/mod.ts";
import {
  ErrorCode,
  fieldBool,
  fieldBytes,
  fieldInt,
  fieldString,
  type Message,
  type PeerSession,
  ProtocolError,
} from "../wire/mod.ts";
import type { BrokerStore, DaemonRow, OutboxRow, RetainedRow } from "./broker_store.ts";
import { MAX_PAYLOAD_BYTES, MomErrorCode, PUMP_CHUNK } from "./protocol.ts";
import { IdleCheckpoint } from "./idle_checkpoint.ts";
import { checkPattern, checkTopic, TopicError } from "./topic.ts";
import { SubscriptionIndex } from "./subscriptions.ts";
import { type StorageError, StoreFailureLatch } from "../storage/mod.ts";
import { readPubs } from "./pubs_frames.ts";
import { retainedFor } from "./retained.ts";
import { InterestAcks, SubscriptionCounts } from "./interest.ts";

interface DaemonState extends DaemonRow {
  /** Seen including the tick not yet committed. */
  seenPending: number;
  /** Highest dseq written to disk. */
  committed: number;
  /** Highest dseq sent on the current session. */
  sent: number;
  /** Highest dseq that may have been sent before its commit. */
  reserved: number;
  /** Highest seq acknowledged to the daemon on the current session. */
  pubackSent: number;
  session?: PeerSession;
  pumping: boolean;
  dirty: boolean;
  /** What the current session was last told: another daemon has a subscription. */
  othersTold: boolean;
  /** Number of the last `interest` notice sent on the current session. */
  interestN: number;
}

function badTopic(err: unknown): never {
  if (err instanceof TopicError) throw new ProtocolError(MomErrorCode.BadTopic, err.message);
  throw err;
}

/** The router and catalogue, independent of the role wiring (testable in-process). */
export class Broker {
  readonly #store: BrokerStore;
  readonly #ctx: RoleContext;
  readonly #users = new Map<number, string>();
  readonly #subs = new SubscriptionIndex();
  /** Subscriptions per daemon, for the `interest` notices (see `interest.ts`). */
  readonly #subCounts = new SubscriptionCounts();
  readonly #interestAcks = new InterestAcks();
  readonly #topics = new Set<string>();
  readonly #daemons = new Map<string, DaemonState>();
  /** Retained messages by topic (MQTT: publications whose meta has the retain bit). */
  readonly #retained = new Map<string, RetainedRow>();
  #rows: OutboxRow[] = [];
  #acks = new Map<string, number>();
  #newTopics: string[] = [];
  #pubbers = new Set<DaemonState>();
  #published: Array<{ id: string; topic: string; to: number }> = [];
  readonly #tick = new Tick(() => this.#flushOrFail());
  #lazyPubacks = new Set<DaemonState>();
  #pubackTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #idle: IdleCheckpoint;
  #closed = false;
  #sentEarly = 0;
  #sentStored = 0;
  /** Publications accepted (not counting resent duplicates). */
  messagesIn = 0;
  /** Deliveries sent to daemons (one per daemon per publication). */
  messagesOut = 0;

  readonly #storeFailure: StoreFailureLatch;
  /** Resolves when a write to the database failed: the broker stopped acknowledging. */
  get failed(): Promise<StorageError> {
    return this.#storeFailure.failed;
  }

  constructor(ctx: RoleContext, store: BrokerStore) {
    this.#ctx = ctx;
    this.#store = store;
    this.#storeFailure = new StoreFailureLatch(ctx);
    this.#idle = new IdleCheckpoint(() => store.checkpoint());
    for (const u of store.users()) this.#users.set(u.id, u.daemon);
    for (const s of store.subs()) {
      this.#subs.add(s.user, s.pattern, s.own === 1);
      const daemon = this.#users.get(s.user);
      if (daemon !== undefined) this.#subCounts.add(daemon);
    }
    for (const t of store.topics()) this.#topics.add(t);
    for (const r of store.retained()) this.#retained.set(r.topic, r);
    const reserved = store.reservations();
    for (const d of store.daemons()) {
      const r = reserved.get(d.name) ?? 0;
      this.#daemons.set(d.name, {
        ...d,
        dseq: Math.max(d.dseq, r),
        seenPending: d.seen,
        committed: d.dseq,
        sent: d.acked,
        reserved: r,
        pubackSent: 0,
        pumping: false,
        dirty: false,
        othersTold: true,
        interestN: 0,
      });
    }
  }

  /** Frame handlers for daemon connections. */
  handlers(): Record<string, (msg: Message, session: PeerSession) => Message | undefined> {
    return {
      attach: (msg, s) => this.#attach(msg, s),
      "user.create": (_msg, s) => {
        const daemon = this.#daemonOf(s).name;
        const user = this.#store.createUser(daemon);
        this.#users.set(user, daemon);
        this.#ctx.events.emit("user.created", { user, daemon });
        return { t: "user.created", user };
      },
      "user.attach": (msg, s) => {
        const user = this.#ownUser(msg, s);
        const subs = this.#subs.of(user);
        return {
          t: "user.attached",
          user,
          subs: subs.map(([p]) => p),
          own: subs.filter(([, own]) => own).map(([p]) => p),
        };
      },
      "user.where": (msg) => {
        const user = fieldInt(msg, "user", { min: 1 });
        const daemon = this.#users.get(user);
        if (!daemon) {
          throw new ProtocolError(
            MomErrorCode.UnknownUser,
            `Cannot find user ${user}: no such user`,
          );
        }
        return { t: "user.where", user, daemon };
      },
      "user.destroy": (msg, s) => {
        const user = this.#ownUser(msg, s);
        this.#store.destroyUser(user);
        const patterns = this.#subs.removeUser(user);
        for (const p of patterns) this.#ctx.events.emit("sub.removed", { user, topic: p });
        const daemon = this.#users.get(user);
        if (daemon !== undefined && patterns.length > 0) {
          this.#subCounts.remove(daemon, patterns.length);
          this.#tellInterest();
        }
        this.#users.delete(user);
        this.#ctx.events.emit("user.destroyed", { user });
        return { t: "ok", removed: patterns.length };
      },
      "sub.add": (msg, s) => {
        const user = this.#ownUser(msg, s);
        let pattern: string;
        try {
          pattern = checkPattern(msg.topic);
        } catch (err) {
          badTopic(err);
        }
        const own = fieldBool(msg, "own", false);
        if (this.#subs.has(user, pattern)) {
          throw new ProtocolError(
            MomErrorCode.AlreadySubscribed,
            `Cannot subscribe user ${user} to "${pattern}": already subscribed`,
          );
        }
        this.#store.addSub(user, pattern, own);
        this.#topics.add(pattern);
        this.#subs.add(user, pattern, own);
        this.#subCounts.add(this.#users.get(user)!);
        this.#ctx.events.emit("sub.added", { user, topic: pattern, own });
        // confirmed once every attached daemon that now has to send its at-most-once
        // publications here says it will (see interest.ts)
        const waits = this.#tellInterest();
        if (waits.length === 0) return { t: "ok" };
        void Promise.all(waits).then(() => s.reply(msg, { t: "ok" }));
        return undefined;
      },
      retained: (msg, s) => {
        // the retained messages a new subscription of `user` to `topic` gets
        this.#ownUser(msg, s);
        let pattern: string;
        try {
          pattern = checkPattern(msg.topic);
        } catch (err) {
          badTopic(err);
        }
        return { t: "retained", messages: retainedFor(pattern, this.#retained.values()) };
      },
      "sub.remove": (msg, s) => {
        const user = this.#ownUser(msg, s);
        const pattern = fieldString(msg, "topic", { maxLength: 1024 });
        if (!this.#subs.has(user, pattern)) {
          throw new ProtocolError(
            MomErrorCode.NotSubscribed,
            `Cannot unsubscribe user ${user} from "${pattern}": not subscribed`,
          );
        }
        this.#store.removeSub(user, pattern);
        this.#subs.remove(user, pattern);
        this.#subCounts.remove(this.#users.get(user)!);
        this.#tellInterest();
        this.#ctx.events.emit("sub.removed", { user, topic: pattern });
        return { t: "ok" };
      },
      "stream.state": (_msg, s) => {
        // what this broker has taken from the daemon and assigned to it so far
        const d = this.#daemonOf(s);
        return { t: "stream.state", seen: d.seenPending, dseq: d.dseq };
      },
      pub: (msg, s) => {
        this.#pub(msg, s);
        return undefined;
      },
      pubs: (msg, s) => {
        this.#pubs(msg, s);
        return undefined;
      },
      "interest.ok": (msg, s) => {
        this.#interestAcks.ack(this.#daemonOf(s).name, fieldInt(msg, "n", { min: 0 }));
        return undefined;
      },
      dack: (msg, s) => {
        const d = this.#daemonOf(s);
        const dseq = fieldInt(msg, "dseq", { min: 0 });
        if (dseq > d.acked && dseq <= d.dseq) {
          d.acked = dseq;
          d.dirty = true;
          this.#acks.set(d.name, dseq);
          // deleting acknowledged deliveries is not urgent: it rides along with the next
          // commit (or a lazy one), off the path of the next message
          this.#tick.scheduleWithin(LAZY_COMMIT_MS);
        }
        return undefined;
      },
    };
  }

  /** Called when a connection ends. */
  sessionClosed(session: PeerSession): void {
    const name = session.data.daemon as string | undefined;
    if (!name) return;
    const d = this.#daemons.get(name);
    if (d && d.session === session) {
      d.session = undefined;
      this.#interestAcks.drop(name);
      this.#ctx.events.emit("link.down", { daemon: name });
    }
  }

  /** Status fields for `ctl status`. */
  status(): Record<string, unknown> {
    this.#flushOrFail(); // deferred deletions first, so the backlog below is exact
    const backlog: Record<string, number> = {};
    const daemons: Record<string, unknown> = {};
    for (const d of this.#daemons.values()) {
      backlog[d.name] = this.#store.backlog(d.name, d.acked);
      daemons[d.name] = {
        connected: d.session !== undefined,
        backlog: backlog[d.name],
        seen: d.seen,
        dseq: d.committed,
        acked: d.acked,
      };
    }
    return {
      users: this.#users.size,
      topics: this.#topics.size,
      subscriptions: this.#subs.size,
      daemons_connected: [...this.#daemons.values()].filter((d) => d.session).map((d) => d.name),
      messages_in: this.messagesIn,
      messages_out: this.messagesOut,
      sent_early: this.#sentEarly,
      sent_from_disk: this.#sentStored,
      backlog,
      daemons,
      memory_mib: memoryMiB(),
    };
  }

  /** Writes what is pending and stops. */
  close(): void {
    if (this.#closed) return;
    if (!this.#storeFailure.tripped) this.#flush();
    this.#closed = true;
    clearTimeout(this.#pubackTimer);
    this.#tick.close();
    this.#idle.close();
    this.#interestAcks.drop();
  }

  #daemonOf(s: PeerSession): DaemonState {
    const name = s.data.daemon as string | undefined;
    const d = name ? this.#daemons.get(name) : undefined;
    if (!d || d.session !== s) {
      throw new ProtocolError(
        ErrorCode.HelloRequired,
        "Cannot serve this frame: send attach first (daemons only)",
      );
    }
    return d;
  }

  #ownUser(msg: Message, s: PeerSession): number {
    const d = this.#daemonOf(s);
    const user = fieldInt(msg, "user", { min: 1 });
    const owner = this.#users.get(user);
    if (owner === undefined) {
      throw new ProtocolError(MomErrorCode.UnknownUser, `Cannot use user ${user}: no such user`);
    }
    if (owner !== d.name) {
      throw new ProtocolError(
        MomErrorCode.WrongDaemon,
        `Cannot use user ${user} from daemon ${d.name}: it lives on daemon ${owner}`,
      );
    }
    return user;
  }

  #attach(msg: Message, s: PeerSession): Message {
    const name = s.peer.name;
    if (!name || s.peer.role !== "daemon") {
      throw new ProtocolError(
        ErrorCode.BadField,
        "Cannot attach: only a daemon with a name (in its hello) may attach",
      );
    }
    const epoch = fieldString(msg, "epoch", { maxLength: 100 });
    const brokerEpoch = typeof msg.broker === "string" ? msg.broker : "";
    let acked = fieldInt(msg, "acked", { min: 0 });
    let d = this.#daemons.get(name);
    if (!d) {
      d = {
        name,
        epoch,
        seen: 0,
        dseq: 0,
        acked: 0,
        seenPending: 0,
        committed: 0,
        sent: 0,
        reserved: 0,
        pubackSent: 0,
        pumping: false,
        dirty: true,
        othersTold: true,
        interestN: 0,
      };
      this.#daemons.set(name, d);
    }
    if (d.epoch !== epoch) {
      // the daemon lost its data: its publication numbering starts again
      this.#ctx.log.warn(`daemon ${name} has a new epoch: its publication numbering restarts`);
      d.epoch = epoch;
      d.seen = 0;
      d.seenPending = 0;
      d.dirty = true;
    }
    if (brokerEpoch !== this.#store.epoch) acked = d.acked;
    if (acked > d.acked && acked <= d.committed) {
      d.acked = acked;
      d.dirty = true;
      this.#acks.set(name, acked);
    }
    const old = d.session;
    d.session = s;
    s.data.daemon = name;
    if (old) {
      old.data.daemon = undefined;
      old.conn.close();
    }
    d.sent = d.acked;
    d.pubackSent = d.seen; // attach.ok tells the daemon `seen`
    this.#interestAcks.drop(name); // what waited for the old session waits no more
    d.othersTold = this.#subCounts.others(name);
    this.#saveDaemonNow(d);
    this.#ctx.events.emit("link.up", {
      daemon: name,
      backlog: this.#store.backlog(name, d.acked),
    });
    queueMicrotask(() => this.#pump(d));
    return {
      t: "attach.ok",
      broker: this.#store.epoch,
      seen: d.seen,
      acked: d.acked,
      others: d.othersTold,
    };
  }

  /**
   * Tells each attached daemon whose "another daemon has a subscription" changed; returns
   * the acknowledgements to wait for (of those told it is now true).
   */
  #tellInterest(): Promise<void>[] {
    const waits: Promise<void>[] = [];
    for (const d of this.#daemons.values()) {
      if (d.session === undefined) continue;
      const others = this.#subCounts.others(d.name);
      if (others === d.othersTold) continue;
      d.othersTold = others;
      const n = ++d.interestN;
      // a frame above the high-water mark is still queued: wait for it too
      d.session.send({ t: "interest", others, n }, true);
      if (others) waits.push(this.#interestAcks.wait(d.name, n));
    }
    return waits;
  }

  #saveDaemonNow(d: DaemonState): void {
    if (this.#rows.length === 0) {
      this.#store.commit([], [d], this.#takeAcks(), []);
      d.dirty = false;
    } else {
      this.#schedule();
    }
  }

  #takeAcks(): Array<[string, number]> {
    const acks = [...this.#acks];
    this.#acks.clear();
    return acks;
  }

  #pub(msg: Message, s: PeerSession): void {
    const d = this.#daemonOf(s);
    const seq = fieldInt(msg, "seq", { min: 1 });
    const from = fieldInt(msg, "user", { min: 1 });
    const payload = fieldBytes(msg, "payload");
    const meta = msg.meta instanceof Uint8Array ? msg.meta : undefined;
    this.#routeOne(d, seq, from, msg.topic, payload, msg.local === true, meta);
  }

  /**
   * `pubs {seq, users, topics, payloads, local?}`: publications `seq`, `seq + 1`, … of one
   * daemon in one frame (the columns are parallel arrays).
   */
  #pubs(msg: Message, s: PeerSession): void {
    const d = this.#daemonOf(s);
    const p = readPubs(msg);
    for (let i = 0; i < p.users.length; i++) {
      this.#routeOne(
        d,
        p.seq + i,
        p.users[i],
        p.topics[i],
        p.payloads[i],
        p.local,
        p.metas?.[i] ?? undefined,
      );
    }
  }

  /** Routes one publication of daemon `d` (once: a resent one is recognised by its seq). */
  #routeOne(
    d: DaemonState,
    seq: number,
    from: number,
    rawTopic: unknown,
    payload: Uint8Array,
    local: boolean,
    meta?: Uint8Array,
  ): void {
    if (seq <= d.seenPending) {
      this.#pubbers.add(d);
      this.#schedule();
      return;
    }
    d.seenPending = seq;
    d.dirty = true;
    this.#pubbers.add(d);
    this.#schedule();
    let topic: string;
    try {
      topic = checkTopic(rawTopic);
    } catch (err) {
      // acknowledged by the daemon already; it cannot be routed, so it is dropped loudly
      this.#ctx.events.emit("msg.dropped", {
        id: `${d.name}:${seq}`,
        reason: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    if (payload.length > MAX_PAYLOAD_BYTES) {
      this.#ctx.events.emit("msg.dropped", { id: `${d.name}:${seq}`, reason: "payload too large" });
      return;
    }
    this.messagesIn++;
    const id = `${d.name}:${seq}`;
    if (meta !== undefined && meta.length > 0 && (meta[0] & RETAIN_BIT) !== 0) {
      // MQTT retained message: the last one of its topic is kept here for new subscribers
      const r: RetainedRow = { topic, id, payload, from, meta };
      this.#store.setRetained(r);
      if (payload.length === 0) this.#retained.delete(topic);
      else this.#retained.set(topic, r);
    }
    if (!this.#topics.has(topic)) {
      this.#topics.add(topic);
      this.#newTopics.push(topic);
    }
    // `local`: the publishing daemon delivered to its own users itself
    const skip = local ? d.name : undefined;
    let to = 0;
    let byDaemon: Map<string, number[]> | undefined;
    let single: string | undefined;
    let singleUsers: number[] | undefined;
    for (const r of this.#subs.match(topic)) {
      const daemon = this.#users.get(r.user);
      if (daemon === undefined || (r.user === from && !r.own) || daemon === skip) continue;
      to++;
      if (single === undefined) {
        single = daemon;
        singleUsers = [r.user];
      } else if (single === daemon && !byDaemon) {
        singleUsers!.push(r.user);
      } else {
        if (!byDaemon) byDaemon = new Map([[single, singleUsers!]]);
        const list = byDaemon.get(daemon);
        if (list) list.push(r.user);
        else byDaemon.set(daemon, [r.user]);
      }
    }
    if (single !== undefined && !byDaemon) byDaemon = new Map([[single, singleUsers!]]);
    if (byDaemon) {
      for (const [daemon, users] of byDaemon) {
        const dest = this.#destination(daemon);
        dest.dseq++;
        dest.dirty = true;
        const row: OutboxRow = { daemon, dseq: dest.dseq, id, topic, payload, from, users };
        if (meta !== undefined) row.meta = meta;
        this.#rows.push(row);
        // overlap the commit with the hop to the daemon (it dedupes by dseq and by publisher
        // seq); the publisher is acknowledged only after the commit
        const session = dest.session;
        if (
          session && !dest.pumping && dest.sent === row.dseq - 1 &&
          session.conn.pendingBytes < EARLY_SEND_LIMIT
        ) {
          if (row.dseq > dest.reserved) {
            // numbers sent before their commit are never assigned again after a crash
            dest.reserved = row.dseq + DSEQ_RESERVATION;
            this.#store.setReserved(dest.name, dest.reserved);
          }
          this.#sendRow(dest, row, false);
          this.#sentEarly++;
        }
      }
    }
    this.#published.push({ id, topic, to });
  }

  #destination(name: string): DaemonState {
    let d = this.#daemons.get(name);
    if (!d) {
      d = {
        name,
        epoch: "",
        seen: 0,
        dseq: 0,
        acked: 0,
        seenPending: 0,
        committed: 0,
        sent: 0,
        reserved: 0,
        pubackSent: 0,
        pumping: false,
        dirty: true,
        othersTold: true,
        interestN: 0,
      };
      this.#daemons.set(name, d);
    }
    return d;
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
    const rows = this.#rows;
    const dirty = [...this.#daemons.values()].filter((d) => d.dirty);
    const acks = this.#takeAcks();
    const newTopics = this.#newTopics;
    const pubbers = this.#pubbers;
    const published = this.#published;
    if (
      rows.length === 0 && dirty.length === 0 && acks.length === 0 && pubbers.size === 0 &&
      newTopics.length === 0
    ) return;
    this.#rows = [];
    this.#newTopics = [];
    this.#pubbers = new Set();
    this.#published = [];
    const saved = dirty.map((d) => ({
      name: d.name,
      epoch: d.epoch,
      seen: d.seenPending,
      dseq: d.dseq,
      acked: d.acked,
    }));
    this.#store.commit(rows, saved, acks, newTopics);
    this.#idle.wrote();
    for (const d of dirty) {
      d.dirty = false;
      d.seen = d.seenPending;
      d.committed = d.dseq;
    }
    // a puback only lets the daemon delete its outbox: one per ACK_EVERY publications, or
    // ACK_LAZY_MS after the last, saves a frame (and a wake-up of the daemon) per message
    for (const d of pubbers) {
      if (d.seen - d.pubackSent >= ACK_EVERY) this.#sendPuback(d);
      else this.#lazyPubacks.add(d);
    }
    if (this.#lazyPubacks.size > 0 && this.#pubackTimer === undefined) {
      this.#pubackTimer = setTimeout(() => {
        this.#pubackTimer = undefined;
        for (const d of this.#lazyPubacks) this.#sendPuback(d);
        this.#lazyPubacks.clear();
      }, ACK_LAZY_MS);
    }
    const events = this.#ctx.events;
    for (const p of published) events.emit("msg.published", p);
    for (const row of rows) {
      const dest = this.#daemons.get(row.daemon)!;
      if (!dest.session || dest.pumping || dest.sent >= row.dseq) continue;
      if (dest.sent !== row.dseq - 1) {
        this.#pump(dest);
        continue;
      }
      this.#sendRow(dest, row, true);
    }
  }

  #sendPuback(d: DaemonState): void {
    if (!d.session || d.seen <= d.pubackSent) return;
    try {
      d.session.send({ t: "puback", seq: d.seen });
      d.pubackSent = d.seen;
    } catch {
      // the link went away; the daemon learns `seen` when it attaches again
    }
  }

  #sendRow(dest: DaemonState, row: OutboxRow, pumpWhenFull: boolean): boolean {
    dest.sent = row.dseq;
    this.messagesOut++;
    const ok = dest.session!.send(deliverFrame(row));
    if (!ok && pumpWhenFull) this.#pump(dest);
    return ok;
  }

  /** Streams stored deliveries to `dest` from its `sent` point, respecting backpressure. */
  #pump(dest: DaemonState): void {
    if (dest.pumping || !dest.session || this.#closed) return;
    dest.pumping = true;
    const session = dest.session;
    void (async () => {
      try {
        for (let round = 0; round < 1_000_000; round++) {
          if (this.#closed || dest.session !== session || session.conn.closed) return;
          if (session.conn.pendingBytes > 0) {
            await session.conn.drained();
            if (dest.session !== session || this.#closed) return;
          }
          if (dest.sent >= dest.committed) return;
          const rows = this.#store.outbox(dest.name, dest.sent, PUMP_CHUNK);
          if (rows.length === 0) {
            // nothing stored after `sent` up to `committed` (a numbering gap): caught up
            dest.sent = Math.max(dest.sent, dest.committed);
            return;
          }
          let blocked = false;
          for (const row of rows) {
            dest.sent = row.dseq;
            this.messagesOut++;
            this.#sentStored++;
            if (!session.send(deliverFrame(row))) blocked = true;
          }
          if (blocked) await session.conn.drained();
        }
      } catch (err) {
        this.#ctx.log.warn(`pump to ${dest.name} stopped: ${String(err)}`);
      } finally {
        dest.pumping = false;
        if (dest.session === session && dest.sent < dest.committed && !this.#closed) {
          queueMicrotask(() => this.#pump(dest));
        }
      }
    })();
  }
}

/** Retain bit of a publication's meta byte 0 (MQTT; see `mqtt/meta.ts`). */
const RETAIN_BIT = 4;

/** The `deliver` frame of a stored delivery. */
function deliverFrame(row: OutboxRow): Message {
  const frame: Message = {
    t: "deliver",
    dseq: row.dseq,
    id: row.id,
    topic: row.topic,
    payload: row.payload,
    from: row.from,
    users: row.users,
  };
  if (row.meta !== undefined) frame.meta = row.meta;
  return frame;
}

function memoryMiB(): Record<string, number> {
  const m = Deno.memoryUsage();
  const mib = (n: number) => Math.round(n / 104_857.6) / 10;
  return { rss: mib(m.rss), heap_used: mib(m.heapUsed), external: mib(m.external) };
}

/** Publications after which a `puback` goes out at once (else after ACK_LAZY_MS). */
const ACK_EVERY = 1_000;
/** How long a `puback` may wait. */
const ACK_LAZY_MS = 20;

/** How long deletions of acknowledged deliveries may wait for a commit. */
const LAZY_COMMIT_MS = 50;

/** Queued bytes to a daemon below which a delivery is sent before its commit. */
const EARLY_SEND_LIMIT = 256 * 1024;

/** Delivery numbers reserved on disk at a time for early sends (skipped after a restart). */
const DSEQ_RESERVATION = 100_000;

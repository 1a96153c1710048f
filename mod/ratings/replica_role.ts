/**
 * `peerd --role replica`: a replica manager of the gossip architecture serving movie
 * ratings.
 *
 * State: the value (ratings table, in memory and in SQLite) with its value timestamp, the
 * replica timestamp, the update log, the executed-update ids and the timestamp table (the
 * last replica timestamp heard from each peer). An update waits until the RM has applied
 * everything the client had seen (`prev ≤ value ts`, fetching missing records from peers at
 * once), is checked, gets the next sequence number of this RM, is applied, committed, and
 * pushed to `f − 1` peers before it is acknowledged. A query waits the same way, then is
 * answered from memory. Background gossip exchanges log records both ways every
 * `--gossip-interval`; stable records are applied in timestamp order; a record is dropped
 * from the log once every known RM has it.
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import {
  aborted,
  type RoleContext,
  type RoleDefinition,
  roleMembers,
  startNodeServer,
} from "../process/mod.ts";
import {
  ErrorCode,
  fieldOptInt,
  fieldOptString,
  fieldString,
  type Message,
  type PeerSession,
  ProtocolError,
  RemoteError,
} from "../wire/mod.ts";
import { DatasetError, DEFAULT_SEED, generateDataset, readDatasetDir } from "./dataset.ts";
import { PeerLink } from "./peer_link.ts";
import {
  fieldMovie,
  fieldQuery,
  fieldTs,
  fieldUser,
  GOSSIP_BATCH,
  type QueryKind,
  readRecords,
  readUpdate,
  type RmStatus,
} from "./protocol.ts";
import type { RatingsState } from "./ratings_state.ts";
import { ReplicaStore } from "./replica_store.ts";
import { isCovered, type LogRecord, type RatingOp, seqOf, UpdateLog } from "./update_log.ts";
import {
  aheadOf,
  entryOf,
  leq,
  merge,
  mergeInto,
  normalize,
  parseVectorTs,
  total,
  type VectorTs,
} from "./vector_ts.ts";

/** Executed update ids kept in memory; older ones are found in the executed table. */
const RECENT_IDS = 100_000;

interface Peer {
  name: string;
  hostname: string;
  port: number;
  link: PeerLink;
  exchanging: boolean;
  again: boolean;
  snapshotting: boolean;
}

interface Waiter {
  prev: VectorTs;
  since: number;
  deadline: number;
  resolve(waitedMs: number): void;
  reject(err: unknown): void;
}

interface PushJob {
  records: LogRecord[];
  need: number;
  resolve(copies: number): void;
}

/**
 * The last-writer-wins tie-break of a record: its origin (records of one origin never tie on
 * the timestamp total), then its update id.
 */
function versionTag(r: LogRecord): string {
  return `${r.origin}/${r.uid}`;
}

/** The replica manager of one process. */
class Replica {
  readonly #ctx: RoleContext;
  readonly #self: string;
  #store!: ReplicaStore;
  #state!: RatingsState;
  #log = new UpdateLog();
  /** Recently executed update ids (bounded); older ones are looked up in SQLite. */
  #recent = new Set<string>();
  #uidTs = new Map<string, VectorTs>();
  #valueTs: VectorTs = {};
  #replicaTs: VectorTs = {};
  #table = new Map<string, VectorTs>();
  #gcFloor: VectorTs = {};
  #peers = new Map<string, Peer>();
  #waiters: Waiter[] = [];
  #commitWaiters: Array<() => void> = [];
  #commitTimer: ReturnType<typeof setTimeout> | undefined;
  #pushJobs: PushJob[] = [];
  #pushTimer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = 0;
  #status: RmStatus = "ACTIVE";
  #draining = false;
  #stopping = false;
  /** Resolves once the first gossip exchange with every peer has finished (or failed). */
  #startup: Promise<void> = Promise.resolve();
  #applied = 0;
  #tasks = new Set<Promise<unknown>>();
  #advertised = "";

  constructor(ctx: RoleContext) {
    this.#ctx = ctx;
    this.#self = ctx.name;
  }

  get #gossipMs(): number {
    return Number(this.#ctx.options.gossipInterval ?? 200);
  }

  async run(): Promise<number> {
    const ctx = this.#ctx;
    await Deno.mkdir(ctx.dataDir, { recursive: true });
    this.#store = new ReplicaStore(`${ctx.dataDir}/replica.db`);
    try {
      if (!this.#store.initialised) {
        const t0 = performance.now();
        let data;
        try {
          data = ctx.options.dataset
            ? await readDatasetDir(String(ctx.options.dataset))
            : generateDataset({ seed: DEFAULT_SEED });
        } catch (err) {
          if (err instanceof DatasetError) throw new ConfigError(`--dataset: ${err.message}`);
          throw err;
        }
        this.#store.importDataset(data);
        ctx.log.info(
          `loaded ${data.movies.length} movies and ${data.ratings.length} ratings in ${
            Math.round(performance.now() - t0)
          } ms`,
        );
      }
      this.#restore();
      for (const node of roleMembers(ctx, "replica")) {
        if (node.name !== this.#self) this.#addPeer(node.name, node.hostname, node.port);
      }
      const server = startNodeServer(ctx, {
        handlers: {
          "ratings.query": (msg, session) => this.#onQuery(msg, session),
          "ratings.update": (msg, session) => this.#onUpdate(msg, session),
          "rm.ping": () => ({ t: "rm.pong", status: this.#status, ts: this.#valueTs }),
          "rm.gossip": (msg) => this.#onGossip(msg),
          "rm.snapshot": (msg) => this.#onSnapshot(msg),
        },
        ctl: {
          status: async () => await this.#statusReply(),
          drain: () => {
            this.#draining = true;
            this.#updateStatus();
            return { status: this.#status, in_flight: this.#inFlight };
          },
          resume: () => {
            this.#draining = false;
            this.#updateStatus();
            return { status: this.#status };
          },
        },
      });
      this.#advertised = `${ctx.listen.hostname}:${server.port}`;
      const gossipTimer = setInterval(() => this.#gossipRound(), this.#gossipMs);
      const sweepTimer = setInterval(() => this.#sweep(), 100);
      const statusTimer = setInterval(
        () => this.#updateStatus(),
        ctx.options.chaosStatus ? 1_000 : 250,
      );
      try {
        ctx.events.emit("ready", {
          listen: this.#advertised,
          peers: [...this.#peers.keys()],
          ratings: this.#state.size,
          value_ts: normalize(this.#valueTs),
        });
        ctx.events.emit("rm.status", { status: this.#status });
        this.#startup = this.#withTimeout(
          Promise.allSettled([...this.#peers.values()].map((p) => this.#exchange(p))),
          2_000,
        );
        await aborted(ctx.signal);
      } finally {
        this.#stopping = true;
        clearInterval(gossipTimer);
        clearInterval(sweepTimer);
        clearInterval(statusTimer);
        this.#draining = true;
        this.#updateStatus();
        for (const w of this.#waiters.splice(0)) {
          w.reject(new ProtocolError(ErrorCode.Unavailable, "Cannot answer: replica stopping"));
        }
        this.#commitNow();
        await this.#withTimeout(
          Promise.allSettled([...this.#peers.values()].map((p) => this.#exchange(p))),
          1_000,
        );
        await this.#withTimeout(Promise.allSettled([...this.#tasks]), 1_000);
        await server.close();
        clearTimeout(this.#commitTimer);
        clearTimeout(this.#pushTimer);
        for (const job of this.#pushJobs.splice(0)) job.resolve(0);
        this.#commitNow();
        await Promise.all([...this.#peers.values()].map((p) => p.link.close()));
      }
    } finally {
      this.#store.close();
    }
    ctx.events.emit("stopped", { applied: this.#applied, log_size: this.#log.size });
    return 0;
  }

  #restore(): void {
    const stored = this.#store.load();
    this.#state = stored.state;
    this.#valueTs = stored.meta.get("value") ?? {};
    this.#replicaTs = stored.meta.get("replica") ?? {};
    this.#gcFloor = stored.meta.get("gc_floor") ?? {};
    for (const [key, ts] of stored.meta) {
      if (key.startsWith("table.")) this.#table.set(key.slice(6), ts);
    }
    for (const r of stored.log) {
      this.#log.append(r);
      this.#uidTs.set(r.uid, r.ts);
      mergeInto(this.#replicaTs, { [r.origin]: seqOf(r) });
    }
    this.#applyStable();
  }

  #addPeer(name: string, hostname: string, port: number): Peer {
    const existing = this.#peers.get(name);
    if (existing) return existing;
    const peer: Peer = {
      name,
      hostname,
      port,
      exchanging: false,
      again: false,
      snapshotting: false,
      link: new PeerLink(hostname, port, {
        role: "replica",
        name: this.#self,
        secret: this.#ctx.secret,
        maxFrame: this.#ctx.maxFrame,
        timeoutMs: 3_000,
      }),
    };
    this.#peers.set(name, peer);
    return peer;
  }

  // ── client requests ──

  #onQuery(msg: Message, session: PeerSession): Message | undefined {
    const q = fieldQuery(msg);
    const user = fieldUser(msg);
    const movie = q === "all" ? 0 : this.#knownMovie(msg);
    const prev = fieldTs(msg, "prev");
    this.#refuseWhenDraining();
    if (leq(prev, this.#valueTs) && !this.#store.dirty) {
      if (this.#ctx.events.debugEnabled) {
        this.#ctx.events.debug("rm.query", { prev: normalize(prev), waited: 0, q, user });
      }
      return this.#answer(q, user, movie);
    }
    this.#inFlight++;
    this.#track(
      this.#waitFor(prev).then(
        (waited) => {
          if (waited > 0) {
            this.#ctx.events.emit("rm.query", {
              prev: normalize(prev),
              waited: Math.round(waited * 10) / 10,
              q,
              user,
            });
          }
          session.reply(msg, this.#answer(q, user, movie));
        },
        (err) => session.replyError(msg, err),
      ).finally(() => this.#inFlight--),
    );
    return undefined;
  }

  #onUpdate(msg: Message, session: PeerSession): Message | undefined {
    const { op, uid: given } = readUpdate(msg);
    const title = this.#titleOf(op.movie);
    const f = fieldOptInt(msg, "f", { min: 1, max: 16 }) ?? 1;
    this.#refuseWhenDraining();
    const uid = given ?? crypto.randomUUID();
    const dup = this.#duplicate(uid);
    if (dup) return this.#updated(op, uid, title, dup, true);
    this.#inFlight++;
    this.#track(
      (async () => {
        try {
          // Never reuse a sequence number a peer has seen from this RM (say it lost its disk):
          // first hear from the peers, then wait until our own old records are back.
          await this.#startup;
          await this.#waitFor(merge(op.prev, { [this.#self]: this.#ownFloor() }));
          const again = this.#duplicate(uid);
          if (again) {
            session.reply(msg, this.#updated(op, uid, title, again, true));
            return;
          }
          this.#checkPrecondition(op, title);
          const record = this.#createRecord(op, uid);
          await this.#commit();
          const copies = f > 1 ? await this.#replicate(record, f - 1) : 0;
          session.reply(msg, {
            ...this.#updated(op, uid, title, record.ts, false),
            copies: copies + 1,
          });
        } catch (err) {
          session.replyError(msg, err);
        } finally {
          this.#inFlight--;
        }
      })(),
    );
    return undefined;
  }

  #updated(op: RatingOp, uid: string, title: string, ts: VectorTs, duplicate: boolean): Message {
    return {
      t: "ratings.updated",
      kind: op.kind,
      user: op.user,
      movie: op.movie,
      title,
      rating: op.rating,
      uid,
      ts,
      duplicate,
      st: this.#status,
    };
  }

  /** The highest sequence number of this RM that any peer has reported holding. */
  #ownFloor(): number {
    let floor = 0;
    for (const ts of this.#table.values()) floor = Math.max(floor, entryOf(ts, this.#self));
    return floor;
  }

  #duplicate(uid: string): VectorTs | undefined {
    return this.#uidTs.get(uid) ?? (this.#isExecuted(uid) ? { ...this.#valueTs } : undefined);
  }

  #isExecuted(uid: string): boolean {
    return this.#recent.has(uid) || this.#store.hasExecuted(uid);
  }

  /** Records `uid` as executed (memory, bounded, and SQLite at the next commit). */
  #markExecuted(uid: string): void {
    if (this.#recent.has(uid)) return;
    this.#recent.add(uid);
    this.#store.executedAdded(uid);
    if (this.#recent.size > RECENT_IDS) {
      this.#recent.delete(this.#recent.values().next().value!);
    }
  }

  #knownMovie(msg: Message): number {
    const movie = fieldMovie(msg);
    this.#titleOf(movie);
    return movie;
  }

  #titleOf(movie: number): string {
    const m = this.#state.movies.get(movie);
    if (!m) {
      throw new ProtocolError(ErrorCode.NotFound, `Cannot find movie ${movie}: unknown movie id`, {
        movie,
      });
    }
    return m.title;
  }

  #refuseWhenDraining(): void {
    if (this.#draining) {
      throw new ProtocolError(
        ErrorCode.Unavailable,
        `Cannot serve: replica ${this.#self} is draining (OFFLINE)`,
      );
    }
  }

  #checkPrecondition(op: RatingOp, title: string): void {
    const current = this.#state.rating(op.user, op.movie);
    if (op.kind === "create" && current !== null) {
      throw new ProtocolError(
        ErrorCode.Conflict,
        `Cannot create: user ${op.user} already rated ${title} (${current.toFixed(1)}); use update`,
        { rating: current },
      );
    }
    if (op.kind !== "create" && current === null) {
      throw new ProtocolError(
        ErrorCode.NotFound,
        `Cannot ${op.kind}: user ${op.user} has not rated ${title}; use create`,
      );
    }
  }

  #answer(q: QueryKind, user: number, movie: number): Message {
    const s = this.#state;
    if (q === "average") {
      const { average, count } = s.average(movie);
      const title = s.movies.get(movie)!.title;
      return {
        t: "ratings.result",
        q,
        user,
        movie,
        title,
        average,
        count,
        ts: this.#valueTs,
        st: this.#status,
      };
    }
    if (q === "get") {
      const title = s.movies.get(movie)!.title;
      const rating = s.rating(user, movie);
      return {
        t: "ratings.result",
        q,
        user,
        movie,
        title,
        rating,
        ts: this.#valueTs,
        st: this.#status,
      };
    }
    const ratings = s.userRatings(user).map((c) => ({
      movie: c.movie,
      title: s.movies.get(c.movie)?.title ?? `movie ${c.movie}`,
      rating: c.rating,
    }));
    return { t: "ratings.result", q, user, ratings, ts: this.#valueTs, st: this.#status };
  }

  /** Resolves (with the ms waited) once `prev ≤ value ts` and the value is committed. */
  #waitFor(prev: VectorTs): Promise<number> {
    if (leq(prev, this.#valueTs)) return this.#commit().then(() => 0);
    const since = performance.now();
    const timeoutMs = Number(this.#ctx.options.queryTimeout ?? 5_000);
    const p = new Promise<number>((resolve, reject) => {
      this.#waiters.push({ prev, since, deadline: since + timeoutMs, resolve, reject });
    });
    this.#fetchMissing(prev);
    return p.then(async (waited) => {
      await this.#commit();
      return waited;
    });
  }

  /** Asks the peers that have what `prev` needs for it now (the original's pull). */
  #fetchMissing(prev: VectorTs): void {
    const missing = aheadOf(prev, this.#valueTs);
    const holders = [...this.#peers.values()].filter((p) => {
      const ts = this.#table.get(p.name) ?? {};
      return missing.includes(p.name) ||
        missing.some((rm) => entryOf(ts, rm) > entryOf(this.#valueTs, rm));
    });
    for (const peer of holders.length ? holders : this.#peers.values()) {
      this.#track(this.#exchange(peer));
    }
  }

  #checkWaiters(): void {
    if (this.#waiters.length === 0) return;
    const now = performance.now();
    this.#waiters = this.#waiters.filter((w) => {
      if (!leq(w.prev, this.#valueTs)) return true;
      w.resolve(now - w.since);
      return false;
    });
  }

  #sweep(): void {
    if (this.#waiters.length === 0) return;
    const now = performance.now();
    const keep: Waiter[] = [];
    const need: VectorTs = {};
    for (const w of this.#waiters) {
      if (w.deadline <= now) {
        const missing = aheadOf(w.prev, this.#valueTs);
        w.reject(
          new ProtocolError(
            ErrorCode.Unavailable,
            `Cannot answer: replica ${this.#self} still lacks updates from ${
              missing.join(", ")
            } after ${Math.round(now - w.since)} ms`,
            { missing },
          ),
        );
      } else {
        keep.push(w);
        mergeInto(need, w.prev);
      }
    }
    this.#waiters = keep;
    if (keep.length) this.#fetchMissing(need);
  }

  // ── the log ──

  #createRecord(op: RatingOp, uid: string): LogRecord {
    const seq = entryOf(this.#replicaTs, this.#self) + 1;
    this.#replicaTs[this.#self] = seq;
    const record: LogRecord = {
      origin: this.#self,
      ts: { ...this.#valueTs, [this.#self]: seq },
      uid,
      op,
    };
    this.#log.append(record);
    this.#store.logAdded(record);
    this.#uidTs.set(uid, record.ts);
    this.#process(record);
    this.#afterChange();
    return record;
  }

  #process(r: LogRecord): void {
    const cell = this.#state.write(
      r.op.user,
      r.op.movie,
      r.op.rating,
      r.op.time,
      total(r.ts),
      versionTag(r),
    );
    if (cell) this.#store.cellChanged(cell);
    this.#valueTs[r.origin] = seqOf(r);
    this.#markExecuted(r.uid);
    this.#applied++;
    this.#ctx.events.emit("rm.update", {
      id: r.uid,
      vts: normalize(r.ts),
      origin: r.origin,
      kind: r.op.kind,
      user: r.op.user,
      movie: r.op.movie,
      rating: r.op.rating,
      won: cell !== undefined,
    });
  }

  #applyStable(): number {
    const stable = this.#log.stable(this.#valueTs);
    for (const r of stable) this.#process(r);
    return stable.length;
  }

  #afterChange(): void {
    this.#store.setMeta("value", this.#valueTs);
    this.#store.setMeta("replica", this.#replicaTs);
    this.#checkWaiters();
    this.#scheduleCommit();
  }

  #collectGarbage(): void {
    const known = [
      this.#replicaTs,
      ...[...this.#peers.keys()].map((p) => this.#table.get(p) ?? {}),
    ];
    const removed = this.#log.collect(this.#valueTs, known);
    if (removed.length === 0) return;
    for (const r of removed) {
      this.#uidTs.delete(r.uid);
      mergeInto(this.#gcFloor, { [r.origin]: seqOf(r) });
    }
    this.#store.logRemoved(removed);
    this.#store.setMeta("gc_floor", this.#gcFloor);
    this.#scheduleCommit();
    this.#ctx.events.debug("rm.gc", { removed: removed.length, log_size: this.#log.size });
  }

  /** Merges records from `from` and learns its replica timestamp. */
  #receive(from: string, ts: VectorTs, records: LogRecord[]): number {
    const added = this.#log.merge(records, this.#replicaTs);
    for (const r of added) {
      this.#store.logAdded(r);
      this.#uidTs.set(r.uid, r.ts);
    }
    const known = this.#table.get(from) ?? {};
    const tableChanged = mergeInto(known, ts) || !this.#table.has(from);
    if (tableChanged) {
      this.#table.set(from, known);
      this.#store.setMeta(`table.${from}`, known);
    }
    if (added.length > 0) {
      this.#ctx.events.emit("rm.gossip", {
        peer: from,
        records: added.length,
        value_ts: normalize(this.#valueTs),
      });
      this.#applyStable();
    }
    this.#collectGarbage();
    if (added.length > 0 || tableChanged) this.#afterChange();
    return added.length;
  }

  // ── commit and push ──

  #scheduleCommit(): void {
    if (this.#commitTimer !== undefined) return;
    this.#commitTimer = setTimeout(() => {
      this.#commitTimer = undefined;
      this.#commitNow();
    }, 0);
  }

  #commitNow(): void {
    try {
      this.#store.flush();
    } catch (err) {
      this.#ctx.log.error(`Cannot write ${this.#store.path}: ${(err as Error).message}`);
      throw err;
    }
    for (const resolve of this.#commitWaiters.splice(0)) resolve();
  }

  /** Resolves after everything changed so far is committed to SQLite. */
  #commit(): Promise<void> {
    if (!this.#store.dirty) return Promise.resolve();
    this.#scheduleCommit();
    return new Promise((resolve) => this.#commitWaiters.push(resolve));
  }

  /** Pushes `record` to `need` peers (batched per tick); resolves with how many have it. */
  #replicate(record: LogRecord, need: number): Promise<number> {
    return new Promise((resolve) => {
      this.#pushJobs.push({ records: [record], need, resolve });
      if (this.#pushTimer === undefined) {
        this.#pushTimer = setTimeout(() => {
          this.#pushTimer = undefined;
          this.#track(this.#pushRound());
        }, 0);
      }
    });
  }

  async #pushRound(): Promise<void> {
    const jobs = this.#pushJobs.splice(0);
    if (jobs.length === 0) return;
    const need = Math.max(...jobs.map((j) => j.need));
    const records = jobs.flatMap((j) => j.records);
    const ring = this.#ringAfterSelf();
    const candidates = [...ring.filter((p) => p.link.up), ...ring.filter((p) => !p.link.up)];
    let copies = 0;
    for (const peer of candidates) {
      if (copies >= need || this.#stopping) break;
      if (await this.#push(peer, records)) copies++;
    }
    for (const job of jobs) job.resolve(Math.min(copies, job.need));
  }

  #ringAfterSelf(): Peer[] {
    const names = [...this.#peers.keys(), this.#self].sort();
    const i = names.indexOf(this.#self);
    return [...names.slice(i + 1), ...names.slice(0, i)].map((n) => this.#peers.get(n)!);
  }

  async #push(peer: Peer, records: LogRecord[]): Promise<boolean> {
    try {
      this.#commitNow();
      const reply = await peer.link.request(
        {
          t: "rm.gossip",
          from: this.#self,
          addr: this.#advertised,
          ts: this.#replicaTs,
          records,
          push: true,
        },
        1_500,
        { patient: true, resetOnTimeout: true },
      );
      const ts = parseVectorTs(reply.ts) ?? {};
      this.#receive(peer.name, ts, readRecords(reply));
      if (records.every((r) => isCovered(r, ts))) return true;
      await this.#exchange(peer);
      return records.every((r) => isCovered(r, this.#table.get(peer.name) ?? {}));
    } catch (err) {
      this.#ctx.log.debug(`push to ${peer.name} failed: ${(err as Error).message}`);
      return false;
    }
  }

  // ── gossip ──

  #gossipRound(): void {
    this.#collectGarbage();
    for (const peer of this.#peers.values()) this.#track(this.#exchange(peer));
  }

  /** One gossip exchange with `peer`: our records it lacks go, its records we lack come. */
  async #exchange(peer: Peer): Promise<void> {
    if (peer.exchanging) {
      peer.again = true;
      return;
    }
    peer.exchanging = true;
    try {
      for (let round = 0; round < 8; round++) {
        peer.again = false;
        this.#commitNow();
        const known = this.#table.get(peer.name) ?? {};
        if (this.#needsSnapshot(known) && this.#table.has(peer.name)) {
          await this.#sendSnapshot(peer);
          return;
        }
        const records = this.#log.missingFor(known, GOSSIP_BATCH);
        const reply = await peer.link.request(
          {
            t: "rm.gossip",
            from: this.#self,
            addr: this.#advertised,
            ts: this.#replicaTs,
            records,
          },
          3_000,
          { resetOnTimeout: true },
        );
        const ts = parseVectorTs(reply.ts) ?? {};
        const got = this.#receive(peer.name, ts, readRecords(reply));
        if (reply.snapshot_needed === true) {
          this.#ctx.log.info(`${peer.name} says it needs a snapshot from us`);
        }
        if (!peer.again && got < GOSSIP_BATCH && records.length < GOSSIP_BATCH) break;
      }
    } catch (err) {
      if (!(err instanceof RemoteError)) {
        this.#ctx.log.debug(`gossip with ${peer.name} failed: ${(err as Error).message}`);
      } else {
        this.#ctx.log.warn(`gossip with ${peer.name} refused: ${err.message}`);
      }
    } finally {
      peer.exchanging = false;
    }
  }

  #onGossip(msg: Message): Message {
    const from = fieldString(msg, "from", { maxLength: 128 });
    const ts = fieldTs(msg, "ts");
    const records = readRecords(msg);
    const addr = fieldOptString(msg, "addr");
    if (from === this.#self) {
      throw new ProtocolError(ErrorCode.Conflict, `Cannot gossip: peer uses my name ${from}`);
    }
    if (!this.#peers.has(from) && addr) {
      const m = /^(.+):(\d+)$/.exec(addr);
      if (m) {
        this.#addPeer(from, m[1], Number(m[2]));
        this.#ctx.log.info(`new replica ${from} at ${addr} joined`);
        this.#ctx.events.emit("rm.peer", { peer: from, addr });
      }
    }
    this.#receive(from, ts, records);
    this.#commitNow();
    const peer = this.#peers.get(from);
    if (peer && this.#needsSnapshot(ts)) {
      this.#track(this.#sendSnapshot(peer));
      return { t: "rm.gossip.ok", from: this.#self, ts: this.#replicaTs, records: [] };
    }
    const missing = msg.push === true ? [] : this.#log.missingFor(ts, GOSSIP_BATCH);
    return { t: "rm.gossip.ok", from: this.#self, ts: this.#replicaTs, records: missing };
  }

  /** Whether a peer at `ts` lacks records this RM has already garbage-collected. */
  #needsSnapshot(ts: VectorTs): boolean {
    return Object.keys(this.#gcFloor).some((o) => entryOf(ts, o) < this.#gcFloor[o]);
  }

  async #sendSnapshot(peer: Peer): Promise<void> {
    if (peer.snapshotting) return;
    peer.snapshotting = true;
    try {
      this.#commitNow();
      const cells: unknown[] = [];
      for (const c of this.#state.cells()) {
        if (c.vuid !== "") cells.push([c.user, c.movie, c.rating, c.time, c.vsum, c.vuid]);
      }
      this.#ctx.log.info(`sending a snapshot of ${cells.length} changed cells to ${peer.name}`);
      const reply = await peer.link.request(
        {
          t: "rm.snapshot",
          from: this.#self,
          value_ts: this.#valueTs,
          cells,
          executed: [...this.#recent],
        },
        10_000,
        { patient: true },
      );
      const ts = parseVectorTs(reply.ts) ?? {};
      this.#receive(peer.name, ts, []);
      this.#ctx.events.emit("rm.snapshot", { peer: peer.name, cells: cells.length, sent: true });
    } catch (err) {
      this.#ctx.log.warn(`snapshot to ${peer.name} failed: ${(err as Error).message}`);
    } finally {
      peer.snapshotting = false;
    }
  }

  #onSnapshot(msg: Message): Message {
    const from = fieldString(msg, "from", { maxLength: 128 });
    const valueTs = fieldTs(msg, "value_ts");
    const cells = msg.cells;
    const executed = msg.executed;
    if (!Array.isArray(cells) || !Array.isArray(executed)) {
      throw new ProtocolError(ErrorCode.BadField, "Cannot accept rm.snapshot: cells and executed");
    }
    let written = 0;
    for (const c of cells) {
      if (!Array.isArray(c) || c.length !== 6) continue;
      const [user, movie, rating, time, vsum, vuid] = c;
      if (
        typeof user !== "number" || typeof movie !== "number" || typeof time !== "number" ||
        typeof vsum !== "number" || typeof vuid !== "string" ||
        !(rating === null || typeof rating === "number")
      ) continue;
      const cell = this.#state.write(user, movie, rating, time, vsum, vuid);
      if (cell) {
        this.#store.cellChanged(cell);
        written++;
      }
    }
    for (const uid of executed) {
      if (typeof uid === "string") this.#markExecuted(uid);
    }
    mergeInto(this.#valueTs, valueTs);
    mergeInto(this.#replicaTs, this.#valueTs);
    this.#applyStable();
    this.#afterChange();
    this.#commitNow();
    this.#ctx.events.emit("rm.snapshot", { peer: from, cells: written, received: true });
    return { t: "rm.snapshot.ok", ts: this.#replicaTs };
  }

  // ── status ──

  #updateStatus(): void {
    let next: RmStatus;
    if (this.#draining) next = "OFFLINE";
    else if (this.#ctx.options.chaosStatus) {
      next = (["ACTIVE", "OVERLOADED", "OFFLINE"] as const)[Math.floor(Math.random() * 3)];
    } else {
      next = this.#inFlight > Number(this.#ctx.options.overloadThreshold ?? 1_000)
        ? "OVERLOADED"
        : "ACTIVE";
    }
    if (next !== this.#status) {
      this.#status = next;
      this.#ctx.events.emit("rm.status", { status: next, in_flight: this.#inFlight });
    }
  }

  async #statusReply(): Promise<Record<string, unknown>> {
    this.#commitNow();
    const { checksum, ratings } = await this.#store.checksum();
    return {
      status: this.#status,
      value_ts: normalize(this.#valueTs),
      replica_ts: normalize(this.#replicaTs),
      log_size: this.#log.size,
      executed: this.#store.executedCount(),
      applied: this.#applied,
      in_flight: this.#inFlight,
      waiting_queries: this.#waiters.length,
      ratings,
      movies: this.#state.movies.size,
      checksum,
      gc_floor: normalize(this.#gcFloor),
      peers: [...this.#peers.values()].map((p) => ({
        name: p.name,
        address: `${p.hostname}:${p.port}`,
        up: p.link.up,
        ts: normalize(this.#table.get(p.name) ?? {}),
      })),
    };
  }

  #track<T>(p: Promise<T>): void {
    const task = p.catch(() => {});
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([p, new Promise((r) => timer = setTimeout(r, ms))]);
    clearTimeout(timer);
  }
}

/** The `replica` role. */
export const replicaRole: RoleDefinition = {
  name: "replica",
  summary: "movie-ratings replica manager (gossip architecture, vector timestamps, SQLite)",
  peers: "optional",
  defaultPort: 7701,
  options: [
    {
      flags: "--dataset <dir>",
      description: "initial data: DIR/movies.csv and DIR/ratings.csv (default: synthetic, seed 42)",
    },
    {
      flags: "--gossip-interval <ms>",
      description: "background gossip period",
      default: 200,
      kind: "int",
    },
    {
      flags: "--overload-threshold <n>",
      description: "requests in flight above which the RM reports OVERLOADED",
      default: 1000,
      kind: "int",
    },
    {
      flags: "--query-timeout <ms>",
      description: "how long a request may wait for missing updates before unavailable",
      default: 5000,
      kind: "int",
    },
    {
      flags: "--chaos-status",
      description: "report random ACTIVE/OVERLOADED/OFFLINE statuses (teaching)",
      kind: "bool",
    },
  ],
  examples: [
    "peerd --role replica --name rm1 --peers peers.json",
    "peerd ratings-gen --out data/movielens && peerd --role replica --name rm1 --peers peers.json --dataset data/movielens",
    "peerd ctl 127.0.0.1:7701 status",
  ],
  run: (ctx) => new Replica(ctx).run(),
};

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
  defineRole,
  linkSecurity,
  type OptionValues,
  type RoleContext,
  roleMembers,
  type RoleOptions,
  startNodeServer,
  Tick,
} from "../process/mod.ts";
import {
  ErrorCode,
  fieldOptInt,
  fieldOptString,
  fieldString,
  type FrameHandler,
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
  readRecords,
  readUpdate,
  type RmRequest,
  type RmStatus,
} from "./protocol.ts";
import { ReplicaManager } from "./replica_manager.ts";
import { ReplicaStore } from "./replica_store.ts";
import { isCovered, type LogRecord, type RatingOp } from "./update_log.ts";
import { merge, mergeInto, normalize, parseVectorTs, type VectorTs } from "./vector_ts.ts";
import { prepareDataDir, StorageError, STORE_FAILED } from "../storage/mod.ts";

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

/** The replica role's options. */
const REPLICA_OPTIONS = {
  dataset: {
    type: "string",
    arg: "dir",
    help: "initial data: DIR/movies.csv and DIR/ratings.csv (default: synthetic, seed 42)",
  },
  gossipInterval: {
    type: "int",
    arg: "ms",
    default: 200,
    min: 1,
    help: "background gossip period",
  },
  overloadThreshold: {
    type: "int",
    default: 1000,
    min: 0,
    help: "requests in flight above which the RM reports OVERLOADED",
  },
  queryTimeout: {
    type: "int",
    arg: "ms",
    default: 5000,
    min: 1,
    help: "how long a request may wait for missing updates before unavailable",
  },
  chaosStatus: {
    type: "bool",
    help: "report random ACTIVE/OVERLOADED/OFFLINE statuses (teaching)",
  },
} as const satisfies RoleOptions;

/** The replica manager of one process. */
class Replica {
  readonly #ctx: RoleContext<OptionValues<typeof REPLICA_OPTIONS>>;
  readonly #self: string;
  #store!: ReplicaStore;
  /** The replica algorithm (pure); this class wires it to sockets, timers and commits. */
  #rm!: ReplicaManager;
  #peers = new Map<string, Peer>();
  #waiters: Waiter[] = [];
  #commitWaiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  /** Set when a commit failed: nothing more is acknowledged and the role exits 1. */
  #storeFailure: StorageError | undefined;
  #onStoreFailed: (err: StorageError) => void = () => {};
  readonly #storeFailed: Promise<StorageError> = new Promise((r) => this.#onStoreFailed = r);
  /** Commits what changed in one turn in one transaction. */
  readonly #commitTick = new Tick(() => this.#commitNow());
  #pushJobs: PushJob[] = [];
  /** Pushes the records of one turn's updates to peers together. */
  readonly #pushTick = new Tick(() => this.#track(this.#pushRound()));
  #inFlight = 0;
  #status: RmStatus = "ACTIVE";
  #draining = false;
  #stopping = false;
  /** Resolves once the first gossip exchange with every peer has finished (or failed). */
  #startup: Promise<void> = Promise.resolve();
  #tasks = new Set<Promise<unknown>>();
  #advertised = "";

  constructor(ctx: RoleContext<OptionValues<typeof REPLICA_OPTIONS>>) {
    this.#ctx = ctx;
    this.#self = ctx.name;
  }

  get #gossipMs(): number {
    return this.#ctx.options.gossipInterval;
  }

  async run(): Promise<number> {
    const ctx = this.#ctx;
    prepareDataDir(ctx.dataDir);
    this.#store = new ReplicaStore(`${ctx.dataDir}/replica.db`);
    try {
      if (!this.#store.initialised) {
        const t0 = performance.now();
        let data;
        try {
          data = ctx.options.dataset
            ? await readDatasetDir(ctx.options.dataset)
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
      this.#rm = new ReplicaManager(this.#self, this.#store.load(), this.#store, {
        emit: (ev, fields) => {
          if (ev === "rm.gc") this.#ctx.events.debug(ev, fields);
          else this.#ctx.events.emit(ev, fields);
        },
      });
      for (const node of roleMembers(ctx, "replica")) {
        if (node.name !== this.#self) this.#addPeer(node.name, node.hostname, node.port);
      }
      const server = startNodeServer(ctx, {
        handlers: {
          "ratings.query": (msg, session) => this.#onQuery(msg, session),
          "ratings.update": (msg, session) => this.#onUpdate(msg, session),
          "rm.ping": () => ({ t: "rm.pong", status: this.#status, ts: this.#rm.valueTs }),
          "rm.gossip": (msg) => this.#onGossip(msg),
          "rm.snapshot": (msg) => this.#onSnapshot(msg),
        } satisfies Record<RmRequest, FrameHandler>,
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
          ratings: this.#rm.state.size,
          value_ts: normalize(this.#rm.valueTs),
        });
        ctx.events.emit("rm.status", { status: this.#status });
        this.#startup = this.#withTimeout(
          Promise.allSettled([...this.#peers.values()].map((p) => this.#exchange(p))),
          2_000,
        );
        const failure = await Promise.race([aborted(ctx.signal), this.#storeFailed]);
        if (failure) throw failure;
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
        this.#commitTick.close();
        this.#pushTick.close();
        for (const job of this.#pushJobs.splice(0)) job.resolve(0);
        this.#commitNow();
        await Promise.all([...this.#peers.values()].map((p) => p.link.close()));
      }
    } finally {
      this.#closeStore();
    }
    ctx.events.emit("stopped", { applied: this.#rm.applied, log_size: this.#rm.logSize });
    return 0;
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
        security: linkSecurity(this.#ctx),
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
    if (this.#rm.covers(prev) && !this.#store.dirty) {
      if (this.#ctx.events.debugEnabled) {
        this.#ctx.events.debug("rm.query", { prev: normalize(prev), waited: 0, q, user });
      }
      return this.#rm.answer(q, user, movie, this.#status);
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
          session.reply(msg, this.#rm.answer(q, user, movie, this.#status));
        },
        (err) => session.replyError(msg, err),
      ).finally(() => this.#inFlight--),
    );
    return undefined;
  }

  #onUpdate(msg: Message, session: PeerSession): Message | undefined {
    const { op, uid: given } = readUpdate(msg);
    const title = this.#rm.titleOf(op.movie);
    const f = fieldOptInt(msg, "f", { min: 1, max: 16 }) ?? 1;
    this.#refuseWhenDraining();
    const uid = given ?? crypto.randomUUID();
    const dup = this.#rm.duplicate(uid);
    if (dup) return this.#updated(op, uid, title, dup, true);
    this.#inFlight++;
    this.#track(
      (async () => {
        try {
          // Never reuse a sequence number a peer has seen from this RM (say it lost its disk):
          // first hear from the peers, then wait until our own old records are back.
          await this.#startup;
          await this.#waitFor(merge(op.prev, { [this.#self]: this.#rm.ownFloor() }));
          const again = this.#rm.duplicate(uid);
          if (again) {
            session.reply(msg, this.#updated(op, uid, title, again, true));
            return;
          }
          this.#rm.checkPrecondition(op, title);
          const record = this.#rm.createRecord(op, uid);
          this.#afterChange();
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

  #knownMovie(msg: Message): number {
    const movie = fieldMovie(msg);
    this.#rm.titleOf(movie);
    return movie;
  }

  #refuseWhenDraining(): void {
    if (this.#draining) {
      throw new ProtocolError(
        ErrorCode.Unavailable,
        `Cannot serve: replica ${this.#self} is draining (OFFLINE)`,
      );
    }
  }

  /** Resolves (with the ms waited) once `prev ≤ value ts` and the value is committed. */
  #waitFor(prev: VectorTs): Promise<number> {
    if (this.#rm.covers(prev)) return this.#commit().then(() => 0);
    const since = performance.now();
    const timeoutMs = this.#ctx.options.queryTimeout;
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
    const missing = this.#rm.missingFor(prev);
    const holders = [...this.#peers.values()].filter((p) => this.#rm.holds(p.name, missing));
    for (const peer of holders.length ? holders : this.#peers.values()) {
      this.#track(this.#exchange(peer));
    }
  }

  #checkWaiters(): void {
    if (this.#waiters.length === 0) return;
    const now = performance.now();
    this.#waiters = this.#waiters.filter((w) => {
      if (!this.#rm.covers(w.prev)) return true;
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
        const missing = this.#rm.missingFor(w.prev);
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

  /** After the manager changed something: wake the requests it unblocks, commit soon. */
  #afterChange(): void {
    this.#checkWaiters();
    this.#scheduleCommit();
  }

  /** Takes gossip from `from` into the manager. */
  #receive(from: string, ts: VectorTs, records: LogRecord[]): number {
    const { added, changed } = this.#rm.receive(from, ts, records, this.#peers.keys());
    if (changed) this.#afterChange();
    else if (this.#store.dirty) this.#scheduleCommit(); // garbage collected
    return added;
  }

  // ── commit and push ──

  #scheduleCommit(): void {
    this.#commitTick.schedule();
  }

  /** Closes the store; after a failed commit its second failure is not news. */
  #closeStore(): void {
    try {
      this.#store.close();
    } catch (err) {
      if (!this.#storeFailure) throw err;
    }
  }

  /**
   * Commits what changed. A failed commit (disk full, I/O error) stops acknowledging: the
   * waiting updates are answered `store_failed`, `store.failed` is emitted, and the role
   * exits 1 (memory is ahead of the disk; peers resend after the restart).
   */
  #commitNow(): void {
    if (this.#storeFailure) return;
    try {
      this.#store.flush();
    } catch (err) {
      const failure = new StorageError(
        `Cannot write ${this.#store.path}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
      this.#storeFailure = failure;
      this.#ctx.log.error(failure.message);
      this.#ctx.events.emit("store.failed", { code: failure.code, message: failure.message });
      const refusal = new ProtocolError(STORE_FAILED, failure.message);
      for (const w of this.#commitWaiters.splice(0)) w.reject(refusal);
      this.#onStoreFailed(failure);
      return;
    }
    for (const w of this.#commitWaiters.splice(0)) w.resolve();
  }

  /** Resolves after everything changed so far is committed to SQLite. */
  #commit(): Promise<void> {
    if (this.#storeFailure) {
      return Promise.reject(new ProtocolError(STORE_FAILED, this.#storeFailure.message));
    }
    if (!this.#store.dirty) return Promise.resolve();
    this.#scheduleCommit();
    return new Promise((resolve, reject) => this.#commitWaiters.push({ resolve, reject }));
  }

  /** Pushes `record` to `need` peers (batched per tick); resolves with how many have it. */
  #replicate(record: LogRecord, need: number): Promise<number> {
    return new Promise((resolve) => {
      this.#pushJobs.push({ records: [record], need, resolve });
      this.#pushTick.schedule();
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
          ts: this.#rm.replicaTs,
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
      return records.every((r) => isCovered(r, this.#rm.tableOf(peer.name)));
    } catch (err) {
      this.#ctx.log.debug(`push to ${peer.name} failed: ${(err as Error).message}`);
      return false;
    }
  }

  // ── gossip ──

  #gossipRound(): void {
    if (this.#rm.collectGarbage(this.#peers.keys()) > 0) this.#scheduleCommit();
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
        const known = this.#rm.tableOf(peer.name);
        if (this.#rm.needsSnapshot(known) && this.#rm.knows(peer.name)) {
          await this.#sendSnapshot(peer);
          return;
        }
        const records = this.#rm.recordsFor(known, GOSSIP_BATCH);
        const reply = await peer.link.request(
          {
            t: "rm.gossip",
            from: this.#self,
            addr: this.#advertised,
            ts: this.#rm.replicaTs,
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
    if (peer && this.#rm.needsSnapshot(ts)) {
      this.#track(this.#sendSnapshot(peer));
      return { t: "rm.gossip.ok", from: this.#self, ts: this.#rm.replicaTs, records: [] };
    }
    const missing = msg.push === true ? [] : this.#rm.recordsFor(ts, GOSSIP_BATCH);
    return { t: "rm.gossip.ok", from: this.#self, ts: this.#rm.replicaTs, records: missing };
  }

  async #sendSnapshot(peer: Peer): Promise<void> {
    if (peer.snapshotting) return;
    peer.snapshotting = true;
    try {
      this.#commitNow();
      const { cells, valueTs, executed } = this.#rm.snapshot();
      this.#ctx.log.info(`sending a snapshot of ${cells.length} changed cells to ${peer.name}`);
      const reply = await peer.link.request(
        {
          t: "rm.snapshot",
          from: this.#self,
          value_ts: valueTs,
          cells,
          executed,
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
    const written = this.#rm.applySnapshot(valueTs, cells, executed);
    this.#afterChange();
    this.#commitNow();
    this.#ctx.events.emit("rm.snapshot", { peer: from, cells: written, received: true });
    return { t: "rm.snapshot.ok", ts: this.#rm.replicaTs };
  }

  // ── status ──

  #updateStatus(): void {
    let next: RmStatus;
    if (this.#draining) next = "OFFLINE";
    else if (this.#ctx.options.chaosStatus) {
      next = (["ACTIVE", "OVERLOADED", "OFFLINE"] as const)[Math.floor(Math.random() * 3)];
    } else {
      next = this.#inFlight > this.#ctx.options.overloadThreshold ? "OVERLOADED" : "ACTIVE";
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
      value_ts: normalize(this.#rm.valueTs),
      replica_ts: normalize(this.#rm.replicaTs),
      log_size: this.#rm.logSize,
      executed: this.#store.executedCount(),
      applied: this.#rm.applied,
      in_flight: this.#inFlight,
      waiting_queries: this.#waiters.length,
      ratings,
      movies: this.#rm.state.movies.size,
      checksum,
      gc_floor: normalize(this.#rm.gcFloor),
      peers: [...this.#peers.values()].map((p) => ({
        name: p.name,
        address: `${p.hostname}:${p.port}`,
        up: p.link.up,
        ts: normalize(this.#rm.tableOf(p.name)),
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
export const replicaRole = defineRole({
  name: "replica",
  summary: "movie-ratings replica manager (gossip architecture, vector timestamps, SQLite)",
  peers: "optional",
  defaultPort: 7701,
  options: REPLICA_OPTIONS,
  examples: [
    "peerd --role replica --name rm1 --peers peers.json",
    "peerd ratings-gen --out data/movielens && peerd --role replica --name rm1 --peers peers.json --dataset data/movielens",
    "peerd ctl 127.0.0.1:7701 status",
  ],
  run: (ctx) => new Replica(ctx).run(),
});

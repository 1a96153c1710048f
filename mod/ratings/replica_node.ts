/**
 * One replica manager of the gossip architecture at work, over any
 * {@linkcode RatingsTransport}. An update waits until the RM has applied everything the
 * client had seen (`prev ≤ value ts`, fetching missing records from peers at once), is
 * checked, gets the next sequence number of this RM, is applied, committed, and pushed to
 * `f − 1` peers before it is acknowledged. A query waits the same way, then is answered from
 * memory. Background gossip exchanges log records both ways every `gossipMs`; a peer far
 * behind the garbage-collected log gets a snapshot (the peer side is `replica_peers.ts`).
 *
 * @module
 */
import type { EventSink, Logger } from "../events/mod.ts";
import type { StorageError } from "../storage/mod.ts";
import {
  ErrorCode,
  fieldOptInt,
  type Message,
  type PeerSession,
  ProtocolError,
} from "../wire/mod.ts";
import {
  fieldMovie,
  fieldQuery,
  fieldTs,
  fieldUser,
  RATINGS_FRAMES,
  readUpdate,
  type RmRequest,
  type RmStatus,
} from "./protocol.ts";
import { CommitBatcher } from "./commit_batcher.ts";
import { PrevWaiters } from "./prev_waiters.ts";
import { ReplicaManager } from "./replica_manager.ts";
import { ReplicaPeers } from "./replica_peers.ts";
import type { ReplicaStore } from "./replica_store.ts";
import type { RatingsTransport } from "./transport.ts";
import type { RatingOp } from "./update_log.ts";
import { merge, normalize, type VectorTs } from "./vector_ts.ts";

/** Options of {@linkcode ReplicaNode}. */
export interface ReplicaNodeOptions {
  /** This RM's name. */
  self: string;
  /** Where this RM's state is kept (loaded at construction, committed after changes). */
  store: ReplicaStore;
  /** How this RM reaches its peers. */
  transport: RatingsTransport;
  /** The peers known at start (more join through gossip). */
  peers: ReadonlyArray<{ name: string; address: string }>;
  /** The address this RM advertises in gossip (`host:port`). */
  advertised: string;
  /** Event sink (`rm.*` events). */
  events: Pick<EventSink, "emit" | "debug" | "debugEnabled">;
  /** Logger. */
  log: Pick<Logger, "debug" | "info" | "warn" | "error">;
  /** Background gossip period. @default {200} */
  gossipMs?: number;
  /** How long a request may wait for missing updates. @default {5000} */
  queryTimeoutMs?: number;
  /** Requests in flight above which the RM reports OVERLOADED. @default {1000} */
  overloadThreshold?: number;
  /** Report random statuses (teaching). @default {false} */
  chaosStatus?: boolean;
}

/** Every frame type a replica answers (clients' requests and peers' gossip). */
export const REPLICA_FRAME_TYPES: readonly RmRequest[] = RATINGS_FRAMES.map((f) => f.t);

/** What answers a request that completes later: a `PeerSession`, or a memory transport's. */
export type Responder = Pick<PeerSession, "reply" | "replyError">;

/** A frame handler of the replica: a reply now, or undefined when `responder` answers later. */
export type ReplicaHandler = (msg: Message, responder: Responder) => Message | undefined;

/**
 * One replica manager at work: the pure {@linkcode ReplicaManager} wired to its store
 * (commits batched per turn), a {@linkcode RatingsTransport} to its peers (push
 * replication, gossip, snapshots), timers (gossip, waiter sweep, status) and events. Any
 * transport carries it: the daemon's TCP one, or the memory network of the tests.
 * `start()` begins; `stop()` drains and ends (the caller closes its server between
 * `drain()` and `stop()`).
 */
export class ReplicaNode {
  readonly #o: ReplicaNodeOptions;
  readonly #self: string;
  readonly #store: ReplicaStore;
  readonly #transport: RatingsTransport;
  /** The replica algorithm (pure); this class wires it to the network, timers and commits. */
  readonly #rm: ReplicaManager;
  /** Gossip, push replication and snapshots with the other RMs. */
  readonly #peers: ReplicaPeers;
  readonly #waiters = new PrevWaiters();
  /** Commits what changed in one turn in one transaction; a failure stops acknowledging. */
  readonly #commits: CommitBatcher;
  #inFlight = 0;
  #status: RmStatus = "ACTIVE";
  #draining = false;
  /** Resolves once the first gossip exchange with every peer has finished (or failed). */
  #startup: Promise<void> = Promise.resolve();
  #tasks = new Set<Promise<unknown>>();
  #timers: Array<ReturnType<typeof setInterval>> = [];

  constructor(options: ReplicaNodeOptions) {
    this.#o = options;
    this.#self = options.self;
    this.#store = options.store;
    this.#transport = options.transport;
    this.#commits = new CommitBatcher(this.#store, options);
    this.#rm = new ReplicaManager(this.#self, this.#store.load(), this.#store, {
      emit: (ev, fields) => {
        if (ev === "rm.gc") this.#o.events.debug(ev, fields);
        else this.#o.events.emit(ev, fields);
      },
    });
    this.#peers = new ReplicaPeers({
      self: this.#self,
      advertised: options.advertised,
      rm: this.#rm,
      transport: this.#transport,
      events: options.events,
      log: options.log,
      commitNow: () => this.#commitNow(),
      received: (changed) => {
        if (changed) this.#afterChange();
        else if (this.#store.dirty) this.#scheduleCommit(); // garbage collected
      },
      track: (task) => this.#track(task),
    }, options.peers);
  }

  /** The replica algorithm's state (read-only use: status, tests). */
  get manager(): ReplicaManager {
    return this.#rm;
  }

  /** The failed commit, if one failed (then the store's close may fail too: no news). */
  get storeFailure(): StorageError | undefined {
    return this.#commits.failure;
  }

  /** Resolves with the error once a commit failed (the role then stops with it). */
  get failed(): Promise<StorageError> {
    return this.#commits.failed;
  }

  /** The replica status (`ACTIVE`, `OVERLOADED`, `OFFLINE`). */
  get status(): RmStatus {
    return this.#status;
  }

  /** Names of the known peers. */
  get peerNames(): string[] {
    return this.#peers.names;
  }

  /** The frame handlers of the replica protocol (clients' requests and peers' gossip). */
  handlers(): Readonly<Record<RmRequest, ReplicaHandler>> {
    return this.#handlers;
  }

  readonly #handlers: Readonly<Record<RmRequest, ReplicaHandler>> = {
    "ratings.query": (msg, session) => this.#onQuery(msg, session),
    "ratings.update": (msg, session) => this.#onUpdate(msg, session),
    "rm.ping": () => ({ t: "rm.pong", status: this.#status, ts: this.#rm.valueTs }),
    "rm.gossip": (msg) => this.#peers.onGossip(msg),
    "rm.snapshot": (msg) => this.#peers.onSnapshot(msg),
  };

  /** The `drain` control command: refuse new requests (OFFLINE). */
  drain(): Record<string, unknown> {
    this.#draining = true;
    this.#updateStatus();
    return { status: this.#status, in_flight: this.#inFlight };
  }

  /** The `resume` control command. */
  resume(): Record<string, unknown> {
    this.#draining = false;
    this.#updateStatus();
    return { status: this.#status };
  }

  /** Starts the timers and the first gossip exchange with every peer. */
  start(): void {
    const gossipMs = this.#o.gossipMs ?? 200;
    this.#timers.push(
      setInterval(() => this.#peers.gossipRound(), gossipMs),
      setInterval(() => this.#sweep(), 100),
      setInterval(() => this.#updateStatus(), this.#o.chaosStatus ? 1_000 : 250),
    );
    this.#o.events.emit("rm.status", { status: this.#status });
    this.#startup = this.#withTimeout(this.#peers.exchangeAll(), 2_000);
  }

  /**
   * Stops serving: timers off, OFFLINE, waiting requests refused, a last commit and a last
   * exchange with every peer, requests in flight finished (bounded).
   */
  async quiesce(): Promise<void> {
    this.#peers.stopping();
    for (const t of this.#timers.splice(0)) clearInterval(t);
    this.#draining = true;
    this.#updateStatus();
    this.#waiters.rejectAll(
      new ProtocolError(ErrorCode.Unavailable, "Cannot answer: replica stopping"),
    );
    this.#commitNow();
    await this.#withTimeout(this.#peers.exchangeAll(), 1_000);
    await this.#withTimeout(Promise.allSettled([...this.#tasks]), 1_000);
  }

  /** Ends: batchers off, a last commit, the transport closed. Call after `quiesce()`. */
  async stop(): Promise<void> {
    this.#commits.close();
    this.#peers.close();
    this.#commitNow();
    await this.#transport.close();
  }

  /** The `status` control command. */
  async statusReply(): Promise<Record<string, unknown>> {
    return await this.#statusReply();
  }

  // ── client requests ──

  #onQuery(msg: Message, session: Responder): Message | undefined {
    const q = fieldQuery(msg);
    const user = fieldUser(msg);
    const movie = q === "all" ? 0 : this.#knownMovie(msg);
    const prev = fieldTs(msg, "prev");
    this.#refuseWhenDraining();
    if (this.#rm.covers(prev) && !this.#store.dirty) {
      if (this.#o.events.debugEnabled) {
        this.#o.events.debug("rm.query", { prev: normalize(prev), waited: 0, q, user });
      }
      return this.#rm.answer(q, user, movie, this.#status);
    }
    this.#inFlight++;
    this.#track(
      this.#waitFor(prev).then(
        (waited) => {
          if (waited > 0) {
            this.#o.events.emit("rm.query", {
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

  #onUpdate(msg: Message, session: Responder): Message | undefined {
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
          const copies = f > 1 ? await this.#peers.replicate(record, f - 1) : 0;
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
    const p = this.#waiters.add(prev, performance.now(), this.#o.queryTimeoutMs ?? 5_000);
    this.#peers.fetchMissing(prev);
    return p.then(async (waited) => {
      await this.#commit();
      return waited;
    });
  }

  #checkWaiters(): void {
    this.#waiters.wake((prev) => this.#rm.covers(prev), performance.now());
  }

  /** Refuses the requests that waited too long; fetches again what the others wait for. */
  #sweep(): void {
    const need = this.#waiters.expire(performance.now(), (prev, waitedMs) => {
      const missing = this.#rm.missingFor(prev);
      return new ProtocolError(
        ErrorCode.Unavailable,
        `Cannot answer: replica ${this.#self} still lacks updates from ${
          missing.join(", ")
        } after ${Math.round(waitedMs)} ms`,
        { missing },
      );
    });
    if (need) this.#peers.fetchMissing(need);
  }

  /** After the manager changed something: wake the requests it unblocks, commit soon. */
  #afterChange(): void {
    this.#checkWaiters();
    this.#scheduleCommit();
  }

  // ── commits ──

  #scheduleCommit(): void {
    this.#commits.schedule();
  }

  /** Commits what changed now (before an answer or a frame that depends on it). */
  #commitNow(): void {
    this.#commits.now();
  }

  /** Resolves after everything changed so far is committed to SQLite. */
  #commit(): Promise<void> {
    return this.#commits.committed();
  }

  // ── status ──

  #updateStatus(): void {
    let next: RmStatus;
    if (this.#draining) next = "OFFLINE";
    else if (this.#o.chaosStatus) {
      next = (["ACTIVE", "OVERLOADED", "OFFLINE"] as const)[Math.floor(Math.random() * 3)];
    } else {
      next = this.#inFlight > (this.#o.overloadThreshold ?? 1_000) ? "OVERLOADED" : "ACTIVE";
    }
    if (next !== this.#status) {
      this.#status = next;
      this.#o.events.emit("rm.status", { status: next, in_flight: this.#inFlight });
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
      waiting_queries: this.#waiters.size,
      ratings,
      movies: this.#rm.state.movies.size,
      checksum,
      gc_floor: normalize(this.#rm.gcFloor),
      peers: this.#peers.status(),
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

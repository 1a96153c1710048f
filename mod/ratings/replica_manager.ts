/**
 * The replica manager of the gossip architecture as a pure state machine: the value (the
 * ratings table) with its value timestamp, the replica timestamp, the update log, the
 * executed-update ids and the timestamp table (the last replica timestamp heard from each
 * peer). It takes updates and gossip in and says what changed; it does no I/O and keeps no
 * timers. What must be stored goes to a {@linkcode ReplicaJournal} (the SQLite store, or
 * memory in tests); the role (`replica_role.ts`) wires it to sockets, timers and commits.
 *
 * The same code runs in the daemon and in the simulation test.
 *
 * @module
 */
import { ErrorCode, type Message, ProtocolError } from "../wire/mod.ts";
import type { QueryKind, RmStatus } from "./protocol.ts";
import type { Cell, RatingsState } from "./ratings_state.ts";
import type { StoredReplica } from "./replica_store.ts";
import { type LogRecord, type RatingOp, seqOf, UpdateLog } from "./update_log.ts";
import { aheadOf, entryOf, leq, mergeInto, normalize, total, type VectorTs } from "./vector_ts.ts";

/** Executed update ids kept in memory; older ones are found through the journal. */
export const RECENT_IDS = 100_000;

/** Where a replica manager's changes go to be stored (queued; the role commits them). */
export interface ReplicaJournal {
  /** A cell of the table changed. */
  cellChanged(cell: Cell): void;
  /** A record joined the log. */
  logAdded(record: LogRecord): void;
  /** Records left the log (garbage collected). */
  logRemoved(records: LogRecord[]): void;
  /** An update id was executed. */
  executedAdded(uid: string): void;
  /** Whether an update id was executed (stored or queued). */
  hasExecuted(uid: string): boolean;
  /** A timestamp to keep under `key` (`value`, `replica`, `gc_floor`, `table.<rm>`). */
  setMeta(key: string, ts: VectorTs): void;
}

/** A journal in memory: what a replica manager without a disk (a simulation) keeps. */
export class MemoryJournal implements ReplicaJournal {
  readonly cells = new Map<string, Cell>();
  readonly log = new Map<string, LogRecord>();
  readonly executed = new Set<string>();
  readonly meta = new Map<string, VectorTs>();

  cellChanged(cell: Cell): void {
    this.cells.set(`${cell.user}:${cell.movie}`, cell);
  }
  logAdded(record: LogRecord): void {
    this.log.set(`${record.origin}:${seqOf(record)}`, record);
  }
  logRemoved(records: LogRecord[]): void {
    for (const r of records) this.log.delete(`${r.origin}:${seqOf(r)}`);
  }
  executedAdded(uid: string): void {
    this.executed.add(uid);
  }
  hasExecuted(uid: string): boolean {
    return this.executed.has(uid);
  }
  setMeta(key: string, ts: VectorTs): void {
    this.meta.set(key, { ...ts });
  }
}

/** An event the manager reports (`rm.update`, `rm.gossip`, `rm.gc`). */
export type ReplicaEventSink = (ev: string, fields: Record<string, unknown>) => void;

/**
 * The last-writer-wins tie-break of a record: its origin (records of one origin never tie on
 * the timestamp total), then its update id.
 */
function versionTag(r: LogRecord): string {
  return `${r.origin}/${r.uid}`;
}

/** One cell of a snapshot: `[user, movie, rating, time, vsum, vuid]`. */
export type SnapshotCell = [number, number, number | null, number, number, string];

/**
 * The replica manager's state and algorithm. Every method that changes something returns
 * what the role needs to know (records added, cells written), and the manager has already
 * queued the change in its journal.
 */
export class ReplicaManager {
  /** This RM's name. */
  readonly self: string;
  readonly #journal: ReplicaJournal;
  readonly #emit: ReplicaEventSink;
  readonly #state: RatingsState;
  #log = new UpdateLog();
  /** Recently executed update ids (bounded); older ones are asked of the journal. */
  #recent = new Set<string>();
  #uidTs = new Map<string, VectorTs>();
  #valueTs: VectorTs = {};
  #replicaTs: VectorTs = {};
  #table = new Map<string, VectorTs>();
  #gcFloor: VectorTs = {};
  #applied = 0;

  /**
   * A manager for `self` from what was stored (or a fresh state with empty timestamps),
   * with stable records applied at once.
   */
  constructor(
    self: string,
    stored: StoredReplica,
    journal: ReplicaJournal,
    options: { emit?: ReplicaEventSink } = {},
  ) {
    this.self = self;
    this.#journal = journal;
    this.#emit = options.emit ?? (() => {});
    this.#state = stored.state;
    this.#valueTs = { ...stored.meta.get("value") };
    this.#replicaTs = { ...stored.meta.get("replica") };
    this.#gcFloor = { ...stored.meta.get("gc_floor") };
    for (const [key, ts] of stored.meta) {
      if (key.startsWith("table.")) this.#table.set(key.slice(6), { ...ts });
    }
    for (const r of stored.log) {
      this.#log.append(r);
      this.#uidTs.set(r.uid, r.ts);
      mergeInto(this.#replicaTs, { [r.origin]: seqOf(r) });
    }
    this.#applyStable();
  }

  /** The value timestamp: what the table reflects. */
  get valueTs(): VectorTs {
    return this.#valueTs;
  }

  /** The replica timestamp: what the log holds (applied or not). */
  get replicaTs(): VectorTs {
    return this.#replicaTs;
  }

  /** The gc floor: per origin, the highest sequence number dropped from the log. */
  get gcFloor(): VectorTs {
    return this.#gcFloor;
  }

  /** The ratings table. */
  get state(): RatingsState {
    return this.#state;
  }

  /** Records in the log. */
  get logSize(): number {
    return this.#log.size;
  }

  /** Records applied since start. */
  get applied(): number {
    return this.#applied;
  }

  /** The last replica timestamp heard from `peer` (empty if none). */
  tableOf(peer: string): VectorTs {
    return this.#table.get(peer) ?? {};
  }

  /** Whether `peer` was ever heard from. */
  knows(peer: string): boolean {
    return this.#table.has(peer);
  }

  /** Whether a client that has seen `prev` can be answered now. */
  covers(prev: VectorTs): boolean {
    return leq(prev, this.#valueTs);
  }

  /** The RMs whose updates `prev` has seen and this RM has not applied yet. */
  missingFor(prev: VectorTs): string[] {
    return aheadOf(prev, this.#valueTs);
  }

  /** Whether `peer`, by its last timestamp, holds updates of `origins` this RM lacks. */
  holds(peer: string, origins: string[]): boolean {
    const ts = this.tableOf(peer);
    return origins.includes(peer) ||
      origins.some((rm) => entryOf(ts, rm) > entryOf(this.#valueTs, rm));
  }

  /** The highest sequence number of this RM that any peer has reported holding. */
  ownFloor(): number {
    let floor = 0;
    for (const ts of this.#table.values()) floor = Math.max(floor, entryOf(ts, this.self));
    return floor;
  }

  /** The timestamp of update `uid` if it was executed here (a resent update), else undefined. */
  duplicate(uid: string): VectorTs | undefined {
    return this.#uidTs.get(uid) ??
      (this.#recent.has(uid) || this.#journal.hasExecuted(uid) ? { ...this.#valueTs } : undefined);
  }

  /** The title of `movie`; `not_found` if unknown. */
  titleOf(movie: number): string {
    const m = this.#state.movies.get(movie);
    if (!m) {
      throw new ProtocolError(ErrorCode.NotFound, `Cannot find movie ${movie}: unknown movie id`, {
        movie,
      });
    }
    return m.title;
  }

  /** Refuses `op` if its precondition fails here (create of a rated cell, update of none). */
  checkPrecondition(op: RatingOp, title: string): void {
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

  /** The answer to a query, from the table as it is (the caller checked `covers`). */
  answer(q: QueryKind, user: number, movie: number, status: RmStatus): Message {
    const s = this.#state;
    const ts = this.#valueTs;
    if (q === "average") {
      const { average, count } = s.average(movie);
      const title = s.movies.get(movie)!.title;
      return { t: "ratings.result", q, user, movie, title, average, count, ts, st: status };
    }
    if (q === "get") {
      const title = s.movies.get(movie)!.title;
      const rating = s.rating(user, movie);
      return { t: "ratings.result", q, user, movie, title, rating, ts, st: status };
    }
    const ratings = s.userRatings(user).map((c) => ({
      movie: c.movie,
      title: s.movies.get(c.movie)?.title ?? `movie ${c.movie}`,
      rating: c.rating,
    }));
    return { t: "ratings.result", q, user, ratings, ts, st: status };
  }

  /**
   * Executes a client's update here: the next sequence number of this RM, a log record
   * stamped with the value timestamp, applied at once. The caller has waited until
   * `op.prev ≤ value ts` and checked the precondition.
   */
  createRecord(op: RatingOp, uid: string): LogRecord {
    const seq = entryOf(this.#replicaTs, this.self) + 1;
    this.#replicaTs[this.self] = seq;
    const record: LogRecord = {
      origin: this.self,
      ts: { ...this.#valueTs, [this.self]: seq },
      uid,
      op,
    };
    this.#log.append(record);
    this.#journal.logAdded(record);
    this.#uidTs.set(uid, record.ts);
    this.#apply(record);
    this.#saveTimestamps();
    return record;
  }

  /**
   * Takes gossip from `from`: its replica timestamp `ts` and `records`. New records join the
   * log, stable ones are applied in timestamp order, and records every known RM has are
   * dropped. Returns how many records were new and whether anything changed.
   */
  receive(
    from: string,
    ts: VectorTs,
    records: LogRecord[],
    peers: Iterable<string>,
  ): { added: number; changed: boolean } {
    const added = this.#log.merge(records, this.#replicaTs);
    for (const r of added) {
      this.#journal.logAdded(r);
      this.#uidTs.set(r.uid, r.ts);
    }
    const known = this.#table.get(from) ?? {};
    const tableChanged = mergeInto(known, ts) || !this.#table.has(from);
    if (tableChanged) {
      this.#table.set(from, known);
      this.#journal.setMeta(`table.${from}`, known);
    }
    if (added.length > 0) {
      this.#emit("rm.gossip", {
        peer: from,
        records: added.length,
        value_ts: normalize(this.#valueTs),
      });
      this.#applyStable();
    }
    this.collectGarbage(peers);
    const changed = added.length > 0 || tableChanged;
    if (changed) this.#saveTimestamps();
    return { added: added.length, changed };
  }

  /** The log records a peer at `peerTs` lacks (at most `limit`). */
  recordsFor(peerTs: VectorTs, limit = Infinity): LogRecord[] {
    return this.#log.missingFor(peerTs, limit);
  }

  /** Drops the records that every RM in `peers` (and this one) has and that are applied. */
  collectGarbage(peers: Iterable<string>): number {
    const known = [this.#replicaTs, ...[...peers].map((p) => this.tableOf(p))];
    const removed = this.#log.collect(this.#valueTs, known);
    if (removed.length === 0) return 0;
    for (const r of removed) {
      this.#uidTs.delete(r.uid);
      mergeInto(this.#gcFloor, { [r.origin]: seqOf(r) });
    }
    this.#journal.logRemoved(removed);
    this.#journal.setMeta("gc_floor", this.#gcFloor);
    this.#emit("rm.gc", { removed: removed.length, log_size: this.#log.size });
    return removed.length;
  }

  /** Whether a peer at `ts` lacks records this RM has already garbage-collected. */
  needsSnapshot(ts: VectorTs): boolean {
    return Object.keys(this.#gcFloor).some((o) => entryOf(ts, o) < this.#gcFloor[o]);
  }

  /** What a snapshot carries: every changed cell, the value timestamp, recent executed ids. */
  snapshot(): { cells: SnapshotCell[]; valueTs: VectorTs; executed: string[] } {
    const cells: SnapshotCell[] = [];
    for (const c of this.#state.cells()) {
      if (c.vuid !== "") cells.push([c.user, c.movie, c.rating, c.time, c.vsum, c.vuid]);
    }
    return { cells, valueTs: { ...this.#valueTs }, executed: [...this.#recent] };
  }

  /**
   * Takes a peer's snapshot: its cells (each kept only if newer than this RM's), its executed
   * ids and its value timestamp. Malformed cells are skipped. Returns the cells written.
   */
  applySnapshot(valueTs: VectorTs, cells: unknown[], executed: unknown[]): number {
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
        this.#journal.cellChanged(cell);
        written++;
      }
    }
    for (const uid of executed) {
      if (typeof uid === "string") this.#markExecuted(uid);
    }
    mergeInto(this.#valueTs, valueTs);
    mergeInto(this.#replicaTs, this.#valueTs);
    this.#applyStable();
    this.#saveTimestamps();
    return written;
  }

  #apply(r: LogRecord): void {
    const cell = this.#state.write(
      r.op.user,
      r.op.movie,
      r.op.rating,
      r.op.time,
      total(r.ts),
      versionTag(r),
    );
    if (cell) this.#journal.cellChanged(cell);
    this.#valueTs[r.origin] = seqOf(r);
    this.#markExecuted(r.uid);
    this.#applied++;
    this.#emit("rm.update", {
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
    for (const r of stable) this.#apply(r);
    return stable.length;
  }

  /** Records `uid` as executed (memory, bounded, and the journal). */
  #markExecuted(uid: string): void {
    if (this.#recent.has(uid)) return;
    this.#recent.add(uid);
    this.#journal.executedAdded(uid);
    if (this.#recent.size > RECENT_IDS) {
      this.#recent.delete(this.#recent.values().next().value!);
    }
  }

  #saveTimestamps(): void {
    this.#journal.setMeta("value", this.#valueTs);
    this.#journal.setMeta("replica", this.#replicaTs);
  }
}

/**
 * The update log of a replica manager: the records it holds, by origin RM, each origin's
 * records a contiguous run of sequence numbers. Pure data structure, no I/O.
 *
 * A record made by RM `o` has `ts[o]` = its sequence number at `o`, and the other entries
 * of `ts` are what `o` had applied when it made it: the record depends on exactly
 * `ts` with `ts[o] - 1`. A record is *stable* at a replica once its dependencies are
 * covered by the replica's value timestamp; stable records are applied in timestamp
 * order (total of the entries, then origin name), a linear extension of causality that
 * every RM computes the same way.
 *
 * @module
 */
import { entryOf, total, type VectorTs } from "./vector_ts.ts";

/** The kinds of update operation. */
export type UpdateKind = "create" | "update" | "delete";

/** One update operation on the ratings table, as the client asked for it. */
export interface RatingOp {
  /** What the client asked for. */
  kind: UpdateKind;
  /** The user. */
  user: number;
  /** The movie. */
  movie: number;
  /** The new rating, null for a delete. */
  rating: number | null;
  /** Unix seconds stamped by the client (the ratings.timestamp column). */
  time: number;
  /** The client's timestamp when it asked (the last-writer-wins key). */
  prev: VectorTs;
}

/** One record of the update log. */
export interface LogRecord {
  /** The RM that accepted the update and made the record. */
  origin: string;
  /** The record's timestamp: `ts[origin]` is its sequence number at the origin. */
  ts: VectorTs;
  /** The update's unique id (a retried update keeps its id). */
  uid: string;
  /** The operation. */
  op: RatingOp;
}

/** The sequence number of `record` at its origin. */
export function seqOf(record: LogRecord): number {
  return entryOf(record.ts, record.origin);
}

/** Whether `ts` already covers `record` (it holds or has applied it). */
export function isCovered(record: LogRecord, ts: VectorTs): boolean {
  return seqOf(record) <= entryOf(ts, record.origin);
}

/** Whether the dependencies of `record` are covered by `valueTs`. */
export function dependenciesMet(record: LogRecord, valueTs: VectorTs): boolean {
  for (const rm in record.ts) {
    const need = rm === record.origin ? record.ts[rm] - 1 : record.ts[rm];
    if (need > entryOf(valueTs, rm)) return false;
  }
  return true;
}

/** Orders records by timestamp: total of entries, then origin, then sequence number. */
export function compareRecords(a: LogRecord, b: LogRecord): number {
  const d = total(a.ts) - total(b.ts);
  if (d !== 0) return d;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return seqOf(a) - seqOf(b);
}

/**
 * The records of `records` that can be applied on top of `valueTs`, in the order to apply
 * them: repeatedly the smallest (by {@linkcode compareRecords}) unapplied record whose
 * dependencies are met, simulating the value timestamp as it goes. Records already
 * covered by `valueTs` are left out.
 */
export function stableOrder(records: Iterable<LogRecord>, valueTs: VectorTs): LogRecord[] {
  const chains = new Map<string, LogRecord[]>();
  for (const r of records) {
    if (isCovered(r, valueTs)) continue;
    let chain = chains.get(r.origin);
    if (!chain) chains.set(r.origin, chain = []);
    chain.push(r);
  }
  for (const chain of chains.values()) chain.sort((a, b) => seqOf(a) - seqOf(b));
  const v: VectorTs = { ...valueTs };
  const heads = new Map<string, number>([...chains.keys()].map((o) => [o, 0]));
  const out: LogRecord[] = [];
  for (;;) {
    let best: LogRecord | undefined;
    for (const [origin, i] of heads) {
      const r = chains.get(origin)![i];
      if (!r || !dependenciesMet(r, v)) continue;
      if (!best || compareRecords(r, best) < 0) best = r;
    }
    if (!best) return out;
    out.push(best);
    v[best.origin] = seqOf(best);
    heads.set(best.origin, heads.get(best.origin)! + 1);
  }
}

/**
 * The update log. Each origin's records are kept in sequence order; `merge` accepts only
 * the next record of each origin (records already covered are skipped, gaps wait for a
 * later gossip), so the replica timestamp always means "holds every record up to here".
 */
export class UpdateLog {
  #chains = new Map<string, LogRecord[]>();
  #size = 0;

  /** Records held. */
  get size(): number {
    return this.#size;
  }

  /** Every record, each origin's in sequence order (origins sorted). */
  records(): LogRecord[] {
    return [...this.#chains.keys()].sort().flatMap((o) => this.#chains.get(o)!);
  }

  /** Adds a record this RM made (or reloaded); it must be the next of its origin. */
  append(record: LogRecord): void {
    let chain = this.#chains.get(record.origin);
    if (!chain) this.#chains.set(record.origin, chain = []);
    const last = chain.at(-1);
    if (last && seqOf(last) >= seqOf(record)) {
      throw new Error(
        `Cannot append record ${record.origin}#${seqOf(record)}: log already has #${seqOf(last)}`,
      );
    }
    chain.push(record);
    this.#size++;
  }

  /**
   * Merges records received by gossip into the log, advancing `replicaTs` in place.
   * Records covered by `replicaTs` are skipped; a record that is not the next of its
   * origin is dropped (it comes again with a later gossip). Returns the records added.
   */
  merge(incoming: LogRecord[], replicaTs: VectorTs): LogRecord[] {
    const sorted = [...incoming].sort((a, b) =>
      a.origin === b.origin ? seqOf(a) - seqOf(b) : a.origin < b.origin ? -1 : 1
    );
    const added: LogRecord[] = [];
    for (const r of sorted) {
      const have = entryOf(replicaTs, r.origin);
      const seq = seqOf(r);
      if (seq <= have) continue;
      if (seq !== have + 1) continue;
      this.append(r);
      replicaTs[r.origin] = seq;
      added.push(r);
    }
    return added;
  }

  /** The records a peer whose replica timestamp is `peerTs` lacks, at most `limit`. */
  missingFor(peerTs: VectorTs, limit = Infinity): LogRecord[] {
    const out: LogRecord[] = [];
    for (const origin of [...this.#chains.keys()].sort()) {
      for (const r of this.#chains.get(origin)!) {
        if (out.length >= limit) return out;
        if (!isCovered(r, peerTs)) out.push(r);
      }
    }
    return out;
  }

  /** The records that can be applied on top of `valueTs`, in apply order. */
  stable(valueTs: VectorTs): LogRecord[] {
    return stableOrder(this.records(), valueTs);
  }

  /**
   * Garbage collection: removes the records that are applied here (`valueTs`) and that
   * every RM's known timestamp in `known` covers. Returns the removed records.
   */
  collect(valueTs: VectorTs, known: VectorTs[]): LogRecord[] {
    const removed: LogRecord[] = [];
    for (const [origin, chain] of this.#chains) {
      let n = 0;
      while (n < chain.length) {
        const r = chain[n];
        if (!isCovered(r, valueTs) || !known.every((ts) => isCovered(r, ts))) break;
        n++;
      }
      if (n > 0) {
        removed.push(...chain.splice(0, n));
        this.#size -= n;
      }
      if (chain.length === 0) this.#chains.delete(origin);
    }
    return removed;
  }
}

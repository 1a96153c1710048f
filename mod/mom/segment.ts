/**
 * Stored segments: the MOM's stores write the rows of one commit for one stream (a daemon's
 * outbox, its inbox, the broker's deliveries to one daemon) as one SQLite row holding a
 * MessagePack array of tuples. One B-tree insert and one delete per commit instead of one
 * per message is most of what a durable message costs in SQLite.
 *
 * @module
 */
import { encodeValue, MsgpackDecoder, ShapeCache } from "../wire/mod.ts";

/** Stored segments are this node's own data: their map layouts are learned. */
const decoder = new MsgpackDecoder({ shapes: new ShapeCache() });

/** Rows per stored segment at most (a commit with more writes several). */
export const SEGMENT_MAX_ROWS = 4_096;

/** Encodes `rows` (tuples of MessagePack-able values) for a BLOB column. */
export function encodeSegment(rows: readonly unknown[][]): Uint8Array {
  return encodeValue(rows);
}

/** Decodes a stored segment; throws when the blob is not an array of tuples. */
export function decodeSegment(blob: Uint8Array): unknown[][] {
  const value = decoder.decode(blob);
  if (!Array.isArray(value) || !value.every(Array.isArray)) {
    throw new Error("Cannot read a stored segment: it is not an array of tuples");
  }
  return value as unknown[][];
}

/** Splits `rows` into chunks of at most SEGMENT_MAX_ROWS, in order (none when empty). */
export function chunkSegments<T>(rows: readonly T[]): T[][] {
  if (rows.length === 0) return [];
  if (rows.length <= SEGMENT_MAX_ROWS) return [rows as T[]];
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += SEGMENT_MAX_ROWS) {
    out.push(rows.slice(i, i + SEGMENT_MAX_ROWS));
  }
  return out;
}

/** A stored segment as the readers select it (`users`: the daemon inbox's recipients column). */
export interface StoredSegment {
  /** Position (seq) of the segment's last tuple. */
  last: number | bigint;
  /** Recipients of the segment's tuples, comma-separated (daemon inbox only). */
  users?: string;
  /** The encoded tuples. */
  data: Uint8Array;
}

/**
 * Visits, in order, the tuples of the segments after position `after` until `done()`.
 * `read(from)` returns up to a few segments in order, starting with the one holding `from`
 * if any; `wanted(users)` may skip a segment by its users column without decoding it.
 * Tuples at or before `after` in the first segment are visited too: the caller filters.
 */
export function scanSegments(
  read: (from: number) => StoredSegment[],
  after: number,
  done: () => boolean,
  visit: (tuple: unknown[]) => void,
  wanted?: (users: string) => boolean,
): void {
  let from = after;
  for (let round = 0; round < 1_000_000 && !done(); round++) {
    let progressed = false;
    for (const seg of read(from + 1)) {
      const last = Number(seg.last);
      if (last <= from) continue;
      progressed = true;
      if (wanted === undefined || wanted(seg.users ?? "")) {
        for (const t of decodeSegment(seg.data)) {
          visit(t);
          if (done()) return;
        }
      }
      from = last;
      if (done()) return;
    }
    if (!progressed) return;
  }
}

/**
 * Entries after `after` in stored segments: `whole` (the sum of `n` of the segments that
 * start after it) plus those of `partial` (the segments that hold it) whose seq is after it.
 */
export function countAfter(whole: number, partial: StoredSegment[], after: number): number {
  let count = whole;
  for (const seg of partial) {
    count += decodeSegment(seg.data).filter((t) => Number(t[0]) > after).length;
  }
  return count;
}

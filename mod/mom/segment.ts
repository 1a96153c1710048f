/**
 * Stored segments: the MOM's stores write the rows of one commit for one stream (a daemon's
 * outbox, its inbox, the broker's deliveries to one daemon) as one SQLite row holding a
 * MessagePack array of tuples. One B-tree insert and one delete per commit instead of one
 * per message is most of what a durable message costs in SQLite.
 *
 * @module
 */
import { FastDecoder, FastEncoder } from "../wire/msgpack_fast.ts";

const encoder = new FastEncoder();
const decoder = new FastDecoder();

/** Rows per stored segment at most (a commit with more writes several). */
export const SEGMENT_MAX_ROWS = 4_096;

/**
 * Encodes `rows` (tuples of MessagePack-able values) for a BLOB column. The result is a
 * view of a shared buffer: bind it before the next call.
 */
export function encodeSegment(rows: readonly unknown[][]): Uint8Array {
  return encoder.encode(rows);
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

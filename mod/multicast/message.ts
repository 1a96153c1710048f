/**
 * Chat messages, their Lamport stamps, and the checks every incoming message passes.
 *
 * @module
 */
import { ErrorCode, type Message, ProtocolError } from "../wire/mod.ts";

/** Longest chat body accepted, in UTF-16 units. */
export const MAX_BODY_LENGTH = 64 * 1024;

/** Rough largest encoded size of one outgoing frame of messages (well under `--max-frame`). */
export const DATA_FRAME_BYTES = 4 * 1024 * 1024;

/** Most messages one `mc.data` frame may carry. */
export const MAX_BATCH = 50_000;

/** One multicast chat message: `id` is `<from>:<seq>`; `(lamport, from)` is its stamp. */
export interface ChatMessage {
  /** `<from>:<seq>`, unique in the group. */
  id: string;
  /** Sender's node name. */
  from: string;
  /** Sender's sequence number, 1, 2, 3 … (per-sender FIFO). */
  seq: number;
  /** Lamport clock value at sending. */
  lamport: number;
  /** The chat text. */
  body: string;
}

/** The id of the `seq`-th message of `from`. */
export function messageId(from: string, seq: number): string {
  return `${from}:${seq}`;
}

/**
 * Orders stamps: by Lamport clock, then by sender name (the tie-break). Negative when `a`
 * comes first.
 */
export function compareStamp(
  a: { lamport: number; from: string },
  b: { lamport: number; from: string },
): number {
  if (a.lamport !== b.lamport) return a.lamport - b.lamport;
  return a.from < b.from ? -1 : a.from > b.from ? 1 : 0;
}

/** Reads one message of a `mc.data` frame, or throws `bad_field`. */
export function parseChatMessage(raw: unknown, frame: Message): ChatMessage {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ProtocolError(ErrorCode.BadField, `Cannot accept ${frame.t}: a message is not a map`);
  }
  const m = raw as Record<string, unknown>;
  const bad = (field: string, want: string) =>
    new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${frame.t}: message field ${field} must be ${want}`,
      { field },
    );
  if (typeof m.id !== "string" || m.id.length === 0 || m.id.length > 300) {
    throw bad("id", "a string");
  }
  if (typeof m.from !== "string" || m.from.length === 0 || m.from.length > 200) {
    throw bad("from", "a string");
  }
  const seq = typeof m.seq === "bigint" ? Number(m.seq) : m.seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) {
    throw bad("seq", "a positive integer");
  }
  const lamport = typeof m.lamport === "bigint" ? Number(m.lamport) : m.lamport;
  if (typeof lamport !== "number" || !Number.isSafeInteger(lamport) || lamport < 1) {
    throw bad("lamport", "a positive integer");
  }
  if (typeof m.body !== "string" || m.body.length > MAX_BODY_LENGTH) {
    throw bad("body", `a string of at most ${MAX_BODY_LENGTH} characters`);
  }
  return { id: m.id, from: m.from, seq, lamport, body: m.body };
}

/** Reads a `{name: integer}` map (sequence vectors, clocks), or throws `bad_field`. */
export function parseCounters(raw: unknown, field: string, frame: Message): Record<string, number> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw) || raw instanceof Uint8Array) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${frame.t}: field ${field} must be a map`,
      { field },
    );
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new ProtocolError(
        ErrorCode.BadField,
        `Cannot accept ${frame.t}: field ${field}.${k} must be a non-negative integer`,
        { field },
      );
    }
    out[k] = n;
  }
  return out;
}

/**
 * The gossip messages as they travel (compact tuples), and validation of received frames:
 * a malformed frame throws a `ProtocolError` (`bad_field`) and never reaches the protocol.
 *
 * @module
 */
import { ErrorCode, type Message, ProtocolError } from "../wire/mod.ts";
import {
  GossipType,
  MAX_ITEMS_PER_MESSAGE,
  MAX_KEY_LENGTH,
  type MemberStateValue,
} from "./constants.ts";

/** A member update: `[name, address, state, incarnation]`. */
export type MemberTuple = [string, string, MemberStateValue, number];
/** A key/value entry: `[key, value, clock, writer, hops]`. */
export type EntryTuple = [string, string, number, string, number];
/** A digest item: `[key, clock, writer]`. */
export type DigestTuple = [string, number, string];

/** Push of hot rumors. */
export interface RumorMessage {
  t: typeof GossipType.Rumor;
  from: string;
  e: EntryTuple[];
  m: MemberTuple[];
}
/** Anti-entropy opener / join. */
export interface DigestMessage {
  t: typeof GossipType.Digest;
  from: string;
  addr: string;
  d: DigestTuple[];
  m: MemberTuple[];
}
/** Anti-entropy answer (and the opener's follow-up with what was wanted). */
export interface DeltaMessage {
  t: typeof GossipType.Delta;
  from: string;
  e: EntryTuple[];
  want: string[];
  m: MemberTuple[];
}
/** SWIM ping. */
export interface PingMessage {
  t: typeof GossipType.Ping;
  from: string;
  addr: string;
  seq: number;
  m: MemberTuple[];
}
/** SWIM ack. */
export interface AckMessage {
  t: typeof GossipType.Ack;
  from: string;
  seq: number;
  m: MemberTuple[];
}
/** SWIM indirect probe request. */
export interface PingReqMessage {
  t: typeof GossipType.PingReq;
  from: string;
  seq: number;
  target: string;
  taddr: string;
}

/** Every gossip message. */
export type GossipMessage =
  | RumorMessage
  | DigestMessage
  | DeltaMessage
  | PingMessage
  | AckMessage
  | PingReqMessage;

function bad(msg: Message, field: string, what: string): ProtocolError {
  return new ProtocolError(
    ErrorCode.BadField,
    `Cannot accept ${String(msg.t)}: field ${field} ${what}`,
    { field },
  );
}

function str(msg: Message, v: unknown, field: string, max = MAX_KEY_LENGTH): string {
  if (typeof v !== "string" || v.length === 0) throw bad(msg, field, "must be a non-empty string");
  if (v.length > max) throw bad(msg, field, `is longer than ${max}`);
  return v;
}

function int(msg: Message, v: unknown, field: string, min = 0): number {
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min) {
    throw bad(msg, field, `must be an integer ≥ ${min}`);
  }
  return n;
}

function list(msg: Message, field: string, optional = false): unknown[] {
  const v = msg[field];
  if (v === undefined && optional) return [];
  if (!Array.isArray(v)) throw bad(msg, field, "must be an array");
  if (v.length > MAX_ITEMS_PER_MESSAGE) {
    throw bad(msg, field, `has more than ${MAX_ITEMS_PER_MESSAGE} items`);
  }
  return v;
}

function tuple(msg: Message, v: unknown, field: string, len: number): unknown[] {
  if (!Array.isArray(v) || v.length !== len) throw bad(msg, field, `items must be ${len}-tuples`);
  return v;
}

function members(msg: Message): MemberTuple[] {
  return list(msg, "m", true).map((raw) => {
    const m = tuple(msg, raw, "m", 4);
    const state = int(msg, m[2], "m[].state");
    if (state > 2) throw bad(msg, "m", "state must be 0, 1 or 2");
    return [
      str(msg, m[0], "m[].name"),
      str(msg, m[1], "m[].address"),
      state as MemberStateValue,
      int(msg, m[3], "m[].incarnation"),
    ];
  });
}

/**
 * Entries with the value's type checked but not its size: an oversized value is the
 * protocol's business (a discard event), not a malformed frame.
 */
function entries(msg: Message): EntryTuple[] {
  return list(msg, "e").map((raw) => {
    const e = tuple(msg, raw, "e", 5);
    if (typeof e[1] !== "string") throw bad(msg, "e[].value", "must be a string");
    return [
      str(msg, e[0], "e[].key"),
      e[1],
      int(msg, e[2], "e[].clock", 1),
      str(msg, e[3], "e[].node"),
      int(msg, e[4], "e[].hops"),
    ];
  });
}

/** Validates a received frame into a {@linkcode GossipMessage}; throws `ProtocolError`. */
export function parseGossipMessage(msg: Message): GossipMessage {
  const from = str(msg, msg.from, "from");
  switch (msg.t) {
    case GossipType.Rumor:
      return { t: GossipType.Rumor, from, e: entries(msg), m: members(msg) };
    case GossipType.Digest:
      return {
        t: GossipType.Digest,
        from,
        addr: str(msg, msg.addr, "addr"),
        d: list(msg, "d").map((raw) => {
          const d = tuple(msg, raw, "d", 3);
          return [
            str(msg, d[0], "d[].key"),
            int(msg, d[1], "d[].clock", 1),
            str(msg, d[2], "d[].node"),
          ];
        }),
        m: members(msg),
      };
    case GossipType.Delta:
      return {
        t: GossipType.Delta,
        from,
        e: entries(msg),
        want: list(msg, "want", true).map((k) => str(msg, k, "want[]")),
        m: members(msg),
      };
    case GossipType.Ping:
      return {
        t: GossipType.Ping,
        from,
        addr: str(msg, msg.addr, "addr"),
        seq: int(msg, msg.seq, "seq"),
        m: members(msg),
      };
    case GossipType.Ack:
      return { t: GossipType.Ack, from, seq: int(msg, msg.seq, "seq"), m: members(msg) };
    case GossipType.PingReq:
      return {
        t: GossipType.PingReq,
        from,
        seq: int(msg, msg.seq, "seq"),
        target: str(msg, msg.target, "target"),
        taddr: str(msg, msg.taddr, "taddr"),
      };
    default:
      throw new ProtocolError(
        ErrorCode.UnknownType,
        `Cannot accept ${String(msg.t)}: not a gossip message`,
      );
  }
}

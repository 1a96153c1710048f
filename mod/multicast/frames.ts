/**
 * Reading the member frames of {@linkcode MULTICAST_FRAMES} into the values the protocol
 * works on: pure, and every malformed field is a `ProtocolError` (`bad_field`) before the
 * protocol sees the frame. The membership protocol (`view_change.ts`) and the data path
 * (`member.ts`) read their frames here.
 *
 * @module
 */
import {
  ErrorCode,
  fieldArray,
  fieldInt,
  fieldOptString,
  type Message,
  ProtocolError,
} from "../wire/mod.ts";
import { type ChatMessage, MAX_BATCH, parseChatMessage, parseCounters } from "./message.ts";
import type { Ack, FlushReport, Installation } from "./total_order.ts";

/** A join request as the coordinator keeps it. */
export interface JoinRequest {
  /** Highest view the joiner has seen. */
  known: number;
  /** Its next own sequence number. */
  ownSeq: number;
  /** Its Lamport clock. */
  clock: number;
  /** How many messages it has delivered. */
  have: number;
  /** The id of its last delivered message. */
  last?: string;
  /** Which time the joiner has become joining (an install answers one request of it). */
  epoch: number;
  /** When the request arrived. */
  at: number;
}

/** What a member last heard in a peer's heartbeat. */
export interface PeerInfo {
  /** The peer's view (0 while joining). */
  view: number;
  /** Its membership state (`joining`, `flushing`, `installing`, `member`). */
  state: string;
  /** The coordinator it follows ("" for none). */
  coord: string;
  /** Its view's members. */
  members: string[];
  /** Whether its view is primary. */
  primary: boolean;
  /** How many messages it has delivered. */
  delivered: number;
  /** The last view it installed, as stored (survives its restarts). */
  lastView: number;
  /** That view's members. */
  lastMembers: string[];
  /** When the heartbeat arrived. */
  at: number;
}

/** The end of a history transfer that an `mc.install` to a joiner carries. */
export interface JoinerPart {
  /** How many of the coordinator's messages the transfer starts after. */
  from: number;
  /** The id of the coordinator's last delivered message. */
  lastId?: string;
  /** The coordinator's delivered count per sender. */
  delivered: Record<string, number>;
  /** The join request's epoch it answers. */
  epoch: unknown;
}

/** Which names are members of the group (the peers file). */
export type IsMember = (name: string) => boolean;

/** Reads a list of member names, or throws `bad_field`. */
export function readNames(msg: Message, field: string, isMember: IsMember): string[] {
  const raw = fieldArray(msg, field);
  const names: string[] = [];
  for (const n of raw) {
    if (typeof n !== "string" || !isMember(n)) {
      throw new ProtocolError(
        ErrorCode.BadField,
        `Cannot accept ${msg.t}: ${field} must list members of the peers file, got ${String(n)}`,
      );
    }
    names.push(n);
  }
  return names;
}

/** Reads `mc.data`: the view, the chat messages (at most `MAX_BATCH`), whether a resend. */
export function readData(msg: Message): { view: number; msgs: ChatMessage[]; resend: boolean } {
  const view = fieldInt(msg, "view", { min: 0 });
  const raw = fieldArray(msg, "msgs");
  if (raw.length > MAX_BATCH) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept mc.data: more than ${MAX_BATCH} messages`,
    );
  }
  return { view, msgs: raw.map((r) => parseChatMessage(r, msg)), resend: msg.resend === true };
}

/** Reads `mc.ack`: the view and the acknowledgement. */
export function readAck(msg: Message): { view: number; ack: Ack } {
  const view = fieldInt(msg, "view", { min: 0 });
  const lamport = fieldInt(msg, "lamport", { min: 0 });
  return { view, ack: { lamport, recv: parseCounters(msg.recv, "recv", msg) } };
}

/** Reads `mc.hb` heard at `at`: what it says about the peer, and its acknowledgement. */
export function readHeartbeat(
  msg: Message,
  at: number,
  isMember: IsMember,
): { info: PeerInfo; ack: Ack } {
  const { view, ack } = readAck(msg);
  const members = readNames(msg, "members", isMember);
  const state = fieldOptString(msg, "state") ?? "member";
  const coord = fieldOptString(msg, "coord") ?? "";
  const info: PeerInfo = {
    view,
    state,
    coord,
    members,
    primary: msg.primary === true,
    delivered: typeof msg.delivered === "number" ? msg.delivered : 0,
    lastView: typeof msg.lastView === "number" ? msg.lastView : 0,
    lastMembers: msg.lastMembers === undefined ? [] : readNames(msg, "lastMembers", isMember),
    at,
  };
  return { info, ack };
}

/** Reads `mc.join` arrived at `at`. */
export function readJoin(msg: Message, at: number): JoinRequest {
  return {
    known: fieldInt(msg, "known", { min: 0 }),
    ownSeq: fieldInt(msg, "ownSeq", { min: 1 }),
    clock: fieldInt(msg, "clock", { min: 0 }),
    have: fieldInt(msg, "have", { min: 0 }),
    last: fieldOptString(msg, "last"),
    epoch: typeof msg.epoch === "number" ? msg.epoch : 0,
    at,
  };
}

/** Reads `mc.propose` (`base` is -1 when missing: it matches no view). */
export function readPropose(
  msg: Message,
  isMember: IsMember,
): { num: number; members: string[]; base: number } {
  const num = fieldInt(msg, "num", { min: 1 });
  const members = readNames(msg, "members", isMember);
  return { num, members, base: typeof msg.base === "number" ? msg.base : -1 };
}

/** Reads `mc.flush`: the view number it answers and the survivor's report. */
export function readFlush(msg: Message): { num: number; report: FlushReport } {
  return {
    num: fieldInt(msg, "num", { min: 1 }),
    report: {
      clock: fieldInt(msg, "clock", { min: 0 }),
      hold: fieldArray(msg, "hold").map((r) => parseChatMessage(r, msg)),
      nextSeq: parseCounters(msg.nextSeq, "nextSeq", msg),
      ownSeq: fieldInt(msg, "ownSeq", { min: 1 }),
    },
  };
}

/**
 * Reads `mc.install`: the installation, and whether it ends a history transfer (its
 * `joiner` part is read by {@linkcode readJoinerPart} only when this member takes it).
 */
export function readInstall(
  msg: Message,
  isMember: IsMember,
): { inst: Installation; forJoiner: boolean } {
  const num = fieldInt(msg, "num", { min: 1 });
  const members = readNames(msg, "members", isMember);
  const inst: Installation = {
    view: { id: num, members },
    msgs: fieldArray(msg, "msgs").map((r) => parseChatMessage(r, msg)),
    clocks: parseCounters(msg.clocks, "clocks", msg),
    nextSeq: parseCounters(msg.nextSeq, "nextSeq", msg),
    maxClock: fieldInt(msg, "maxClock", { min: 0 }),
  };
  return { inst, forJoiner: msg.joiner !== undefined && msg.joiner !== null };
}

/** Reads the `joiner` part of an `mc.install`, or throws `bad_field`. */
export function readJoinerPart(msg: Message): JoinerPart {
  const joiner = msg.joiner;
  if (joiner === null || typeof joiner !== "object" || Array.isArray(joiner)) {
    throw new ProtocolError(ErrorCode.BadField, "Cannot accept mc.install: bad joiner part");
  }
  const part = joiner as Message;
  const from = fieldInt(part, "from", { min: 0 });
  const lastId = fieldOptString(part, "lastId");
  return {
    from,
    lastId,
    delivered: parseCounters(part.delivered, "delivered", msg),
    epoch: part.epoch,
  };
}

/** Reads `mc.history`: the chunk's position and its messages. */
export function readHistory(msg: Message): { after: number; entries: ChatMessage[] } {
  const after = fieldInt(msg, "after", { min: 0 });
  return { after, entries: fieldArray(msg, "entries").map((r) => parseChatMessage(r, msg)) };
}

/** Reads the view number of `mc.installed` and `mc.commit`. */
export function readViewNumber(msg: Message): number {
  return fieldInt(msg, "num", { min: 1 });
}

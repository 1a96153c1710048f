/**
 * How the daemon's outbox travels to the broker: consecutive publications as `pubs` frames
 * (parallel arrays), pure.
 *
 * @module
 */
import { ErrorCode, fieldInt, type Message, ProtocolError } from "../wire/mod.ts";
import type { OutboxEntry } from "./daemon_store.ts";

/** Payload bytes one `pubs` frame carries at most (a larger publication goes alone). */
export const PUBS_FRAME_BYTES = 1024 * 1024;
/** Publications one `pubs` frame carries at most (as the broker accepts). */
export const PUBS_FRAME_MAX = 1_000;

/**
 * `pubs` frames for `entries` (in seq order): runs of consecutive seqs with the same
 * `local`, bounded in count and payload bytes.
 */
export function pubsFrames(entries: readonly OutboxEntry[]): Message[] {
  const frames: Message[] = [];
  let i = 0;
  while (i < entries.length) {
    const first = entries[i];
    const users: number[] = [];
    const topics: string[] = [];
    const payloads: Uint8Array[] = [];
    let metas: Array<Uint8Array | null> | undefined;
    let bytes = 0;
    let j = i;
    for (; j < entries.length; j++) {
      const e = entries[j];
      if (
        j > i && (e.seq !== first.seq + (j - i) || e.local !== first.local ||
          j - i >= PUBS_FRAME_MAX || bytes + e.payload.length > PUBS_FRAME_BYTES)
      ) break;
      if (e.meta !== undefined && metas === undefined) metas = users.map(() => null);
      metas?.push(e.meta ?? null);
      users.push(e.user);
      topics.push(e.topic);
      payloads.push(e.payload);
      bytes += e.payload.length;
    }
    const frame: Message = first.local
      ? { t: "pubs", seq: first.seq, users, topics, payloads, local: true }
      : { t: "pubs", seq: first.seq, users, topics, payloads };
    if (metas !== undefined) frame.metas = metas;
    frames.push(frame);
    i = j;
  }
  return frames;
}

/** Publications one `pubs` frame may carry at most (what the broker accepts). */
export const MAX_PUBS_PER_FRAME = 4_096;

/** The columns of a `pubs` frame as the broker reads them. */
export interface PubsColumns {
  /** Seq of the first publication (the others follow it). */
  seq: number;
  users: number[];
  /** Unchecked: the router checks each topic (a bad one is dropped, not the frame). */
  topics: unknown[];
  payloads: Uint8Array[];
  local: boolean;
  /** Per publication, its meta bytes or null (undefined: none in the frame). */
  metas?: Array<Uint8Array | null>;
}

/**
 * Reads `pubs {seq, users, topics, payloads, local?, metas?}`: publications `seq`, `seq + 1`,
 * … of one daemon as parallel arrays. A frame of the wrong shape is a `bad_field` error.
 */
export function readPubs(msg: Message): PubsColumns {
  const seq = fieldInt(msg, "seq", { min: 1 });
  const { users, topics, payloads } = msg;
  if (
    !Array.isArray(users) || !Array.isArray(topics) || !Array.isArray(payloads) ||
    users.length !== topics.length || users.length !== payloads.length ||
    users.length > MAX_PUBS_PER_FRAME
  ) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot take pubs: users, topics and payloads must be arrays of one length (at most ${MAX_PUBS_PER_FRAME})`,
    );
  }
  for (let i = 0; i < users.length; i++) {
    const from = users[i];
    if (
      !Number.isSafeInteger(from) || (from as number) < 1 || !(payloads[i] instanceof Uint8Array)
    ) {
      throw new ProtocolError(
        ErrorCode.BadField,
        `Cannot take pubs: publication ${seq + i} needs a user id and payload bytes`,
      );
    }
  }
  const out: PubsColumns = {
    seq,
    users: users as number[],
    topics,
    payloads: payloads as Uint8Array[],
    local: msg.local === true,
  };
  if (Array.isArray(msg.metas) && msg.metas.length === users.length) {
    out.metas = msg.metas.map((m) => m instanceof Uint8Array ? m : null);
  }
  return out;
}

/**
 * The pieces of a daemon commit that need no state of their own: the meta values it writes,
 * the answers to the publishers and flushers it carries (or its refusal when the write
 * failed), and the receives its deliveries wake.
 *
 * @module
 */
import { type Message, type PeerSession, ProtocolError } from "../wire/mod.ts";
import { STORE_FAILED } from "../storage/mod.ts";
import type { Delivery, OutboxEntry } from "./daemon_store.ts";

/** A publication waiting for the next commit, and whom to answer. */
export interface PendingPublish {
  entry: OutboxEntry;
  session: PeerSession;
  rid: unknown;
  /** Meta values written in the same commit (in-process gateways, see `COMMIT_META`). */
  meta?: Record<string, number>;
}

/** A `flush` waiting for the next commit. */
export interface PendingFlush {
  session: PeerSession;
  msg: Message;
}

/** The event sink a commit reports to. */
interface CommitEvents {
  /** Whether anyone listens (else no event is built). */
  readonly active: boolean;
  emit(type: string, fields: Record<string, unknown>): void;
}

/**
 * The meta values a commit writes: the last publication seq, the publications' own meta
 * (in-process gateways), and the last delivery seq when it moved past `committedDseq`.
 */
export function commitPositions(
  out: readonly PendingPublish[],
  dseq: number,
  committedDseq: number,
): Record<string, number> {
  const positions: Record<string, number> = {};
  if (out.length > 0) positions.last_seq = out[out.length - 1].entry.seq;
  for (const p of out) if (p.meta !== undefined) Object.assign(positions, p.meta);
  if (dseq !== committedDseq) positions.last_dseq = dseq;
  return positions;
}

/** Nothing of a batch is stored: its publishers and flushers hear so at once. */
export function refuseBatch(
  out: readonly PendingPublish[],
  flushes: readonly PendingFlush[],
  err: unknown,
): void {
  const refusal = new ProtocolError(
    STORE_FAILED,
    `Cannot store the publication: ${err instanceof Error ? err.message : String(err)}`,
  );
  for (const p of out) {
    if (p.rid !== undefined) p.session.replyError({ rid: p.rid, t: "publish" }, refusal);
  }
  for (const f of flushes) f.session.replyError(f.msg, refusal);
}

/** A batch is stored: `published {id}` to its publishers (ids `name:seq`), `flushed`. */
export function answerCommitted(
  out: readonly PendingPublish[],
  flushes: readonly PendingFlush[],
  name: string,
  events: CommitEvents,
): void {
  const tell = events.active;
  for (const p of out) {
    if (p.rid !== undefined) {
      const id = `${name}:${p.entry.seq}`;
      p.session.reply({ rid: p.rid, t: "published" }, { t: "published", id });
    }
    if (tell) {
      events.emit("msg.published", {
        id: `${name}:${p.entry.seq}`,
        topic: p.entry.topic,
        user: p.entry.user,
      });
    }
  }
  for (const f of flushes) f.session.reply(f.msg, { t: "flushed" });
}

/**
 * Reports the deliveries of a stored batch (`msg.delivered`) and adds the users among them
 * that have a waiting receive (`waiters`) to `woken`; returns how many deliveries (one per
 * user) the batch held.
 */
export function noteDelivered(
  incoming: readonly Delivery[],
  waiters: { has(user: number): boolean },
  events: CommitEvents,
  woken: Set<number>,
): number {
  const tell = events.active;
  let count = 0;
  for (const e of incoming) {
    count += e.users.length;
    for (const user of e.users) {
      if (tell) events.emit("msg.delivered", { id: e.id, user, topic: e.topic });
      if (waiters.has(user)) woken.add(user);
    }
  }
  return count;
}

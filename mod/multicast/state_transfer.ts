/**
 * History transfer to a joining member (pure, over a {@linkcode HistoryLog} and a
 * transport). The coordinator streams its delivered history after the joiner's last
 * matching entry, then the install with its delivered vector; the joiner checks every entry
 * it already has against the coordinator's and appends the rest, so a history is extended,
 * never replaced.
 *
 * @module
 */
import type { Message } from "../wire/mod.ts";
import type { HistoryLog } from "./history_store.ts";
import { type ChatMessage, compareStamp, DATA_FRAME_BYTES } from "./message.ts";
import type { MemberHooks } from "./member.ts";
import type { Installation } from "./total_order.ts";
import type { MulticastTransport } from "./transport.ts";

/** History entries read and sent per `mc.history` batch. */
export const HISTORY_CHUNK = 2_000;

/** What the coordinator knows of a joiner's history. */
export interface JoinerHistory {
  /** How many messages it has delivered. */
  have: number;
  /** The id of its last delivered message. */
  last?: string;
  /** The join request's epoch, echoed in the install. */
  epoch: number;
}

/**
 * Coordinator side: sends `to` the history after its last matching entry (from the start
 * when its last id does not match), then `install` with the joiner part (`from`: this
 * node's count, `lastId`, `delivered`).
 */
export function sendHistory(
  store: HistoryLog,
  transport: MulticastTransport,
  to: string,
  joiner: JoinerHistory,
  install: Message,
  delivered: Record<string, number>,
  log: MemberHooks["log"],
): void {
  const count = store.count;
  const lastId = count > 0 ? store.idAt(count) : undefined;
  const matches = joiner.have <= count &&
    (joiner.have === 0 || store.idAt(joiner.have) === joiner.last);
  let after = matches ? joiner.have : joiner.have > count ? count : 0;
  for (let i = 0; i < 100_000; i++) {
    const entries = store.since(after, HISTORY_CHUNK);
    for (const part of bySize(entries)) {
      transport.send(to, { t: "mc.history", after, entries: part });
      after = part[part.length - 1].idx;
    }
    if (entries.length < HISTORY_CHUNK) break;
  }
  if (after !== count) log.warn(`history for ${to} stopped at ${after} of ${count}`);
  transport.send(to, {
    ...install,
    joiner: { from: count, lastId, delivered, epoch: joiner.epoch },
  });
}

/** Joiner side: takes history chunks, then checks the install against them. */
export class HistoryReceiver {
  readonly #store: HistoryLog;
  readonly #hooks: MemberHooks;
  #fetched: { after: number; count: number } | undefined;

  constructor(store: HistoryLog, hooks: MemberHooks) {
    this.#store = store;
    this.#hooks = hooks;
  }

  /** A chunk of `from`'s history: entries after index `after`. */
  chunk(from: string, after: number, entries: ChatMessage[]): void {
    const store = this.#store;
    if (after > store.count) return; // a chunk was lost; the join will be retried
    let fresh = 0;
    for (const [i, e] of entries.entries()) {
      const idx = after + i + 1;
      if (idx <= store.count) {
        if (store.idAt(idx) === e.id) continue;
        this.#hooks.log.error(`history at ${idx} differs from ${from}'s; replacing it`);
        this.#hooks.events.emit("mc.diverged", { at: idx - 1, count: store.count - idx + 1 });
        store.truncate(idx - 1);
      }
      store.append(entries.slice(i));
      fresh = entries.length - i;
      break;
    }
    if (!this.#fetched || after === 0 || after < this.#fetched.after) {
      this.#fetched = { after, count: 0 };
    }
    this.#fetched.count += fresh;
    this.#hooks.log.debug(`history from ${from}: ${entries.length} after ${after}`);
  }

  /**
   * The install arrived: `base` and `lastId` are the coordinator's count and last id. Returns
   * the delivered vector to install with, or undefined when a chunk went missing (the join
   * is retried). Emits `mc.history.fetched`.
   */
  complete(
    from: string,
    base: number,
    lastId: string | undefined,
    inst: Installation,
    delivered: Record<string, number>,
  ): Record<string, number> | undefined {
    const store = this.#store;
    if (store.count < base || (base > 0 && store.idAt(base) !== lastId)) {
      this.#hooks.log.warn(`install from ${from}: history ends at ${base}, have ${store.count}`);
      return undefined;
    }
    const mine = this.#extraDeliveries(base, inst, delivered);
    const fetched = this.#fetched;
    this.#fetched = undefined;
    this.#hooks.events.emit("mc.history.fetched", {
      from,
      after: fetched?.after ?? base,
      count: fetched?.count ?? 0,
      total: store.count,
    });
    return mine;
  }

  /**
   * A joiner that delivered more than its coordinator (it delivered in the old view what the
   * coordinator still held): those deliveries must be the first of the installation's order,
   * and are kept. On a mismatch (never expected) the extra entries are dropped.
   */
  #extraDeliveries(
    base: number,
    inst: Installation,
    delivered: Record<string, number>,
  ): Record<string, number> {
    const store = this.#store;
    if (store.count === base) return delivered;
    const extra = store.since(base);
    const expected = inst.msgs.filter((m) => m.seq > (delivered[m.from] ?? 0)).sort(compareStamp);
    if (!extra.every((e, i) => expected[i]?.id === e.id)) {
      this.#hooks.log.error(
        `history after ${base} differs from the group's (${extra.length} entries); replacing it`,
      );
      this.#hooks.events.emit("mc.diverged", { at: base, count: extra.length });
      store.truncate(base);
      return delivered;
    }
    const out = { ...delivered };
    for (const e of extra) out[e.from] = Math.max(out[e.from] ?? 0, e.seq);
    return out;
  }
}

/** Splits messages into runs of at most ~DATA_FRAME_BYTES encoded (so no frame is too large). */
export function bySize<T extends ChatMessage>(msgs: T[]): T[][] {
  const parts: T[][] = [];
  let part: T[] = [];
  let bytes = 0;
  for (const m of msgs) {
    const size = m.body.length * 3 + m.id.length + 64;
    if (part.length > 0 && bytes + size > DATA_FRAME_BYTES) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(m);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

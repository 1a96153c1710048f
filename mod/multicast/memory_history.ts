/**
 * An in-memory {@linkcode HistoryLog} for unit tests and simulations: the same contract as
 * the SQLite store, with an optional injected failure to test how storage errors surface.
 *
 * @module
 */
import type { HistoryEntry, HistoryLog, StoredView } from "./history_store.ts";
import type { ChatMessage } from "./message.ts";

/** A delivered history kept in an array. */
export class MemoryHistory implements HistoryLog {
  #entries: HistoryEntry[] = [];
  #reserved = 1;
  /** When set, the next `append` throws this error (once). */
  failNext: Error | undefined;

  get count(): number {
    return this.#entries.length;
  }

  get reservedSeq(): number {
    return this.#reserved;
  }

  reserveSeq(seq: number): void {
    if (seq >= this.#reserved) this.#reserved = seq + 1000;
  }

  append(msgs: ChatMessage[]): HistoryEntry[] {
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const out = msgs.map((m, i) => ({ ...m, idx: this.#entries.length + i + 1 }));
    this.#entries.push(...out);
    return out;
  }

  truncate(idx: number): void {
    this.#entries.length = Math.min(this.#entries.length, idx);
  }

  idAt(idx: number): string | undefined {
    return this.#entries[idx - 1]?.id;
  }

  since(after: number, limit = 1_000_000): HistoryEntry[] {
    return this.#entries.slice(after, after + limit);
  }

  tail(n: number): HistoryEntry[] {
    return this.#entries.slice(Math.max(0, this.#entries.length - n));
  }

  lastSeqs(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.#entries) out[e.from] = Math.max(out[e.from] ?? 0, e.seq);
    return out;
  }

  /** The last view installed. */
  lastView: StoredView | undefined;

  saveView(view: StoredView): void {
    this.lastView = { num: view.num, members: view.members.slice() };
  }

  /** Every id, in delivery order. */
  ids(): string[] {
    return this.#entries.map((e) => e.id);
  }
}

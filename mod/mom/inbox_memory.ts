/**
 * The daemon's in-memory inbox: for each user whose receives keep up, the inbox entries
 * committed since its receives last found nothing stored, so its next receives need no
 * read back from SQLite. Pure: no clock, no I/O.
 *
 * Semantics: a user's memory is complete for every position ≥ its `from`; a receive after
 * `from - 1` or later is answered from it. Entries are dropped once acknowledged. Bounded
 * per user (entries and bytes) and over all users (bytes): a user past a bound is dropped
 * and reads from SQLite again until a receive finds nothing stored.
 *
 * @module
 */
import { ENCODED, encodeValue, type PreEncoded } from "../wire/mod.ts";
import type { Delivery, InboxEntry } from "./daemon_store.ts";

/** Bounds of {@linkcode InboxMemory}. */
export interface InboxMemoryLimits {
  /** Unacknowledged entries kept per user at most. @default 50_000 */
  maxEntries?: number;
  /** Bytes of unacknowledged entries kept per user at most. @default 8 MiB */
  maxBytes?: number;
  /** Bytes kept over all users at most. @default 64 MiB */
  maxTotalBytes?: number;
}

/** One user's memory: complete for every position ≥ `from`. */
interface UserMemory {
  from: number;
  entries: InboxEntry[];
  /** Index of the first entry not yet acknowledged. */
  head: number;
  /** Approximate bytes of the entries from `head` on. */
  bytes: number;
}

/** Memory an in-memory inbox entry is counted for. */
export function entryBytes(e: InboxEntry): number {
  return e.payload.length + e.topic.length + e.id.length + 64;
}

/** Per-user memory of just-committed inbox entries (see the module doc). */
export class InboxMemory {
  readonly #users = new Map<number, UserMemory>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxTotalBytes: number;
  #bytes = 0;

  constructor(limits: InboxMemoryLimits = {}) {
    this.#maxEntries = limits.maxEntries ?? 50_000;
    this.#maxBytes = limits.maxBytes ?? 8 * 1024 * 1024;
    this.#maxTotalBytes = limits.maxTotalBytes ?? 64 * 1024 * 1024;
  }

  /** Approximate bytes held over all users. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of users with a memory. */
  get size(): number {
    return this.#users.size;
  }

  /** Whether `user` has a memory. */
  has(user: number): boolean {
    return this.#users.has(user);
  }

  /** Starts (or restarts) `user`'s memory: nothing is stored at or after `from`. */
  start(user: number, from: number): void {
    this.drop(user);
    this.#users.set(user, { from, entries: [], head: 0, bytes: 0 });
  }

  /** Forgets `user`'s memory (it reads from SQLite again). */
  drop(user: number): void {
    const m = this.#users.get(user);
    if (m === undefined) return;
    this.#bytes -= m.bytes;
    this.#users.delete(user);
  }

  /**
   * `user`'s entries after `from` (default `after`), at most `max`, or undefined when
   * memory does not hold all of them. Drops the entries up to `after` (acknowledged).
   */
  after(user: number, after: number, max: number, from = after): InboxEntry[] | undefined {
    const m = this.#users.get(user);
    if (m === undefined || from + 1 < m.from) return undefined;
    const entries = m.entries;
    let head = m.head;
    let freed = 0;
    while (head < entries.length && entries[head].seq <= after) {
      freed += entryBytes(entries[head++]);
    }
    m.bytes -= freed;
    this.#bytes -= freed;
    if (head > 1024 && head * 2 > entries.length) {
      m.entries = entries.slice(head);
      head = 0;
    }
    m.head = head;
    const kept = m.entries;
    if (from <= after) return kept.slice(head, head + max);
    // the first entry after `from` (entries are in position order)
    let lo = head;
    let hi = kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (kept[mid].seq <= from) lo = mid + 1;
      else hi = mid;
    }
    return kept.slice(lo, lo + max);
  }

  /**
   * Adds just-committed deliveries (`incoming`, in position order, with their entries
   * `entries`) to the memories of their recipients that have one.
   */
  remember(incoming: readonly Delivery[], entries: readonly InboxEntry[]): void {
    if (this.#users.size === 0) return;
    for (let i = 0; i < incoming.length; i++) {
      const entry = entries[i];
      let bytes = 0;
      for (const user of incoming[i].users) {
        const m = this.#users.get(user);
        if (m === undefined) continue;
        bytes ||= entryBytes(entry);
        if (
          m.entries.length - m.head >= this.#maxEntries ||
          m.bytes + bytes > this.#maxBytes ||
          this.#bytes + bytes > this.#maxTotalBytes
        ) {
          // a user that does not keep up reads from the database again
          this.drop(user);
          continue;
        }
        m.entries.push(entry);
        m.bytes += bytes;
        this.#bytes += bytes;
      }
    }
  }
}

/** An inbox entry several local users receive: encoded once for all their replies. */
export class SharedEntry implements InboxEntry, PreEncoded {
  #bytes: Uint8Array | undefined;
  constructor(
    readonly seq: number,
    readonly id: string,
    readonly topic: string,
    readonly payload: Uint8Array,
    readonly from: number,
    readonly meta?: Uint8Array,
  ) {}

  /** The entry's MessagePack encoding (made once). */
  [ENCODED](): Uint8Array {
    this.#bytes ??= encodeValue(
      this.meta === undefined
        ? { seq: this.seq, id: this.id, topic: this.topic, payload: this.payload, from: this.from }
        : {
          seq: this.seq,
          id: this.id,
          topic: this.topic,
          payload: this.payload,
          from: this.from,
          meta: this.meta,
        },
    );
    return this.#bytes;
  }
}

/** The inbox entry of `d` at position `seq` (with `meta` only when it has one). */
export function inboxEntry(seq: number, d: Delivery): InboxEntry {
  const e: InboxEntry = { seq, id: d.id, topic: d.topic, payload: d.payload, from: d.from };
  if (d.meta !== undefined) e.meta = d.meta;
  return e;
}

/** The inbox entries of deliveries committed at positions from `first` on. */
export function committedEntries(incoming: readonly Delivery[], first: number): InboxEntry[] {
  const entries: InboxEntry[] = new Array(incoming.length);
  for (let i = 0; i < incoming.length; i++) {
    const e = incoming[i];
    entries[i] = e.users.length > 1
      ? new SharedEntry(first + i, e.id, e.topic, e.payload, e.from, e.meta)
      : inboxEntry(first + i, e);
  }
  return entries;
}

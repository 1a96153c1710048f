/**
 * The recent past of a node's events, kept for `/events?replay=N`, without making garbage
 * that outlives V8's young generation. Holding the last few hundred events as JS strings
 * (or records) kept each one alive just long enough to be promoted to the old generation
 * and die there: at thousands of events a second that grew the old generation by
 * megabytes a second, slowed every scavenge and added mark-compacts, and cost a busy
 * node about a tenth of its CPU with nobody attached. Here each event's JSON line is
 * copied into a fixed slot of one preallocated byte buffer, and read back only when a
 * client asks for a replay.
 *
 * @module
 */
import type { EventRecord } from "../events/mod.ts";

/** One event as read back: its id, its name, and its JSON line or (none made) its record. */
export interface RecentEvent {
  /** The event's id (this process's count of events). */
  id: number;
  /** The event's name. */
  ev: string;
  /** Its JSON line, when the node made one. */
  line?: string;
  /** Its record, when no line was made. */
  event?: EventRecord;
}

/** Bytes of one slot: lines up to this long are copied in; longer ones are kept as strings. */
export const RECENT_SLOT_BYTES = 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A ring of the last `capacity` events. `add` copies an event's line into its slot's bytes
 * (one `encodeInto`, no allocation); an event with no line (the node writes no events
 * file) or a line longer than {@linkcode RECENT_SLOT_BYTES} is kept by reference instead.
 */
export class RecentEvents {
  readonly capacity: number;
  readonly #bytes: Uint8Array;
  readonly #ids: Float64Array;
  readonly #lengths: Int32Array;
  readonly #evs: string[];
  /** Per slot: the record or the long line kept by reference, else undefined. */
  readonly #refs: (EventRecord | string | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(0, Math.floor(capacity));
    this.#bytes = new Uint8Array(this.capacity * RECENT_SLOT_BYTES);
    this.#ids = new Float64Array(this.capacity);
    this.#lengths = new Int32Array(this.capacity);
    this.#evs = new Array<string>(this.capacity).fill("");
    this.#refs = new Array<EventRecord | string | undefined>(this.capacity).fill(undefined);
  }

  /** The number of events held. */
  get size(): number {
    return this.#size;
  }

  /** Keeps event `id` (the oldest one goes when full). */
  add(id: number, event: EventRecord, line?: string): void {
    if (this.capacity === 0) return;
    const slot = this.#next;
    this.#next = (slot + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
    this.#ids[slot] = id;
    this.#evs[slot] = event.ev;
    this.#lengths[slot] = -1;
    this.#refs[slot] = undefined;
    if (line === undefined) {
      this.#refs[slot] = event;
      return;
    }
    const at = slot * RECENT_SLOT_BYTES;
    const r = encoder.encodeInto(line, this.#bytes.subarray(at, at + RECENT_SLOT_BYTES));
    if (r.read === line.length) this.#lengths[slot] = r.written;
    else this.#refs[slot] = line;
  }

  /** The last `n` events held, oldest first. */
  tail(n: number): RecentEvent[] {
    const count = Math.max(0, Math.min(Math.floor(n), this.#size));
    const out: RecentEvent[] = [];
    const first = (this.#next - count + this.capacity) % Math.max(this.capacity, 1);
    for (let i = 0; i < count; i++) {
      const slot = (first + i) % this.capacity;
      const id = this.#ids[slot];
      const ev = this.#evs[slot];
      const ref = this.#refs[slot];
      if (typeof ref === "string") out.push({ id, ev, line: ref });
      else if (ref !== undefined) out.push({ id, ev, event: ref });
      else {
        const at = slot * RECENT_SLOT_BYTES;
        const line = decoder.decode(this.#bytes.subarray(at, at + this.#lengths[slot]));
        out.push({ id, ev, line });
      }
    }
    return out;
  }
}

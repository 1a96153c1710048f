/**
 * When the next message TTL or queue `x-expires` falls due, and the one timer that
 * wakes the engine then. RabbitMQ expires messages at a queue's head only, so the
 * earliest due time of a queue is that of its first ready message that has one.
 *
 * @module
 */
import type { QueueState } from "./queue_state.ts";

/** The earliest wall-clock ms at which a head message expires or an unused queue is deleted (Infinity: none). */
export function nextExpiry(queues: Iterable<QueueState>): number {
  let next = Infinity;
  for (const q of queues) {
    if (q.expiring && q.depth > 0) {
      for (let i = q.head; i < q.ready.length; i++) {
        const e = q.ready[i].expiresAt;
        if (e) {
          if (e < next) next = e;
          break;
        }
      }
    }
    if (q.expires > 0 && q.consumers.length === 0) next = Math.min(next, q.lastUsed + q.expires);
  }
  return next;
}

/**
 * One unref'd timer set to a wall-clock time: {@linkcode soonest} only moves it earlier,
 * {@linkcode set} moves it anywhere. It calls `fire` once when due.
 */
export class ExpiryTimer {
  readonly #fire: () => void;
  readonly #now: () => number;
  #timer?: ReturnType<typeof setTimeout>;
  #at = Infinity;
  #closed = false;

  constructor(fire: () => void, now: () => number) {
    this.#fire = fire;
    this.#now = now;
  }

  /** When it fires next (Infinity: not set). */
  get at(): number {
    return this.#at;
  }

  /** Fires at `at` if that is earlier than the time set. */
  soonest(at: number): void {
    if (at < this.#at) this.set(at);
  }

  /** Fires at `at` instead of the time set (Infinity keeps what is set). */
  set(at: number): void {
    if (this.#closed || at === Infinity) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = at;
    const delay = Math.min(Math.max(1, at - this.#now()), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Infinity;
      this.#fire();
    }, delay);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Stops it for good (safe twice). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * The turn batcher every role uses to "commit at the end of this turn": a "next macrotask"
 * scheduler without the 1–2 ms clamp of `setTimeout(fn, 0)`. Work queued during one batch
 * of socket reads (many frames) is flushed together right after, in the event loop's check
 * phase (`setImmediate`).
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Runs `fn` once on the next macrotask after `schedule()`, however often it was called. */
export class Tick implements Disposable {
  readonly #fn: () => void;
  #scheduled = false;
  #closed = false;
  #later: ReturnType<typeof setTimeout> | undefined;

  constructor(fn: () => void) {
    this.#fn = fn;
  }

  /** Whether a run is asked for and has not happened yet. */
  get scheduled(): boolean {
    return this.#scheduled;
  }

  /** Asks for one run of the function on the next macrotask. */
  schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#closed) this.#fn();
    });
  }

  /**
   * Asks for one run within `ms` (for work that may wait, such as deletions): it rides along
   * with an earlier `schedule()` run if there is one.
   */
  scheduleWithin(ms: number): void {
    if (this.#later !== undefined || this.#closed) return;
    this.#later = setTimeout(() => {
      this.#later = undefined;
      this.schedule();
    }, ms);
  }

  /** Stops scheduling. Safe to call twice. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#later);
    this.#later = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Runs a store's WAL checkpoint when the node has been idle for a while, so the fsync a
 * checkpoint costs does not land inside a busy commit.
 *
 * @module
 */

/** Calls `checkpoint` after writes, once no write happened for `idleMs`. */
export class IdleCheckpoint implements Disposable {
  readonly #checkpoint: () => void;
  readonly #idleMs: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #lastWrite = 0;
  #dirty = false;

  constructor(checkpoint: () => void, idleMs = 250) {
    this.#checkpoint = checkpoint;
    this.#idleMs = idleMs;
    this.#timer = setInterval(() => this.#tick(), idleMs);
  }

  /** Notes a write. */
  wrote(): void {
    this.#dirty = true;
    this.#lastWrite = performance.now();
  }

  /** Stops the timer. Safe to call twice. */
  close(): void {
    clearInterval(this.#timer);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #tick(): void {
    if (!this.#dirty || performance.now() - this.#lastWrite < this.#idleMs) return;
    this.#dirty = false;
    try {
      this.#checkpoint();
    } catch {
      // a busy database: try again after the next write
      this.#dirty = true;
    }
  }
}

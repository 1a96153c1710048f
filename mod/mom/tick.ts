/**
 * A "next macrotask" scheduler without the 1–2 ms clamp of `setTimeout(fn, 0)`: work
 * queued during one batch of socket reads (many frames) is flushed together right after.
 *
 * @module
 */

/** Runs `fn` once on the next macrotask after `schedule()`, however often it was called. */
export class Tick implements Disposable {
  readonly #channel = new MessageChannel();
  #scheduled = false;
  #closed = false;

  constructor(fn: () => void) {
    this.#channel.port1.onmessage = () => {
      this.#scheduled = false;
      if (!this.#closed) fn();
    };
  }

  /** Asks for one run of the function on the next macrotask. */
  schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    this.#channel.port2.postMessage(0);
  }

  /** Stops scheduling and releases the channel. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.port1.close();
    this.#channel.port2.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The first failed write of a node whose memory runs ahead of its disk (the MOM broker and
 * daemon): reported once, as one `store.failed` event and one log line, and as a promise
 * the role waits on to stop (exit 1); a restart resends whatever was not acknowledged.
 *
 * @module
 */
import type { EventSink, Logger } from "../events/mod.ts";
import { StorageError } from "./sqlite.ts";

/** Trips once, on the first failed write; after that the store must not be written again. */
export class StoreFailureLatch {
  readonly #events: EventSink;
  readonly #log: Logger;
  #tripped = false;
  #resolve: (err: StorageError) => void = () => {};
  /** Resolves with the failure when the latch trips. */
  readonly failed: Promise<StorageError> = new Promise((resolve) => this.#resolve = resolve);

  constructor(context: { events: EventSink; log: Logger }) {
    this.#events = context.events;
    this.#log = context.log;
  }

  /** Whether a write has failed. */
  get tripped(): boolean {
    return this.#tripped;
  }

  /** Reports `err` (the first time only): event, log line, `failed` resolves. */
  trip(err: unknown): void {
    if (this.#tripped) return;
    this.#tripped = true;
    const failure = new StorageError(
      `Cannot write to the database: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
    this.#events.emit("store.failed", { code: failure.code, message: failure.message });
    this.#log.error(failure.message);
    this.#resolve(failure);
  }
}

/**
 * The first failed write of a node whose memory runs ahead of its disk (the MOM broker and
 * daemon, the ratings replica): reported once, as one `store.failed` event and one log line, and as a promise
 * the role waits on to stop (exit 1); a restart resends whatever was not acknowledged.
 *
 * @module
 */
import type { EventSink, Logger } from "../events/mod.ts";
import { StorageError } from "./sqlite.ts";

/** Trips once, on the first failed write; after that the store must not be written again. */
export class StoreFailureLatch {
  readonly #events: Pick<EventSink, "emit">;
  readonly #log: Pick<Logger, "error">;
  readonly #what: string;
  #failure: StorageError | undefined;
  #resolve: (err: StorageError) => void = () => {};
  /** Resolves with the failure when the latch trips. */
  readonly failed: Promise<StorageError> = new Promise((resolve) => this.#resolve = resolve);

  /** `what` names the store in the message. @default {"to the database"} */
  constructor(
    context: { events: Pick<EventSink, "emit">; log: Pick<Logger, "error">; what?: string },
  ) {
    this.#events = context.events;
    this.#log = context.log;
    this.#what = context.what ?? "to the database";
  }

  /** Whether a write has failed. */
  get tripped(): boolean {
    return this.#failure !== undefined;
  }

  /** The failure, once tripped. */
  get failure(): StorageError | undefined {
    return this.#failure;
  }

  /** Reports `err` (the first time only): event, log line, `failed` resolves. */
  trip(err: unknown): void {
    if (this.#failure) return;
    const failure = this.#failure = new StorageError(
      `Cannot write ${this.#what}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
    this.#events.emit("store.failed", { code: failure.code, message: failure.message });
    this.#log.error(failure.message);
    this.#resolve(failure);
  }
}

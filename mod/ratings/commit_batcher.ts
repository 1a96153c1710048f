/**
 * The replica's commits: what changed in one turn goes to SQLite in one transaction (the
 * shared `Tick` batcher), and whoever must not answer before it is stored waits for that
 * commit. A failed commit trips the shared `StoreFailureLatch`: waiting and later updates
 * are refused `store_failed`, and the role stops (memory is ahead of the disk; peers resend
 * after the restart).
 *
 * @module
 */
import type { EventSink, Logger } from "../events/mod.ts";
import { Tick } from "../process/mod.ts";
import { type StorageError, STORE_FAILED, StoreFailureLatch } from "../storage/mod.ts";
import { ProtocolError } from "../wire/mod.ts";

/** What the batcher commits: the replica's store. */
export interface CommitTarget {
  /** Whether something changed since the last commit. */
  readonly dirty: boolean;
  /** Where it is (named in the failure). */
  readonly path: string;
  /** Commits what changed; throws when the write fails. */
  flush(): void;
}

/** Batches the commits of one turn; `committed()` resolves once what changed so far is stored. */
export class CommitBatcher {
  readonly #target: CommitTarget;
  readonly #latch: StoreFailureLatch;
  readonly #tick = new Tick(() => this.now());
  #waiters: Array<{ resolve(): void; reject(err: unknown): void }> = [];

  constructor(
    target: CommitTarget,
    context: { events: Pick<EventSink, "emit">; log: Pick<Logger, "error"> },
  ) {
    this.#target = target;
    this.#latch = new StoreFailureLatch({ ...context, what: target.path });
  }

  /** Resolves with the error once a commit failed. */
  get failed(): Promise<StorageError> {
    return this.#latch.failed;
  }

  /** The failed commit, if one failed. */
  get failure(): StorageError | undefined {
    return this.#latch.failure;
  }

  /** Commits at the end of this turn. */
  schedule(): void {
    this.#tick.schedule();
  }

  /** Commits now (nothing after a failure); resolves or refuses the waiters. */
  now(): void {
    if (this.#latch.tripped) return;
    try {
      this.#target.flush();
    } catch (err) {
      this.#latch.trip(err);
      const refusal = new ProtocolError(STORE_FAILED, this.#latch.failure!.message);
      for (const w of this.#waiters.splice(0)) w.reject(refusal);
      return;
    }
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /** Resolves after everything changed so far is committed (rejects `store_failed`). */
  committed(): Promise<void> {
    const failure = this.#latch.failure;
    if (failure) return Promise.reject(new ProtocolError(STORE_FAILED, failure.message));
    if (!this.#target.dirty) return Promise.resolve();
    this.schedule();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Stops batching (a last `now()` still commits). */
  close(): void {
    this.#tick.close();
  }
}

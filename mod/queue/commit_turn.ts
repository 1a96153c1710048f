/**
 * Persistence glue: what one event-loop turn wrote to the store is committed in one
 * transaction at the end of the turn, and only then are that turn's publisher confirms
 * sent (or, when the commit fails, every waiting publish is nacked).
 *
 * @module
 */
import { Tick } from "../process/mod.ts";
import { ProtocolError } from "../wire/mod.ts";
import { QueueErrorCode } from "./protocol.ts";
import type { EngineConnection } from "./queue_state.ts";
import type { QueueStore } from "./store.ts";

/** What runs around each end-of-turn commit. */
export interface CommitHooks {
  /** Last writes of the turn (e.g. delivery marks) before the commit. */
  beforeCommit?(): void;
  /** After the commit (or its failed attempt). */
  afterCommit?(): void;
}

/** The end-of-turn commit and the confirms that wait for it. */
export class CommitTurn {
  readonly #store?: QueueStore;
  readonly #onEvent: (ev: string, fields: Record<string, unknown>) => void;
  readonly #confirmWaiting = new Set<EngineConnection>();
  #commitWaiters: Array<() => void> = [];
  readonly #turn = new Tick(() => this.#tick());
  readonly #stats: { commits: number };
  readonly #hooks: CommitHooks;
  #closed = false;

  /**
   * Commits go to `store` (none: confirms at the end of the turn); `stats.commits` counts
   * them; `hooks` run around each end-of-turn commit.
   */
  constructor(
    store: QueueStore | undefined,
    onEvent: (ev: string, fields: Record<string, unknown>) => void,
    stats: { commits: number },
    hooks: CommitHooks = {},
  ) {
    this.#store = store;
    this.#onEvent = onEvent;
    this.#stats = stats;
    this.#hooks = hooks;
  }

  /** Store writes are pending: commit at the end of this turn. */
  schedule(): void {
    if (!this.#closed) this.#turn.schedule();
  }

  /** `conn` published in confirm mode this turn: confirm up to its `publishSeq` after the commit. */
  confirmAfterCommit(conn: EngineConnection): void {
    this.#confirmWaiting.add(conn);
    this.schedule();
  }

  /** `conn` is gone: nothing to confirm to it. */
  forget(conn: EngineConnection): void {
    this.#confirmWaiting.delete(conn);
  }

  /** Resolves after the next store commit (at once when nothing is pending). */
  committed(): Promise<void> {
    if (!this.#turn.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#commitWaiters.push(resolve));
  }

  #tick(): void {
    let failure: ProtocolError | undefined;
    this.#hooks.beforeCommit?.();
    if (this.#store?.dirty) {
      try {
        this.#store.commit();
        this.#stats.commits++;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failure = new ProtocolError(QueueErrorCode.StoreFailed, `Cannot store: ${message}`);
        this.#onEvent("store.error", { message });
      }
    }
    this.#hooks.afterCommit?.();
    const waiting = [...this.#confirmWaiting];
    this.#confirmWaiting.clear();
    for (const conn of waiting) {
      if (conn.closed) continue;
      if (failure) conn.sink.confirmFailed(conn.publishSeq, failure);
      else conn.sink.confirmed(conn.publishSeq);
    }
    const waiters = this.#commitWaiters;
    this.#commitWaiters = [];
    for (const w of waiters) w();
  }

  /** No more turns; whoever waits for a commit is released (safe twice). */
  close(): void {
    this.#closed = true;
    this.#turn.close();
    for (const w of this.#commitWaiters) w();
    this.#commitWaiters = [];
  }
}

/**
 * Dialling a peer until it answers: {@linkcode retryConnect} runs `connect` again after each
 * failure, paced by a {@linkcode Backoff}, until it succeeds, a failure is fatal (a refusal
 * that retrying cannot fix), the peer has been failing for `giveUpAfterMs`, or the signal
 * aborts. Time comes from an injectable {@linkcode Clock}, so a test runs a whole retry
 * schedule at once and sees every delay.
 *
 * ```ts
 * const client = await retryConnect(() => RpcClient.connect(addr, opts), {
 *   backoff: { initialMs: 50, maxMs: 1_000 },
 *   giveUpAfterMs: 60_000,
 *   fatal: (err) => err instanceof RemoteError,
 *   signal,
 * });
 * ```
 *
 * @module
 */
import { Backoff, type BackoffOptions, sleep } from "./backoff.ts";

/** Time as a retrying link sees it (injectable: tests pass a clock that only pretends). */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: `performance.now()` and {@linkcode sleep}. */
export const systemClock: Clock = { now: () => performance.now(), sleep };

/** One failed attempt, as {@linkcode RetryConnectOptions.onFailure} sees it. */
export interface RetryFailure {
  /** What `connect` threw. */
  error: unknown;
  /** Failures in a row, this one included (1 for the first). */
  failures: number;
  /** How long since the first of those failures, in ms. */
  failingMs: number;
  /** The wait before the next attempt, in ms. */
  delayMs: number;
}

/** Options of {@linkcode retryConnect}. */
export interface RetryConnectOptions {
  /**
   * The pacing: a {@linkcode Backoff} the caller keeps (to wait on it after a link that
   * was up drops, too), or options for a fresh one. It is reset after a success.
   * @default {new Backoff()}
   */
  backoff?: Backoff | BackoffOptions;
  /** Stops retrying: `retryConnect` then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Rejects with the last error once failures have gone on this long. @default {Infinity} */
  giveUpAfterMs?: number;
  /** Rejects with the last error after this many attempts. @default {Infinity} */
  maxAttempts?: number;
  /** Failures that retrying cannot fix (e.g. an authentication refusal): rethrown at once. */
  fatal?: (err: unknown) => boolean;
  /** Called after each failure that will be retried, before the wait (for logs, counters). */
  onFailure?: (failure: RetryFailure) => void;
  /** The clock. @default {systemClock} */
  clock?: Clock;
}

/**
 * Runs `connect` until it resolves and returns its result. Between attempts it waits the
 * backoff's next delay. Rejects with the signal's reason when the signal aborts (before an
 * attempt, during one or during a wait), or with the last error when it is fatal or the
 * retrying ran out of time or attempts.
 */
export async function retryConnect<T>(
  connect: () => Promise<T>,
  options: RetryConnectOptions = {},
): Promise<T> {
  const { signal, fatal, onFailure } = options;
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff instanceof Backoff
    ? options.backoff
    : new Backoff(options.backoff);
  const giveUpAfterMs = options.giveUpAfterMs ?? Infinity;
  const maxAttempts = options.maxAttempts ?? Infinity;
  let failingSince: number | undefined;
  for (let attempt = 1;; attempt++) {
    signal?.throwIfAborted();
    try {
      const result = await connect();
      backoff.reset();
      return result;
    } catch (error) {
      signal?.throwIfAborted();
      if (fatal?.(error)) throw error;
      const now = clock.now();
      failingSince ??= now;
      const failingMs = now - failingSince;
      if (failingMs >= giveUpAfterMs || attempt >= maxAttempts) throw error;
      const delayMs = backoff.next();
      onFailure?.({ error, failures: attempt, failingMs, delayMs });
      await clock.sleep(delayMs, signal);
    }
  }
}

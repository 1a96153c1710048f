/**
 * Reconnect pacing shared by every link: capped exponential backoff with jitter, and an
 * abortable sleep. Pure apart from the sleep; the random source is injectable so tests and
 * simulations get the same delays every run.
 *
 * ```ts
 * const backoff = new Backoff({ initialMs: 50, maxMs: 2_000 });
 * for (let attempt = 0; attempt < 100; attempt++) {
 *   try { return await connect(); } catch { await sleep(backoff.next(), signal); }
 * }
 * ```
 *
 * A link that only dials until the peer answers uses `retryConnect` (`retry.ts`), which
 * runs this loop with a give-up time, fatal refusals and an injectable clock.
 *
 * @module
 */

/** Options of {@linkcode Backoff}. */
export interface BackoffOptions {
  /** Delay after the first failure. @default {100} */
  initialMs?: number;
  /** Largest delay. @default {2000} */
  maxMs?: number;
  /** Growth per failure. @default {2} */
  factor?: number;
  /**
   * Jitter: each delay is drawn from `[delay × (1 − jitter), delay × (1 + jitter)]`, then
   * capped, so links that failed together do not retry together. @default {0.25}
   */
  jitter?: number;
  /** Uniform random numbers in [0, 1). @default {Math.random} */
  random?: () => number;
}

/**
 * Capped, jittered exponential backoff: `next()` after each failure, `reset()` after a
 * success. The n-th delay (before jitter) is `min(maxMs, initialMs × factor^(n−1))`.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 100;
    this.#maxMs = options.maxMs ?? 2_000;
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.25;
    this.#random = options.random ?? Math.random;
    if (!(this.#initialMs > 0 && this.#maxMs >= this.#initialMs && this.#factor >= 1)) {
      throw new RangeError("Cannot pace retries: need 0 < initialMs ≤ maxMs and factor ≥ 1");
    }
    if (!(this.#jitter >= 0 && this.#jitter < 1)) {
      throw new RangeError("Cannot pace retries: jitter must be in [0, 1)");
    }
  }

  /** Failures since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** Counts a failure and returns how long to wait before the next attempt, in ms. */
  next(): number {
    const exponent = Math.min(this.#failures, 64);
    this.#failures++;
    const base = Math.min(this.#maxMs, this.#initialMs * this.#factor ** exponent);
    const spread = 1 - this.#jitter + 2 * this.#jitter * this.#random();
    return Math.min(this.#maxMs, base * spread);
  }

  /** After a success: the next failure waits `initialMs` again. */
  reset(): void {
    this.#failures = 0;
  }
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (it never rejects: a caller checks
 * `signal.aborted` afterwards). The timer is cleared either way.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

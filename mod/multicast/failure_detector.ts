/**
 * Heartbeat-silence failure suspicion for the multicast role, on a clock the caller passes
 * in (no timers): a member silent for longer than the timeout is suspected, and a stall of
 * this node's own timer (SIGSTOP, swap, a long GC) gives every peer a fresh timeout.
 *
 * @module
 */

/** Options of {@linkcode SilenceDetector}. */
export interface SilenceDetectorOptions {
  /** Silence after which a peer is suspected. */
  timeoutMs: number;
  /** Time the detector starts at (peers never heard count from here). */
  now: number;
}

/**
 * Tracks when each peer was last heard. `suspected(name, now)` is true once the peer has
 * been silent for `timeoutMs`; `running(now)` detects stalls of this node itself.
 */
export class SilenceDetector {
  readonly #timeout: number;
  readonly #heard = new Map<string, number>();
  readonly #startedAt: number;
  #lastTimer: number;

  constructor(options: SilenceDetectorOptions) {
    this.#timeout = options.timeoutMs;
    this.#startedAt = options.now;
    this.#lastTimer = options.now;
  }

  /** The silence timeout. */
  get timeoutMs(): number {
    return this.#timeout;
  }

  /** Records that `name` was heard from at `now`. */
  heard(name: string, now: number): void {
    this.#heard.set(name, now);
  }

  /** Forgets `name` (it left politely): suspected at once. */
  forget(name: string): void {
    this.#heard.set(name, -Infinity);
  }

  /** Gives `name` a fresh timeout unless it was heard from within one (a view admitted it). */
  refresh(name: string, now: number): void {
    if (!((this.#heard.get(name) ?? -Infinity) > now - this.#timeout)) this.#heard.set(name, now);
  }

  /** Milliseconds since `name` was last heard from. */
  silence(name: string, now: number): number {
    return now - (this.#heard.get(name) ?? this.#startedAt);
  }

  /** Whether `name` has been silent for longer than the timeout. */
  suspected(name: string, now: number): boolean {
    return this.silence(name, now) > this.#timeout;
  }

  /**
   * Called whenever this node runs (its periodic timer, a frame, a send): when the gap since
   * the last call exceeds half the timeout this node itself was stalled, so every peer in
   * `peers` gets a fresh timeout (silence measured while this node did not run proves
   * nothing). Returns the gap when it stalled.
   */
  running(now: number, peers: Iterable<string>): number | undefined {
    const gap = now - this.#lastTimer;
    this.#lastTimer = now;
    if (gap <= this.#timeout / 2) return undefined;
    for (const name of peers) {
      this.#heard.set(name, Math.max(this.#heard.get(name) ?? -Infinity, now));
    }
    return gap;
  }
}

/**
 * Duplicate suppression by publisher: a publication the broker re-routes after its own
 * crash comes again with a new delivery seq, so the daemon also drops a delivery whose
 * `(publishing daemon, seq)` is at or below the highest it stored from that daemon. Pure.
 *
 * @module
 */

/**
 * The highest publication seq stored per publishing daemon, and those of deliveries
 * accepted since the last commit (`pending`, written with it).
 */
export class PublisherSeqs {
  readonly #committed: Map<string, number>;
  #pending = new Map<string, number>();

  /** `committed`: what the store says was stored per publishing daemon. */
  constructor(committed: Map<string, number>) {
    this.#committed = committed;
  }

  /**
   * Whether the publication `id` (`daemon:seq`) is new; a new one is recorded as pending.
   * An id of another shape is always new.
   */
  fresh(id: string): boolean {
    const colon = id.lastIndexOf(":");
    const seq = Number(id.slice(colon + 1));
    if (colon <= 0 || !Number.isSafeInteger(seq)) return true;
    const publisher = id.slice(0, colon);
    const last = this.#pending.get(publisher) ?? this.#committed.get(publisher) ?? 0;
    if (seq <= last) return false;
    this.#pending.set(publisher, seq);
    return true;
  }

  /** Takes what was recorded since the last call, for the next commit. */
  takePending(): Map<string, number> {
    const p = this.#pending;
    if (p.size > 0) this.#pending = new Map();
    return p;
  }

  /** Records that `taken` (from {@linkcode takePending}) is committed. */
  committed(taken: Map<string, number>): void {
    for (const [k, v] of taken) this.#committed.set(k, v);
  }
}

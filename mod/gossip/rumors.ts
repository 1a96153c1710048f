/**
 * The hot rumors of one node: the keys it is still spreading by rumor mongering, in the
 * order they take turns in messages, with the rounds each has been pushed and the
 * duplicates it has met. Pure (the random source is passed in).
 *
 * @module
 */
import type { RandomSource } from "../random/mod.ts";

/** How a node decides to stop spreading a rumor it hears again. */
export type StopRule = "coin" | "counter";

interface Hot {
  rounds: number;
  duplicates: number;
}

/** The set of hot rumors (see the module doc). */
export class HotRumors {
  readonly #hot = new Map<string, Hot>();

  /** Number of hot keys. */
  get size(): number {
    return this.#hot.size;
  }

  /** `key` is new here: spread it afresh (a key already hot keeps its turn). */
  mark(key: string): void {
    this.#hot.set(key, { rounds: 0, duplicates: 0 });
  }

  /**
   * The entries of one gossip round: the first `max` hot keys in turn order, each through
   * `entryOf` (a key without an entry is dropped). Each key taken goes to the back of the
   * order, and leaves the set once it has been pushed `cap` rounds.
   */
  takeRound<T>(max: number, cap: number, entryOf: (key: string) => T | undefined): T[] {
    const out: T[] = [];
    for (const key of [...this.#hot.keys()].slice(0, max)) {
      const hot = this.#hot.get(key)!;
      this.#hot.delete(key);
      const e = entryOf(key);
      if (e === undefined) continue;
      out.push(e);
      if (++hot.rounds < cap) this.#hot.set(key, hot);
    }
    return out;
  }

  /**
   * A rumor this node already knew arrived again. `coin`: stop spreading it with
   * probability 1/k; `counter`: after k such receipts. Returns whether it stopped.
   */
  duplicate(key: string, rule: StopRule, k: number, random: RandomSource): boolean {
    const hot = this.#hot.get(key);
    if (!hot) return false;
    const stop = rule === "counter" ? ++hot.duplicates >= k : random() < 1 / k;
    if (stop) this.#hot.delete(key);
    return stop;
  }
}

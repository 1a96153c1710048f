/**
 * Versions of writes: a Lamport clock value with the writing node's name as tie-break.
 * Last writer wins, and every node orders two versions the same way.
 *
 * @module
 */

/** The version of one write: Lamport clock, then node name. */
export interface Version {
  /** Lamport clock value at the write. */
  clock: number;
  /** The node that wrote it (tie-break). */
  node: string;
}

/** Orders versions: negative if `a` is older than `b`, 0 if equal, positive if newer. */
export function compareVersions(a: Version, b: Version): number {
  if (a.clock !== b.clock) return a.clock < b.clock ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** `clock@node`, as printed in logs. */
export function formatVersion(v: Version): string {
  return `${v.clock}@${v.node}`;
}

/**
 * A Lamport clock: `observe` every version seen, `tick` for a local write. A local write
 * is therefore newer than everything this node has seen.
 */
export class LamportClock {
  #time = 0;

  /** The current value. */
  get time(): number {
    return this.#time;
  }

  /** Advances past a seen clock value. */
  observe(clock: number): void {
    if (clock > this.#time) this.#time = clock;
  }

  /** The value for a new local event. */
  tick(): number {
    return ++this.#time;
  }
}

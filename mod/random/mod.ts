/**
 * Seeded pseudo-random numbers (mulberry32) and sampling helpers, shared by the gossip
 * simulation, the lottery and ratings generators and the tests: the same seed makes the
 * same choices.
 *
 * @module
 */

/** A source of uniform numbers in [0, 1). */
export type RandomSource = () => number;

/** A seeded generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random integer in [0, n). */
export function randomIndex(random: RandomSource, n: number): number {
  return Math.floor(random() * n);
}

/**
 * Up to `count` distinct items of `items` chosen uniformly (partial Fisher-Yates on a
 * copy when `count` is a large share, rejection sampling otherwise), skipping `exclude`.
 */
export function sampleDistinct<T>(
  random: RandomSource,
  items: readonly T[],
  count: number,
  exclude?: (item: T) => boolean,
): T[] {
  if (count <= 0 || items.length === 0) return [];
  if (items.length > 8 * count) {
    const picked = new Set<number>();
    const out: T[] = [];
    for (let tries = 0; out.length < count && tries < count * 16; tries++) {
      const i = randomIndex(random, items.length);
      if (picked.has(i)) continue;
      picked.add(i);
      if (exclude?.(items[i])) continue;
      out.push(items[i]);
    }
    if (out.length === count) return out;
  }
  const pool = exclude ? items.filter((x) => !exclude(x)) : items.slice();
  const n = Math.min(count, pool.length);
  for (let i = 0; i < n; i++) {
    const j = i + randomIndex(random, pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}

/** Shuffles `items` in place (Fisher-Yates) and returns it. */
export function shuffle<T>(random: RandomSource, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomIndex(random, i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

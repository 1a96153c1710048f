/**
 * The pure part of push-pull anti-entropy: a node's digest of its map, the answer to a
 * peer's digest (the entries the peer lacks or holds older, the keys it has newer), and the
 * entries a peer wanted back, each within a byte budget of values.
 *
 * @module
 */
import type { DigestTuple, EntryTuple } from "./messages.ts";
import type { Entry, VersionedStore } from "./store.ts";

/** An entry as it travels. */
export function entryTuple(e: Entry): EntryTuple {
  return [e.key, e.value, e.version.clock, e.version.node, e.hops];
}

/** Whether the digest item `t` names an older version than `mine`. */
export function olderThan(t: DigestTuple, mine: Entry): boolean {
  return t[1] < mine.version.clock || (t[1] === mine.version.clock && t[2] < mine.version.node);
}

/** The digest of `store`: `[key, clock, writer]` per key. */
export function digestOf(store: VersionedStore): DigestTuple[] {
  const d: DigestTuple[] = [];
  for (const e of store.entries()) d.push([e.key, e.version.clock, e.version.node]);
  return d;
}

/** Rough bytes one entry takes of a delta's budget. */
function cost(e: Entry): number {
  return e.value.length + e.key.length + 16;
}

/**
 * The answer to a peer's digest `d`: the entries of `store` it lacks or holds older (in
 * store order, until `budget` bytes of values are used; the rest goes in later
 * exchanges), and the keys it holds newer, which this node wants.
 */
export function deltaFor(
  store: VersionedStore,
  d: readonly DigestTuple[],
  budget: number,
): { e: EntryTuple[]; want: string[] } {
  const theirs = new Map<string, DigestTuple>();
  for (const item of d) theirs.set(item[0], item);
  const want: string[] = [];
  for (const [key, clock, node] of d) {
    if (store.isNewer(key, { clock, node })) want.push(key);
  }
  const e: EntryTuple[] = [];
  let left = budget;
  for (const entry of store.entries()) {
    const t = theirs.get(entry.key);
    if (t && !olderThan(t, entry)) continue;
    left -= cost(entry);
    if (left < 0) break;
    e.push(entryTuple(entry));
  }
  return { e, want };
}

/** The entries of `keys` that `store` has, until `budget` bytes of values are used. */
export function entriesFor(
  store: VersionedStore,
  keys: readonly string[],
  budget: number,
): EntryTuple[] {
  const e: EntryTuple[] = [];
  let left = budget;
  for (const key of keys) {
    const entry = store.get(key);
    if (!entry) continue;
    left -= cost(entry);
    if (left < 0) break;
    e.push(entryTuple(entry));
  }
  return e;
}

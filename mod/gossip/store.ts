/**
 * The replicated key/value map: each key holds the value of its newest version.
 *
 * @module
 */
import { compareVersions, type Version } from "./version.ts";

/** One stored value. */
export interface Entry {
  /** The key. */
  key: string;
  /** The value. */
  value: string;
  /** Its version. */
  version: Version;
  /** Gossip hops from the writer to this node (0 at the writer). */
  hops: number;
}

/** A last-writer-wins map. `apply` keeps an entry only if it is newer than the stored one. */
export class VersionedStore {
  #entries = new Map<string, Entry>();

  /** Number of keys. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `key`, if any. */
  get(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  /** Whether `version` of `key` is newer than what is stored (or the key is unknown). */
  isNewer(key: string, version: Version): boolean {
    const cur = this.#entries.get(key);
    return cur === undefined || compareVersions(version, cur.version) > 0;
  }

  /** Stores `entry` if it is newer; returns whether it was. */
  apply(entry: Entry): boolean {
    if (!this.isNewer(entry.key, entry.version)) return false;
    this.#entries.set(entry.key, entry);
    return true;
  }

  /** Every entry. */
  entries(): IterableIterator<Entry> {
    return this.#entries.values();
  }
}

/**
 * The subscription index: users' patterns (exact topics and `+`/`#` wildcards) and the
 * users a topic reaches, cached per topic. The broker keeps one for every user; a daemon
 * keeps one for its own users, to deliver their publications to each other.
 *
 * @module
 */
import { isWildcard, topicMatches } from "./topic.ts";

/** A user a topic reaches, and whether it asked for its own publications on it. */
export interface TopicMatch {
  /** The subscribed user. */
  user: number;
  /** Whether one of its matching subscriptions delivers the user's own publications. */
  own: boolean;
}

/** Topics whose matches are cached at most (the cache is emptied past it). */
const CACHE_MAX = 10_000;

/** Subscriptions by user and by pattern, with cached topic matching. */
export class SubscriptionIndex {
  readonly #byUser = new Map<number, Map<string, boolean>>();
  readonly #exact = new Map<string, Set<number>>();
  readonly #wild = new Map<string, Set<number>>();
  readonly #cache = new Map<string, TopicMatch[]>();

  /** Number of subscriptions. */
  get size(): number {
    let n = 0;
    for (const m of this.#byUser.values()) n += m.size;
    return n;
  }

  /** Whether `user` is subscribed to `pattern`. */
  has(user: number, pattern: string): boolean {
    return this.#byUser.get(user)?.has(pattern) ?? false;
  }

  /** `user`'s patterns with their `own` flags. */
  of(user: number): Array<[string, boolean]> {
    return [...(this.#byUser.get(user) ?? [])];
  }

  /** Adds (or replaces) a subscription. */
  add(user: number, pattern: string, own: boolean): void {
    let m = this.#byUser.get(user);
    if (!m) this.#byUser.set(user, m = new Map());
    m.set(pattern, own);
    const index = isWildcard(pattern) ? this.#wild : this.#exact;
    let set = index.get(pattern);
    if (!set) index.set(pattern, set = new Set());
    set.add(user);
    this.#cache.clear();
  }

  /** Removes a subscription; returns whether there was one. */
  remove(user: number, pattern: string): boolean {
    const m = this.#byUser.get(user);
    if (!m?.delete(pattern)) return false;
    if (m.size === 0) this.#byUser.delete(user);
    const index = isWildcard(pattern) ? this.#wild : this.#exact;
    const set = index.get(pattern);
    set?.delete(user);
    if (set?.size === 0) index.delete(pattern);
    this.#cache.clear();
    return true;
  }

  /** Removes every subscription of `user`; returns its patterns. */
  removeUser(user: number): string[] {
    const patterns = [...(this.#byUser.get(user)?.keys() ?? [])];
    for (const p of patterns) this.remove(user, p);
    return patterns;
  }

  /** The users `topic` reaches, each once (the array is shared: do not change it). */
  match(topic: string): TopicMatch[] {
    const cached = this.#cache.get(topic);
    if (cached) return cached;
    const out: TopicMatch[] = [];
    const byUser = new Map<number, TopicMatch>();
    const add = (user: number, pattern: string) => {
      const own = this.#byUser.get(user)?.get(pattern) ?? false;
      const seen = byUser.get(user);
      if (seen) {
        seen.own ||= own;
      } else {
        const m = { user, own };
        byUser.set(user, m);
        out.push(m);
      }
    };
    for (const u of this.#exact.get(topic) ?? []) add(u, topic);
    for (const [pattern, users] of this.#wild) {
      if (topicMatches(pattern, topic)) { for (const u of users) add(u, pattern); }
    }
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(topic, out);
    return out;
  }
}

/**
 * A session's MQTT subscriptions and what they give a delivery on a topic (highest QoS,
 * retain as published, subscription identifiers), cached per topic. Pure.
 *
 * @module
 */
import type { Subscription } from "./packet.ts";
import { filterMatches } from "./topic.ts";

/** A subscription of a session as it is stored. */
export interface SessionSubscription extends Subscription {
  /** v5 subscription identifier. */
  identifier?: number;
}

/** What a session's subscriptions give a delivery on one topic. */
export interface TopicMatch {
  /** Highest QoS of the matching subscriptions (−1: none matches). */
  qos: number;
  retainAsPublished: boolean;
  identifiers?: number[];
}

/** Topics whose match a session remembers (per own / not own). */
const MATCH_CACHE_MAX = 1024;

/** The subscriptions of one session, by filter. */
export class SessionSubscriptions {
  readonly #subs = new Map<string, SessionSubscription>();
  readonly #matches = new Map<string, TopicMatch>();
  readonly #ownMatches = new Map<string, TopicMatch>();

  /** The subscription to `filter`, if any. */
  get(filter: string): SessionSubscription | undefined {
    return this.#subs.get(filter);
  }

  /** Whether there is a subscription to `filter`. */
  has(filter: string): boolean {
    return this.#subs.has(filter);
  }

  /** Adds or replaces the subscription to `sub.filter`. */
  set(sub: SessionSubscription): void {
    this.#subs.set(sub.filter, sub);
    this.#matches.clear();
    this.#ownMatches.clear();
  }

  /** Removes the subscription to `filter`. */
  delete(filter: string): void {
    this.#subs.delete(filter);
    this.#matches.clear();
    this.#ownMatches.clear();
  }

  /** The filters subscribed to. */
  filters(): string[] {
    return [...this.#subs.keys()];
  }

  /**
   * What the subscriptions say about a delivery on `topic`; `own`: the session's own
   * publication (no-local subscriptions do not count).
   */
  match(topic: string, own: boolean): TopicMatch {
    const cache = own ? this.#ownMatches : this.#matches;
    const hit = cache.get(topic);
    if (hit !== undefined) return hit;
    const m: TopicMatch = { qos: -1, retainAsPublished: false };
    for (const sub of this.#subs.values()) {
      if (!filterMatches(sub.filter, topic)) continue;
      if (sub.noLocal && own) continue;
      if (sub.qos > m.qos) m.qos = sub.qos;
      if (sub.retainAsPublished) m.retainAsPublished = true;
      if (sub.identifier !== undefined) (m.identifiers ??= []).push(sub.identifier);
    }
    if (cache.size >= MATCH_CACHE_MAX) cache.clear();
    cache.set(topic, m);
    return m;
  }
}

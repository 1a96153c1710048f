/**
 * Which of the broker's retained messages a new subscription gets (MQTT), pure.
 *
 * @module
 */
import type { RetainedRow } from "./broker_store.ts";
import { topicMatches } from "./topic.ts";

/** A retained message as the `retained` reply carries it. */
export interface RetainedMessage {
  id: string;
  topic: string;
  payload: Uint8Array;
  from: number;
  meta: Uint8Array;
}

/**
 * The retained messages of `rows` a subscription to `pattern` gets: those whose topic it
 * matches, except topics starting with `$` for a pattern starting with a wildcard.
 */
export function retainedFor(pattern: string, rows: Iterable<RetainedRow>): RetainedMessage[] {
  const wild = pattern.startsWith("+") || pattern.startsWith("#");
  const out: RetainedMessage[] = [];
  for (const r of rows) {
    if (!topicMatches(pattern, r.topic)) continue;
    if (wild && r.topic.startsWith("$")) continue;
    out.push({ id: r.id, topic: r.topic, payload: r.payload, from: r.from, meta: r.meta });
  }
  return out;
}

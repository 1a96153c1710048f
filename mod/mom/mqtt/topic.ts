/**
 * MQTT topic names and filters as the MOM takes them: the MOM's rules (`../topic.ts`: at
 * most 255 UTF-8 bytes, `+` a whole level, `#` the whole last level) plus MQTT's (a topic
 * name holds no wildcard; `$share/…` filters are shared subscriptions, not supported).
 *
 * @module
 */
import { checkPattern, checkTopic, topicMatches } from "../topic.ts";

/** Checks a topic name of a PUBLISH (or a will); throws an Error saying why not. */
export function checkTopicName(topic: string): string {
  return checkTopic(topic);
}

/** Checks a topic filter of a SUBSCRIBE; throws an Error saying why not. */
export function checkFilter(filter: string): string {
  if (filter.startsWith("$share/")) {
    throw new Error(`Cannot subscribe to "${filter}": shared subscriptions are not supported`);
  }
  return checkPattern(filter);
}

/**
 * Whether `filter` matches `topic`. As MQTT says (4.7.2), a filter starting with a wildcard
 * does not match a topic starting with `$`.
 */
export function filterMatches(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  return topicMatches(filter, topic);
}

/**
 * Topic names and subscription patterns: rules and matching, as MQTT users expect.
 *
 * A topic is non-empty, at most {@linkcode MAX_TOPIC_BYTES} UTF-8 bytes, and `/` separates
 * its levels (`Museum/Doors/Door0`). A published topic holds no `+` or `#`. A subscription
 * pattern may use `+` for exactly one level and `#` as its last level for "this level and
 * everything below" (`Museum/#` matches `Museum` and `Museum/Doors/Door0`).
 *
 * @module
 */

/** Longest topic or pattern, in UTF-8 bytes. */
export const MAX_TOPIC_BYTES = 255;

const encoder = new TextEncoder();

/** A topic or pattern that breaks the rules. */
export class TopicError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TopicError";
  }
}

function checkCommon(topic: unknown, what: string): string {
  if (typeof topic !== "string") throw new TopicError(`Cannot use ${what}: it must be a string`);
  if (topic.length === 0) throw new TopicError(`Cannot use ${what}: it is empty`);
  const bytes = topic.length > MAX_TOPIC_BYTES ? encoder.encode(topic).length : utf8Length(topic);
  if (bytes > MAX_TOPIC_BYTES) {
    throw new TopicError(
      `Cannot use ${what} "${topic.slice(0, 40)}…": ${bytes} bytes is over ${MAX_TOPIC_BYTES}`,
    );
  }
  if (topic.includes("\0")) throw new TopicError(`Cannot use ${what}: it contains NUL`);
  return topic;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : (c >= 0xd800 && c <= 0xdbff) ? (i++, 4) : 3;
  }
  return n;
}

/** Checks a topic to publish on; returns it or throws {@linkcode TopicError}. */
export function checkTopic(topic: unknown): string {
  const t = checkCommon(topic, "topic");
  if (t.includes("+") || t.includes("#")) {
    throw new TopicError(`Cannot publish on "${t}": wildcards + and # are for subscriptions`);
  }
  return t;
}

/** Checks a subscription pattern; returns it or throws {@linkcode TopicError}. */
export function checkPattern(pattern: unknown): string {
  const p = checkCommon(pattern, "pattern");
  const levels = p.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      throw new TopicError(`Cannot subscribe to "${p}": # must be the whole last level`);
    }
    if (level.includes("+") && level !== "+") {
      throw new TopicError(`Cannot subscribe to "${p}": + must be a whole level`);
    }
  }
  return p;
}

/** Whether `pattern` has a wildcard. */
export function isWildcard(pattern: string): boolean {
  return pattern.includes("+") || pattern.includes("#");
}

/** Whether the (valid) `pattern` matches the (valid) `topic`. */
export function topicMatches(pattern: string, topic: string): boolean {
  if (!isWildcard(pattern)) return pattern === topic;
  const p = pattern.split("/");
  const t = topic.split("/");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === "#") return true;
    if (i >= t.length) return false;
    if (p[i] !== "+" && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/**
 * Exchanges and routing: the exchange record with its bindings, the built-in `amq.*`
 * exchanges, binding keys as each type stores them, and which queue names a message
 * reaches (direct by key, fanout to all, topic by pattern with a per-key cache, headers
 * by `x-match` all/any). Pure: no store, no queues, only names.
 *
 * @module
 */
import { propsReplacer } from "./props_json.ts";
import { topicMatches } from "./topic.ts";
import type { ExchangeType } from "./types.ts";

/** The exchange types there are. */
export const EXCHANGE_TYPES: ReadonlySet<string> = new Set([
  "direct",
  "fanout",
  "topic",
  "headers",
]);

/** An exchange and its bindings. */
export interface Exchange {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  /** key (direct/topic/headers) → queue names; fanout uses key "" for all. */
  bindings: Map<string, Set<string>>;
  /** topic: routing key → the queue names its patterns match (cleared when bindings change). */
  topicCache?: Map<string, string[]>;
}

/** What a queue records of its own bindings (ids from {@linkcode bindingId}). */
export interface BoundQueue {
  readonly name: string;
  readonly bindings: Set<string>;
}

/** The exchanges every broker has: `amq.direct`, `amq.fanout`, `amq.topic`, `amq.headers`, `amq.match`. */
export function builtinExchanges(): Exchange[] {
  return ([
    ["amq.direct", "direct"],
    ["amq.fanout", "fanout"],
    ["amq.topic", "topic"],
    ["amq.headers", "headers"],
    ["amq.match", "headers"],
  ] as const).map(([name, type]) => ({
    name,
    type,
    durable: true,
    autoDelete: false,
    internal: false,
    bindings: new Map(),
  }));
}

/** The key a binding is stored under: `""` for fanout, canonical JSON for headers. */
export function bindingKey(ex: Exchange, key: string): string {
  if (ex.type === "fanout") return "";
  if (ex.type === "headers") return canonicalHeadersKey(key);
  return key;
}

/** The id of binding (`exchange`, stored `key`) in {@linkcode BoundQueue.bindings}. */
export function bindingId(exchange: string, key: string): string {
  return `${exchange}\u0000${key}`;
}

/** Splits a {@linkcode bindingId} into exchange name and key. */
export function splitBindingId(id: string): [exchange: string, key: string] {
  const at = id.indexOf("\u0000");
  return [id.slice(0, at), id.slice(at + 1)];
}

/** Binds `q` to `ex` with `key`; false when that binding exists. */
export function addBinding(ex: Exchange, q: BoundQueue, key: string): boolean {
  const k = bindingKey(ex, key);
  const id = bindingId(ex.name, k);
  if (q.bindings.has(id)) return false;
  q.bindings.add(id);
  let set = ex.bindings.get(k);
  if (!set) ex.bindings.set(k, set = new Set());
  set.add(q.name);
  ex.topicCache?.clear();
  return true;
}

/** Removes the binding of `q` to `ex` under the stored key `k` (no error when absent). */
export function removeBinding(ex: Exchange, q: BoundQueue, k: string): void {
  const set = ex.bindings.get(k);
  set?.delete(q.name);
  if (set?.size === 0) ex.bindings.delete(k);
  ex.topicCache?.clear();
  q.bindings.delete(bindingId(ex.name, k));
}

/** How many bindings `ex` has. */
export function bindingCount(ex: Exchange): number {
  let n = 0;
  for (const s of ex.bindings.values()) n += s.size;
  return n;
}

const NONE: readonly string[] = [];

/** The names of the queues a message with `key` and `props` reaches through `ex`. */
export function routeNames(
  ex: Exchange,
  key: string,
  props: Record<string, unknown>,
): Iterable<string> {
  if (ex.type === "fanout") return ex.bindings.get("") ?? NONE;
  if (ex.type === "direct") return ex.bindings.get(key) ?? NONE;
  if (ex.type === "headers") {
    const headers = props.headers;
    const h = typeof headers === "object" && headers !== null && !Array.isArray(headers)
      ? headers as Record<string, unknown>
      : {};
    const out = new Set<string>();
    for (const [binding, queues] of ex.bindings) {
      if (headersMatch(binding, h)) { for (const q of queues) out.add(q); }
    }
    return out;
  }
  // topic: the patterns a key matches are computed once per key until the bindings change
  const cache = ex.topicCache ??= new Map();
  let names = cache.get(key);
  if (!names) {
    const out = new Set<string>();
    for (const [pattern, queues] of ex.bindings) {
      if (topicMatches(pattern, key)) { for (const q of queues) out.add(q); }
    }
    names = [...out];
    if (cache.size >= 4096) cache.clear();
    cache.set(key, names);
  }
  return names;
}

/**
 * A headers-exchange binding is stored under its arguments as canonical JSON (keys
 * sorted): `{"x-match":"all"|"any", header: value, …}`. A key that is not such JSON
 * (a binding made with a plain routing key) means "match all of nothing", i.e. everything.
 */
export function canonicalHeadersKey(key: string): string {
  const args = parseHeadersKey(key);
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(args).sort()) sorted[k] = args[k];
  return JSON.stringify(sorted);
}

const headersKeyCache = new Map<string, Record<string, unknown>>();

function parseHeadersKey(key: string): Record<string, unknown> {
  let args = headersKeyCache.get(key);
  if (args) return args;
  args = {};
  try {
    const v = JSON.parse(key);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) args = v;
  } catch {
    // a plain key: no arguments
  }
  if (headersKeyCache.size > 10_000) headersKeyCache.clear();
  headersKeyCache.set(key, args!);
  return args!;
}

/** Whether `headers` match a headers-exchange binding (x-match all, the default, or any). */
export function headersMatch(bindingKey: string, headers: Record<string, unknown>): boolean {
  const args = parseHeadersKey(bindingKey);
  const any = args["x-match"] === "any";
  let total = 0;
  for (const [k, v] of Object.entries(args)) {
    if (k.startsWith("x-")) continue;
    total++;
    const h = headers[k];
    const ok = k in headers && (v === null || v === undefined || sameValue(h, v));
    if (any && ok) return true;
    if (!any && !ok) return false;
  }
  return any ? total === 0 : true;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "bigint" || typeof b === "bigint") return String(a) === String(b);
  return JSON.stringify(a, propsReplacer) === JSON.stringify(b, propsReplacer);
}

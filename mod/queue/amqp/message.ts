/**
 * How an AMQP message's properties live in the queue engine. A message published over
 * AMQP keeps its content-header properties byte for byte (`props.amqp`, the flags and
 * property list as received), so AMQP consumers get exactly what was sent; beside them
 * the engine gets a plain view (`contentType`, `headers`, `deliveryMode`, …) that native
 * clients read and the headers exchange matches on. A message published natively gets
 * its AMQP properties built from that plain view.
 *
 * @module
 */
import {
  AmqpTimestamp,
  type BasicProperties,
  decodeProperties,
  encodeProperties,
  type FieldTable,
  type FieldValue,
} from "./codec.ts";
import { ENCODED_PROPS_KEY } from "../types.ts";

/** The engine props key that holds the raw AMQP properties. */
export const RAW_PROPS_KEY = ENCODED_PROPS_KEY;

/** A field value as plain data: timestamps as seconds, 64-bit integers beyond 2^53 as strings. */
export function plainValue(v: FieldValue): unknown {
  if (v instanceof AmqpTimestamp) return v.seconds;
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return v.map(plainValue);
  if (v instanceof Uint8Array || v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = plainValue(x as FieldValue);
  return out;
}

/**
 * The engine props of a message published over AMQP with raw properties `view` (which
 * may be a view of a read buffer: what is kept is copied).
 */
export function engineProps(view: Uint8Array): {
  props: Record<string, unknown>;
  persistent: boolean;
} {
  // clients send the same few property sets again and again: decode each once
  if (lastRaw.length === view.length && lastResult) {
    let same = true;
    for (let i = 0; i < view.length; i++) {
      if (lastRaw[i] !== view[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastResult;
  }
  let key: string | undefined;
  if (view.length <= 64) {
    key = "";
    for (let i = 0; i < view.length; i++) key += String.fromCharCode(view[i]);
    const hit = propsCache.get(key);
    if (hit) {
      lastRaw = hit.props[RAW_PROPS_KEY] as Uint8Array;
      lastResult = hit;
      return hit;
    }
  }
  const raw = view.slice();
  const p = decodeProperties(raw);
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    props[k] = k === "headers" ? plainValue(v as FieldTable) : v;
  }
  props[RAW_PROPS_KEY] = raw;
  const out = { props, persistent: p.deliveryMode === 2 };
  if (key !== undefined) {
    if (propsCache.size >= 256) propsCache.clear();
    propsCache.set(key, out);
    lastRaw = raw;
    lastResult = out;
  }
  return out;
}

let lastRaw: Uint8Array = new Uint8Array(0);
let lastResult: { props: Record<string, unknown>; persistent: boolean } | undefined;

/** Decoded property sets by their raw bytes (shared, never mutated). */
const propsCache = new Map<string, { props: Record<string, unknown>; persistent: boolean }>();

const rawCache = new WeakMap<object, Uint8Array>();
const EMPTY_PERSISTENT = encodeProperties({ deliveryMode: 2 });
const EMPTY_TRANSIENT = encodeProperties({});

const STRING_PROPS = [
  "contentType",
  "contentEncoding",
  "correlationId",
  "replyTo",
  "expiration",
  "messageId",
  "type",
  "userId",
  "appId",
  "clusterId",
] as const;

/**
 * The raw AMQP properties of an engine message: as received when it came over AMQP,
 * else built from the plain props (known keys; `persistent` sets delivery mode 2).
 */
export function rawProperties(props: Record<string, unknown>, persistent: boolean): Uint8Array {
  const raw = props[RAW_PROPS_KEY];
  if (raw instanceof Uint8Array) return raw;
  let keys = 0;
  for (const _ in props) {
    keys++;
    break;
  }
  if (keys === 0) return persistent ? EMPTY_PERSISTENT : EMPTY_TRANSIENT;
  const cached = rawCache.get(props);
  if (cached) return cached;
  const p: BasicProperties = {};
  for (const k of STRING_PROPS) {
    const v = props[k];
    if (typeof v === "string" && new TextEncoder().encode(v).length <= 255) p[k] = v;
  }
  const h = props.headers;
  if (typeof h === "object" && h !== null && !Array.isArray(h) && !(h instanceof Uint8Array)) {
    p.headers = h as FieldTable;
  }
  if (typeof props.priority === "number") p.priority = props.priority & 0xff;
  if (typeof props.timestamp === "number" && props.timestamp >= 0) {
    p.timestamp = Math.floor(props.timestamp);
  }
  const mode = props.deliveryMode;
  p.deliveryMode = mode === 1 || mode === 2 ? mode : persistent ? 2 : undefined;
  let out: Uint8Array;
  try {
    out = encodeProperties(p);
  } catch {
    out = persistent ? EMPTY_PERSISTENT : EMPTY_TRANSIENT;
  }
  rawCache.set(props, out);
  return out;
}

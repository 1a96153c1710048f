/**
 * What a dead-lettered message carries, as RabbitMQ writes it: an `x-death` header, an
 * array of one table per (queue, reason) the message died in, most recent first, each
 * with `count`, `reason` (`rejected`, `expired`, `maxlen`), `queue`, `time`, `exchange`
 * and `routing-keys` (and `original-expiration` when the message had its own TTL); the
 * `x-first-death-*` and `x-last-death-*` headers; and no `expiration` any more (it
 * would expire again in the next queue). Pure.
 *
 * @module
 */
import { ENCODED_PROPS_KEY } from "./types.ts";

/** Why a message left its queue for good. */
export type DeathReason = "rejected" | "expired" | "maxlen";

/** One death: where, why, when, and how the message had been routed. */
export interface Death {
  queue: string;
  reason: DeathReason;
  /** The exchange the message had been published to. */
  exchange: string;
  /** Its routing key. */
  routingKey: string;
  /** When, wall clock. */
  time: Date;
}

/**
 * The props of a message dead-lettered by `death`: a new object (the original is shared
 * and left alone), without the protocol adapters' encoded form (`ENCODED_PROPS_KEY`),
 * since the properties changed.
 */
export function deadLetteredProps(
  props: Record<string, unknown>,
  death: Death,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in props) if (k !== ENCODED_PROPS_KEY && k !== "expiration") out[k] = props[k];
  const old = props.headers;
  const headers: Record<string, unknown> =
    typeof old === "object" && old !== null && !Array.isArray(old) && !(old instanceof Uint8Array)
      ? { ...old as Record<string, unknown> }
      : {};
  const deaths = Array.isArray(headers["x-death"]) ? [...headers["x-death"] as unknown[]] : [];
  const at = deaths.findIndex((d) =>
    isTable(d) && d.queue === death.queue && d.reason === death.reason
  );
  let entry: Record<string, unknown>;
  if (at >= 0) {
    const had = deaths.splice(at, 1)[0] as Record<string, unknown>;
    const count = Number(had.count);
    entry = { ...had, count: Number.isFinite(count) ? count + 1 : 1, time: death.time };
  } else {
    entry = {
      count: 1,
      reason: death.reason,
      queue: death.queue,
      time: death.time,
      exchange: death.exchange,
      "routing-keys": [death.routingKey],
    };
    if (props.expiration !== undefined) entry["original-expiration"] = String(props.expiration);
  }
  deaths.unshift(entry);
  headers["x-death"] = deaths;
  if (headers["x-first-death-queue"] === undefined) {
    headers["x-first-death-queue"] = death.queue;
    headers["x-first-death-reason"] = death.reason;
    headers["x-first-death-exchange"] = death.exchange;
  }
  headers["x-last-death-queue"] = death.queue;
  headers["x-last-death-reason"] = death.reason;
  headers["x-last-death-exchange"] = death.exchange;
  out.headers = headers;
  return out;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

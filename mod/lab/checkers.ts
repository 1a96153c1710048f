/**
 * Checkers for the fault suite: pure functions over what the nodes reported (events,
 * `ctl` replies) that return the violations they find — an empty list means the property
 * holds. Tests assert `deepEqual(check(...), [])`, so a failure prints every violation.
 *
 * @module
 */
import type { EventRecord } from "../events/mod.ts";

/** One node's view of membership: peer name → state (`alive`, `suspect`, `dead`). */
export type MemberView = Record<string, string>;

/**
 * Membership convergence: every node of `nodes` sees every other one in state `alive`.
 * Returns one line per node that sees someone otherwise (or not at all).
 */
export function membershipConverged(
  views: Record<string, MemberView>,
  nodes: readonly string[],
): string[] {
  const problems: string[] = [];
  for (const observer of nodes) {
    const view = views[observer];
    if (!view) {
      problems.push(`${observer}: no member list`);
      continue;
    }
    for (const peer of nodes) {
      if (peer === observer) continue;
      if (view[peer] !== "alive") {
        problems.push(`${observer} sees ${peer} as ${view[peer] ?? "unknown"}`);
      }
    }
  }
  return problems;
}

/**
 * Failure detection across a cut: every observer of `observers` sees every peer of `peers`
 * as one of `states` (default: suspect or dead).
 */
export function detectedAs(
  views: Record<string, MemberView>,
  observers: readonly string[],
  peers: readonly string[],
  states: readonly string[] = ["suspect", "dead"],
): string[] {
  const problems: string[] = [];
  for (const o of observers) {
    for (const p of peers) {
      const s = views[o]?.[p];
      if (!s || !states.includes(s)) {
        problems.push(`${o} sees ${p} as ${s ?? "unknown"}, not ${states.join("|")}`);
      }
    }
  }
  return problems;
}

/**
 * Value convergence: for every key, every node holds the same value (compared by
 * `JSON.stringify`; `undefined` means the node lacks the key).
 * `values[node][key]` is what `node` returned for `key`.
 */
export function valuesConverged(
  values: Record<string, Record<string, unknown>>,
  keys: readonly string[],
): string[] {
  const problems: string[] = [];
  const nodes = Object.keys(values);
  for (const key of keys) {
    const seen = new Map<string, string[]>();
    for (const node of nodes) {
      const v = values[node]?.[key];
      const text = v === undefined ? "(missing)" : JSON.stringify(v);
      seen.set(text, [...(seen.get(text) ?? []), node]);
    }
    if (seen.size > 1) {
      problems.push(
        `${key}: ${[...seen].map(([v, ns]) => `${ns.join(",")}=${v.slice(0, 80)}`).join("; ")}`,
      );
    }
  }
  return problems;
}

/** All the nodes report the same value (a checksum, a count): one line if they do not. */
export function allEqual(byNode: Record<string, unknown>, what = "value"): string[] {
  const texts = new Map<string, string[]>();
  for (const [node, v] of Object.entries(byNode)) {
    const t = JSON.stringify(v);
    texts.set(t, [...(texts.get(t) ?? []), node]);
  }
  if (texts.size <= 1) return [];
  return [`${what} differs: ${[...texts].map(([v, ns]) => `${ns.join(",")}=${v}`).join("; ")}`];
}

/**
 * Exactly once: every id of `acknowledged` occurs exactly once in `received`, and nothing
 * else is received. Returns one line per missing, doubled or unexpected id (at most 20).
 */
export function exactlyOnce(
  acknowledged: readonly string[],
  received: readonly string[],
): string[] {
  const counts = new Map<string, number>();
  for (const id of received) counts.set(id, (counts.get(id) ?? 0) + 1);
  const problems: string[] = [];
  const acked = new Set(acknowledged);
  for (const id of acknowledged) {
    const c = counts.get(id) ?? 0;
    if (c === 0) problems.push(`${id}: acknowledged, never received`);
    else if (c > 1) problems.push(`${id}: received ${c} times`);
  }
  for (const [id, c] of counts) {
    if (!acked.has(id)) problems.push(`${id}: received ${c} time(s), never acknowledged`);
  }
  return problems.length > 20
    ? [...problems.slice(0, 20), `… ${problems.length - 20} more`]
    : problems;
}

/**
 * Per-publisher order: in `received` (in arrival order), each publisher's sequence numbers
 * strictly increase. Returns one line per inversion (at most 20).
 */
export function perPublisherOrder(
  received: ReadonlyArray<{ publisher: string; seq: number }>,
): string[] {
  const last = new Map<string, number>();
  const problems: string[] = [];
  for (const [i, r] of received.entries()) {
    const prev = last.get(r.publisher);
    if (prev !== undefined && r.seq <= prev) {
      problems.push(`#${i}: ${r.publisher} seq ${r.seq} after ${prev}`);
    }
    last.set(r.publisher, r.seq);
  }
  return problems.slice(0, 20);
}

/**
 * Nothing lost or doubled over a set of numbered items: `got` holds each of `expected`
 * exactly once (multiset compare). Returns the missing and doubled items (at most 20 each).
 */
export function sameMultiset(expected: readonly string[], got: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const g of got) counts.set(g, (counts.get(g) ?? 0) + 1);
  const missing: string[] = [];
  const doubled: string[] = [];
  for (const e of expected) {
    const c = counts.get(e) ?? 0;
    if (c === 0) missing.push(e);
    else {
      if (c > 1) doubled.push(`${e}×${c}`);
      counts.delete(e);
    }
  }
  const extra = [...counts.keys()];
  const problems: string[] = [];
  if (missing.length) {
    problems.push(`missing ${missing.length}: ${missing.slice(0, 20).join(", ")}`);
  }
  if (doubled.length) {
    problems.push(`doubled ${doubled.length}: ${doubled.slice(0, 20).join(", ")}`);
  }
  if (extra.length) problems.push(`unexpected ${extra.length}: ${extra.slice(0, 20).join(", ")}`);
  return problems;
}

/** The first event in `events` at or after `sinceTs` matching `pred`, or undefined. */
export function firstAfter(
  events: readonly EventRecord[],
  sinceTs: number,
  pred: (e: EventRecord) => boolean,
): EventRecord | undefined {
  return events.find((e) => e.ts >= sinceTs && pred(e));
}

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

/** One node's hold of a lock: from `lock.acquired` to `lock.released` or to a lost lease's end. */
export interface LockInterval {
  node: string;
  fence: number;
  from: number;
  to: number;
  how: "released" | "lost" | "open";
}

/**
 * Lock intervals from ring events: [`lock.acquired`, `lock.released`] or, for a lock lost
 * to its lease, [`lock.acquired`, its `lease_end`] (the node held it until its lease
 * ended, even when it noticed later, after a pause). A lock never ended is open until
 * `ends[node]` (e.g. when that node was killed), else forever.
 */
export function lockIntervals(
  events: readonly EventRecord[],
  ends: Record<string, number> = {},
): LockInterval[] {
  const open = new Map<string, EventRecord>();
  const out: LockInterval[] = [];
  for (const e of [...events].sort((a, b) => a.ts - b.ts)) {
    const key = `${e.node}/${e.fence}`;
    if (e.ev === "lock.acquired") open.set(key, e);
    if (e.ev !== "lock.released" && e.ev !== "lock.lost") continue;
    const a = open.get(key);
    if (!a) continue;
    open.delete(key);
    const lost = e.ev === "lock.lost";
    out.push({
      node: e.node,
      fence: Number(e.fence),
      from: a.ts,
      to: lost ? Number(e.lease_end) : e.ts,
      how: lost ? "lost" : "released",
    });
  }
  for (const a of open.values()) {
    out.push({
      node: a.node,
      fence: Number(a.fence),
      from: a.ts,
      to: ends[a.node] ?? Infinity,
      how: "open",
    });
  }
  return out.sort((x, y) => x.from - y.from);
}

/**
 * Ring safety over events: no two nodes' lock intervals overlap (see `lockIntervals`),
 * fences strictly increase in the order the locks were acquired, and every `lock.lost`
 * ended where its lease did, never after a later holder began.
 */
export function mutualExclusion(
  events: readonly EventRecord[],
  ends: Record<string, number> = {},
): string[] {
  const list = lockIntervals(events, ends);
  const problems: string[] = [];
  let reach: LockInterval | undefined;
  for (let i = 0; i < list.length; i++) {
    const cur = list[i];
    if (reach && cur.from < reach.to) {
      problems.push(
        `overlap: ${reach.node} fence ${reach.fence} [${reach.from}, ${reach.to}] (${reach.how}) and ${cur.node} fence ${cur.fence} from ${cur.from}`,
      );
    }
    if (i > 0 && cur.fence <= list[i - 1].fence) {
      problems.push(`fence ${cur.fence} at ${cur.node} after ${list[i - 1].fence}`);
    }
    if (!reach || cur.to > reach.to) reach = cur;
  }
  return problems;
}

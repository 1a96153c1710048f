/**
 * Vector timestamps of the gossip architecture: one counter per replica manager, keyed by
 * the RM's name. A missing entry counts as 0, so timestamps from RMs that know different
 * sets of replicas compare correctly. Pure functions; nothing here mutates its arguments
 * unless its name says so.
 *
 * @module
 */

/** A vector timestamp: RM name → number of that RM's updates covered. */
export type VectorTs = Record<string, number>;

/** The entry of `ts` for `rm` (0 when missing). */
export function entryOf(ts: VectorTs, rm: string): number {
  return Object.hasOwn(ts, rm) ? ts[rm] : 0;
}

/** Whether `a ≤ b`: every entry of `a` is at most the same entry of `b` (missing = 0). */
export function leq(a: VectorTs, b: VectorTs): boolean {
  for (const rm in a) {
    if (a[rm] > entryOf(b, rm)) return false;
  }
  return true;
}

/** The element-wise maximum of `a` and `b` (a new object). */
export function merge(a: VectorTs, b: VectorTs): VectorTs {
  const out: VectorTs = { ...a };
  for (const rm in b) if (b[rm] > entryOf(out, rm)) out[rm] = b[rm];
  return out;
}

/** Merges `b` into `a` in place; returns whether `a` changed. */
export function mergeInto(a: VectorTs, b: VectorTs): boolean {
  let changed = false;
  for (const rm in b) {
    if (b[rm] > entryOf(a, rm)) {
      a[rm] = b[rm];
      changed = true;
    }
  }
  return changed;
}

/** The RMs (sorted) where `a` is ahead of `b`: the replicas whose updates `b` is missing. */
export function aheadOf(a: VectorTs, b: VectorTs): string[] {
  return Object.keys(a).filter((rm) => a[rm] > entryOf(b, rm)).sort();
}

/** The sum of all entries: grows strictly along every causal chain. */
export function total(ts: VectorTs): number {
  let sum = 0;
  for (const rm in ts) sum += ts[rm];
  return sum;
}

/** Whether `a` and `b` have equal entries (missing = 0). */
export function equal(a: VectorTs, b: VectorTs): boolean {
  return leq(a, b) && leq(b, a);
}

/** A copy of `ts` without zero entries, keys sorted (for display and events). */
export function normalize(ts: VectorTs): VectorTs {
  const out: VectorTs = {};
  for (const rm of Object.keys(ts).sort()) if (ts[rm] > 0) out[rm] = ts[rm];
  return out;
}

/**
 * Reads a vector timestamp from untrusted input: a map of names to non-negative safe
 * integers. Returns undefined when `value` is not one.
 */
export function parseVectorTs(value: unknown, maxEntries = 1024): VectorTs | undefined {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    return undefined;
  }
  const out: VectorTs = {};
  let n = 0;
  for (const [rm, raw] of Object.entries(value as Record<string, unknown>)) {
    if (++n > maxEntries) return undefined;
    const v = typeof raw === "bigint" ? Number(raw) : raw;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return undefined;
    if (rm.length === 0 || rm.length > 128 || rm === "__proto__") return undefined;
    if (v > 0) out[rm] = v;
  }
  return out;
}

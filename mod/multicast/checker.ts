/**
 * The safety checker of the multicast role, over the nodes' events (in memory or read from
 * `--events` files): every two delivery sequences are prefix-consistent (the same message at
 * the same index everywhere, never an index delivered twice with different messages), each
 * message is delivered once per node, and nothing is delivered outside a primary view.
 *
 * @module
 */

/** One event as emitted (`--events` line or in-memory record). */
export interface CheckedEvent {
  /** Node name. */
  node: string;
  /** Event name. */
  ev: string;
  [field: string]: unknown;
}

/** Options of {@linkcode checkMulticastEvents}. */
export interface CheckOptions {
  /** Members a primary view needs. */
  quorum: number;
  /** Final histories (ids in delivery order) per node, when known: they must agree too. */
  histories?: Map<string, string[]>;
}

/**
 * Returns the violations found (empty when the run was safe). `events` must be in the order
 * each node emitted them (interleaving across nodes does not matter).
 */
export function checkMulticastEvents(events: CheckedEvent[], options: CheckOptions): string[] {
  const problems: string[] = [];
  const primaryMembers = new Map<number, string>();
  const byIndex = new Map<number, { id: string; node: string }>();
  const nodes = new Map<string, { primary?: number; idx: Map<number, string>; ids: Set<string> }>();
  const node = (name: string) => {
    let n = nodes.get(name);
    if (!n) nodes.set(name, n = { idx: new Map(), ids: new Set() });
    return n;
  };
  for (const e of events) {
    const n = node(e.node);
    if (e.ev === "view.installed") {
      const view = Number(e.view);
      const members = (e.members as string[]) ?? [];
      if (e.primary === true) {
        if (members.length < options.quorum) {
          problems.push(`${e.node}: primary view ${view} has ${members.length} < quorum members`);
        }
        const key = members.join(",");
        const seen = primaryMembers.get(view);
        if (seen !== undefined && seen !== key) {
          problems.push(`two primary views numbered ${view}: [${seen}] and [${key}]`);
        }
        primaryMembers.set(view, key);
        n.primary = view;
      }
    } else if (e.ev === "mc.excluded" || e.ev === "ready") {
      n.primary = undefined;
    } else if (e.ev === "mc.diverged") {
      problems.push(`${e.node}: history diverged at ${String(e.at)} (replaced)`);
    } else if (e.ev === "mc.delivered") {
      const idx = Number(e.idx);
      const id = String(e.id);
      const view = e.view === undefined ? undefined : Number(e.view);
      if (n.primary === undefined || (view !== undefined && view !== n.primary)) {
        problems.push(
          `${e.node}: delivered ${id} in view ${view} outside its primary view ${n.primary}`,
        );
      }
      const prev = n.idx.get(idx);
      if (prev !== undefined && prev !== id) {
        problems.push(`${e.node}: index ${idx} delivered twice: ${prev} then ${id}`);
      }
      if (n.ids.has(id) && prev !== id) problems.push(`${e.node}: ${id} delivered twice`);
      n.idx.set(idx, id);
      n.ids.add(id);
      const other = byIndex.get(idx);
      if (other && other.id !== id) {
        problems.push(`index ${idx}: ${other.node} delivered ${other.id}, ${e.node} ${id}`);
      } else if (!other) byIndex.set(idx, { id, node: e.node });
    }
  }
  if (options.histories) {
    for (const [name, ids] of options.histories) {
      for (const [i, id] of ids.entries()) {
        const other = byIndex.get(i + 1);
        if (other && other.id !== id) {
          problems.push(
            `${name}: history index ${i + 1} is ${id}, ${other.node} delivered ${other.id}`,
          );
          break;
        }
      }
    }
    const all = [...options.histories.entries()];
    for (const [a, ha] of all) {
      for (const [b, hb] of all) {
        const k = Math.min(ha.length, hb.length);
        for (let i = 0; i < k; i++) {
          if (ha[i] !== hb[i]) {
            problems.push(`histories of ${a} and ${b} differ at ${i + 1}: ${ha[i]} vs ${hb[i]}`);
            break;
          }
        }
      }
    }
  }
  return [...new Set(problems)];
}

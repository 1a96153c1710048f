// @ts-self-types="./network.d.ts"
/**
 * Who can reach whom, as the nodes themselves say: for each node, the peers it currently
 * cannot reach, read from its role's own link, membership or view state (ring: `down`;
 * gossip: members suspect or dead; multicast: suspected, or missing from its view; ratings:
 * peers not up; MOM: the broker link and the daemons' connections). From that, every
 * link between peers is `ok`, `cut` (both ends answer the console, but one of them cannot
 * reach the other: a partition, or a one-way loss when only one end says so) or `down`
 * (an end does not answer the console at all), and the nodes that can still reach each
 * other form the partition's groups. Pure functions over the console's node views, shared
 * by the page (the browser imports this file as it is) and the tests.
 *
 * @module
 */

/** Roles whose nodes talk to each other, and to which roles. */
const PEER_ROLES = {
  ring: ["ring"],
  gossip: ["gossip"],
  multicast: ["multicast"],
  replica: ["replica"],
  frontend: ["replica"],
  daemon: ["broker"],
  broker: ["daemon"],
};

/** @param {unknown} v */
function list(v) {
  return Array.isArray(v) ? v.map(String) : [];
}

/**
 * The peers node `n` says it cannot reach, or undefined when its role says nothing of its
 * peers or it has not answered yet.
 * @param {{name: string, role: string, up: boolean, status?: any, extra?: any}} n
 * @param {Array<{name: string, role: string}>} all
 * @returns {string[] | undefined}
 */
export function unreachableFrom(n, all) {
  const s = n.status;
  if (!n.up || !s) return undefined;
  const names = new Set(all.map((x) => x.name));
  const of = (role) => all.filter((x) => x.role === role && x.name !== n.name).map((x) => x.name);
  /** @type {string[]} */
  let out = [];
  switch (n.role) {
    case "ring":
      out = list(s.down);
      break;
    case "gossip": {
      const members = n.extra?.members?.members;
      if (!Array.isArray(members)) return undefined;
      out = members.filter((m) => m && m.state !== "alive").map((m) => String(m.name));
      break;
    }
    case "multicast": {
      const inView = new Set(list(s.members));
      out = [...list(s.suspected), ...of("multicast").filter((p) => !inView.has(p))];
      break;
    }
    case "replica":
    case "frontend": {
      const peers = n.role === "replica" ? s.peers : s.rms;
      if (!Array.isArray(peers)) return undefined;
      out = peers.filter((p) => p && p.up !== true).map((p) => String(p.name));
      break;
    }
    case "daemon":
      out = s.link === "up" ? [] : of("broker");
      break;
    case "broker":
      out = Object.entries(s.daemons ?? {}).filter(([, d]) => !d?.connected).map(([d]) => d);
      break;
    default:
      return undefined;
  }
  return [...new Set(out)].filter((p) => p !== n.name && names.has(p)).sort();
}

/**
 * Every link between peers with its state, and the groups of nodes that reach each other.
 * @param {Array<{name: string, role: string, up: boolean, status?: any, extra?: any}>} nodes
 */
export function networkOf(nodes) {
  /** @type {Map<string, string[] | undefined>} */
  const unreachable = new Map(nodes.map((n) => [n.name, unreachableFrom(n, nodes)]));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  /** @type {Array<{a: string, b: string, state: "ok" | "cut" | "down", by: string[]}>} */
  const edges = [];
  const sorted = [...nodes].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const a = sorted[i], b = sorted[j];
      const talks = (PEER_ROLES[a.role] ?? []).includes(b.role) ||
        (PEER_ROLES[b.role] ?? []).includes(a.role);
      if (!talks) continue;
      /** @type {string[]} */
      const by = [];
      if (unreachable.get(a.name)?.includes(b.name)) by.push(a.name);
      if (unreachable.get(b.name)?.includes(a.name)) by.push(b.name);
      const state = !a.up || !b.up ? "down" : by.length > 0 ? "cut" : "ok";
      edges.push({ a: a.name, b: b.name, state, by });
    }
  }
  // groups: up nodes joined by ok links (union-find), among nodes that have peers
  /** @type {Map<string, string>} */
  const parent = new Map();
  const find = (x) => {
    let r = x;
    for (let k = 0; k < 10_000 && parent.get(r) !== r; k++) r = parent.get(r);
    parent.set(x, r);
    return r;
  };
  for (const e of edges) {
    for (const x of [e.a, e.b]) if (byName.get(x)?.up && !parent.has(x)) parent.set(x, x);
    if (e.state === "ok") parent.set(find(e.a), find(e.b));
  }
  /** @type {Map<string, string[]>} */
  const groups = new Map();
  for (const x of parent.keys()) {
    const r = find(x);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r).push(x);
  }
  const cuts = edges.filter((e) => e.state === "cut");
  return {
    edges,
    cuts,
    groups: [...groups.values()].map((g) => g.sort()).sort((x, y) => (x[0] < y[0] ? -1 : 1)),
    /** @type {Record<string, string[]>} */
    unreachable: Object.fromEntries(
      [...unreachable].filter(([, v]) => v !== undefined && v.length > 0),
    ),
  };
}

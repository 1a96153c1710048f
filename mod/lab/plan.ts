/**
 * The pure part of the lab: names of namespaces and interfaces, the subnet and the node
 * addresses, partitions as sets of directed cuts, and the nftables script of each node.
 * Nothing here runs a command; `net.ts` does.
 *
 * @module
 */

/** A lab prefix: 1–8 lowercase letters or digits, starting with a letter. */
export const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/;

/** Linux limit on an interface name (IFNAMSIZ - 1). */
export const IFNAME_MAX = 15;

/** The pool the lab picks its /24 from: 10.(SUBNET_BASE + k).(j).0/24 — see {@linkcode candidateSubnets}. */
export const SUBNET_POOL = "10.200.0.0/13";

/** The first host number given to a node (x.y.z.10); the bridge is x.y.z.1. */
export const FIRST_NODE_HOST = 10;

/** Most nodes one lab holds (hosts .10 … .249). */
export const MAX_NODES = 240;

/** The nftables table the lab owns in each node namespace. */
export const NFT_TABLE = "peerd_lab";

/** A bad lab argument (exit code 2). */
export class LabUsageError extends Error {
  /** Always 2. */
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = "LabUsageError";
  }
}

/** Throws {@linkcode LabUsageError} unless `prefix` matches {@linkcode PREFIX_RE}. */
export function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) {
    throw new LabUsageError(
      `Cannot use lab prefix "${prefix}": it must be 1-8 lowercase letters or digits, starting with a letter`,
    );
  }
  return prefix;
}

/** The names of one node's namespace and veth pair. */
export interface NodeNames {
  /** The node. */
  node: string;
  /** Index in the lab (0-based). */
  index: number;
  /** Network namespace name (`peerd-<prefix>-<node>`). */
  netns: string;
  /** The veth end on the bridge, in the root namespace (`<prefix>-h<i>`). */
  hostVeth: string;
  /** The veth end before it moves into the namespace (`<prefix>-n<i>`, renamed `eth0` there). */
  peerVeth: string;
  /** The node's IPv4 address. */
  ip: string;
}

/** The whole plan of a lab: bridge, subnet and every node's names and address. */
export interface LabPlan {
  /** The prefix every name carries. */
  prefix: string;
  /** The bridge in the root namespace (`<prefix>-br`). */
  bridge: string;
  /** The /24, e.g. `10.203.17.0/24`. */
  subnet: string;
  /** The bridge's own address (x.y.z.1): the host side of the lab. */
  bridgeIp: string;
  /** Per node, in order. */
  nodes: NodeNames[];
}

const NODE_NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Plans the names and addresses of a lab with `nodes` on `subnet` (a `/24` like `10.203.17.0/24`). */
export function planLab(prefix: string, nodes: readonly string[], subnet: string): LabPlan {
  checkPrefix(prefix);
  const base = subnetBase(subnet);
  if (nodes.length === 0) throw new LabUsageError("Cannot plan a lab: no nodes");
  if (nodes.length > MAX_NODES) {
    throw new LabUsageError(`Cannot plan a lab: ${nodes.length} nodes, at most ${MAX_NODES}`);
  }
  const seen = new Set<string>();
  const planned = nodes.map((node, index) => {
    if (!NODE_NAME_RE.test(node)) {
      throw new LabUsageError(`Cannot plan a lab: bad node name "${node}"`);
    }
    if (seen.has(node)) throw new LabUsageError(`Cannot plan a lab: duplicate node "${node}"`);
    seen.add(node);
    const names: NodeNames = {
      node,
      index,
      netns: `peerd-${prefix}-${node}`,
      hostVeth: `${prefix}-h${index}`,
      peerVeth: `${prefix}-n${index}`,
      ip: `${base}.${FIRST_NODE_HOST + index}`,
    };
    for (const ifname of [names.hostVeth, names.peerVeth]) {
      if (ifname.length > IFNAME_MAX) throw new Error(`interface name too long: ${ifname}`);
    }
    return names;
  });
  return { prefix, bridge: `${prefix}-br`, subnet, bridgeIp: `${base}.1`, nodes: planned };
}

function subnetBase(subnet: string): string {
  const m = /^10\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(subnet);
  if (!m || Number(m[1]) > 255 || Number(m[2]) > 255) {
    throw new LabUsageError(`Cannot use subnet "${subnet}": expected 10.X.Y.0/24`);
  }
  return `10.${m[1]}.${m[2]}`;
}

/** FNV-1a of `text`, 32 bits: where a prefix starts its search of the pool. */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The /24 subnets of {@linkcode SUBNET_POOL} (10.200.0.0 – 10.207.255.0) in the order a lab
 * with `prefix` tries them: from a start given by the prefix's hash, so labs of different
 * prefixes usually take different subnets at the first try. `count` bounds the list.
 */
export function candidateSubnets(prefix: string, count = 64): string[] {
  const size = 8 * 256;
  const start = hashText(prefix) % size;
  const out: string[] = [];
  for (let k = 0; k < Math.min(count, size); k++) {
    const n = (start + k * 97) % size; // 97 is coprime with 2048: a permutation of the pool
    out.push(`10.${200 + (n >> 8)}.${n & 255}.0/24`);
  }
  return out;
}

/** Parses `a.b.c.d` into a 32-bit number, or undefined. */
export function ipv4ToNumber(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

/** Whether the IPv4 networks `a` and `b` (`x.y.z.w/len`) overlap. */
export function cidrsOverlap(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  if (!pa || !pb) return false;
  const len = Math.min(pa.len, pb.len);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((pa.addr & mask) >>> 0) === ((pb.addr & mask) >>> 0);
}

function parseCidr(cidr: string): { addr: number; len: number } | undefined {
  const [ip, lenText] = cidr.split("/");
  const addr = ipv4ToNumber(ip);
  const len = lenText === undefined ? 32 : Number(lenText);
  if (addr === undefined || !Number.isInteger(len) || len < 0 || len > 32) return undefined;
  return { addr, len };
}

/** The first candidate subnet of `prefix` that overlaps none of `used` (CIDRs in use on the host). */
export function chooseSubnet(
  prefix: string,
  used: readonly string[],
  skip: readonly string[] = [],
): string {
  for (const subnet of candidateSubnets(prefix)) {
    if (skip.includes(subnet)) continue;
    if (used.some((u) => cidrsOverlap(u, subnet))) continue;
    return subnet;
  }
  throw new Error(`Cannot start a lab: no free /24 in ${SUBNET_POOL} after 64 tries`);
}

/** A directed cut: packets from `from` to `to` are dropped (at `to`'s input). */
export interface Cut {
  /** Sender whose packets are dropped. */
  from: string;
  /** Receiver that drops them. */
  to: string;
}

/** The key of a cut, `from>to`. */
export function cutKey(cut: Cut): string {
  return `${cut.from}>${cut.to}`;
}

/**
 * The cuts of a partition into `groups` (each a list of node names): every pair of nodes
 * in different groups, both ways. Nodes named in no group keep every link. Throws
 * {@linkcode LabUsageError} on an unknown name, a node in two groups, or fewer than two groups.
 */
export function partitionCuts(
  groups: readonly (readonly string[])[],
  known: readonly string[],
): Cut[] {
  if (groups.length < 2) {
    throw new LabUsageError("Cannot partition: give at least two groups (A,B C,D)");
  }
  const groupOf = new Map<string, number>();
  groups.forEach((group, i) => {
    if (group.length === 0) throw new LabUsageError("Cannot partition: an empty group");
    for (const node of group) {
      checkKnown(node, known, "partition");
      if (groupOf.has(node)) {
        throw new LabUsageError(`Cannot partition: ${node} is in two groups`);
      }
      groupOf.set(node, i);
    }
  });
  const cuts: Cut[] = [];
  for (const [a, ga] of groupOf) {
    for (const [b, gb] of groupOf) if (ga !== gb) cuts.push({ from: a, to: b });
  }
  return sortCuts(cuts);
}

/** Parses command-line groups `A,B` `C,D,E` into lists of names. */
export function parseGroups(words: readonly string[]): string[][] {
  return words.map((w) => w.split(",").map((s) => s.trim()).filter((s) => s.length > 0));
}

/** The cuts that isolate `node` from every other of `known`, both ways. */
export function isolateCuts(node: string, known: readonly string[]): Cut[] {
  checkKnown(node, known, "isolate");
  const others = known.filter((n) => n !== node);
  if (others.length === 0) throw new LabUsageError(`Cannot isolate ${node}: it is the only node`);
  return partitionCuts([[node], others], known);
}

/** The one cut `from → to`, checked. */
export function onewayCut(from: string, to: string, known: readonly string[]): Cut {
  checkKnown(from, known, "cut");
  checkKnown(to, known, "cut");
  if (from === to) throw new LabUsageError(`Cannot cut ${from} from itself`);
  return { from, to };
}

function checkKnown(node: string, known: readonly string[], what: string): void {
  if (!known.includes(node)) {
    throw new LabUsageError(
      `Cannot ${what}: unknown node "${node}"; nodes are ${known.join(", ")}`,
    );
  }
}

/** `cuts` without duplicates, sorted by key. */
export function sortCuts(cuts: readonly Cut[]): Cut[] {
  const byKey = new Map(cuts.map((c) => [cutKey(c), c]));
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

/** `a ∪ b` as a sorted, duplicate-free list. */
export function addCuts(a: readonly Cut[], b: readonly Cut[]): Cut[] {
  return sortCuts([...a, ...b]);
}

/**
 * The nftables script that makes `node`'s namespace drop every packet from the senders
 * that `cuts` cut towards it: one atomic transaction that (re)creates table
 * {@linkcode NFT_TABLE} with one input chain. With no cuts, the table is empty (accept all).
 */
export function nftScript(
  node: string,
  cuts: readonly Cut[],
  ipOf: (node: string) => string,
): string {
  const sources = [...new Set(cuts.filter((c) => c.to === node).map((c) => ipOf(c.from)))].sort();
  const lines = [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    `  chain input {`,
    `    type filter hook input priority -10; policy accept;`,
  ];
  if (sources.length > 0) lines.push(`    ip saddr { ${sources.join(", ")} } drop`);
  lines.push(`  }`, `}`);
  return lines.join("\n") + "\n";
}

/**
 * Replaces `{addr:NAME}` with `ip:port` of NAME, `{ip:NAME}` with its IP and `{dir}` with the
 * lab folder in one argument. Throws {@linkcode LabUsageError} on an unknown name.
 */
export function expandArg(
  arg: string,
  lookup: { address(node: string): string; ip(node: string): string; dir: string },
): string {
  return arg.replace(/\{(addr|ip):([^}]+)\}|\{dir\}/g, (whole, kind, name) => {
    if (whole === "{dir}") return lookup.dir;
    return kind === "addr" ? lookup.address(name) : lookup.ip(name);
  });
}

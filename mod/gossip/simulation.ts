/**
 * Simulated dissemination of one rumor through N {@linkcode GossipNode}s on a
 * {@linkcode VirtualNetwork} in synchronous rounds: seeded, with message loss, and measured
 * against the push-gossip bound log2 N + ln N.
 *
 * @module
 */
import { VirtualNetwork } from "./memory_network.ts";
import { GossipNode, type PeerRef, type StopRule } from "./node.ts";
import { seededRandom } from "../random/mod.ts";

/** Options of {@linkcode simulate}. */
export interface SimulationOptions {
  /** Number of nodes. */
  nodes: number;
  /** Rumor fanout. @default {3} */
  fanout?: number;
  /** Stop rule: a node receiving a known rumor stops spreading it with probability 1/k. @default {5} */
  k?: number;
  /** Stop rule. @default {"coin"} */
  stopRule?: StopRule;
  /** Message loss probability. @default {0} */
  loss?: number;
  /** Seed of all randomness. @default {1} */
  seed?: number;
  /** Mean rounds between one node's anti-entropy exchanges (0: rumor mongering alone). @default {5} */
  antiEntropyEvery?: number;
  /** Give up after this many rounds. @default {500} */
  maxRounds?: number;
  /** Share of nodes (never the writer) crashed before the write; they get nothing. @default {0} */
  crash?: number;
  /**
   * Run SWIM too: every node keeps its own member table, joins through node s0 before the
   * write, and probes (one probe every 2 rounds). Costs O(N²) memory: meant for N ≤ 2,000.
   * @default {false}
   */
  swim?: boolean;
  /** Measure frame bytes (slower). @default {false} */
  measureBytes?: boolean;
  /** Cancels the run between rounds. */
  signal?: AbortSignal;
}

/** What a simulation measured. */
export interface SimulationResult {
  nodes: number;
  fanout: number;
  k: number;
  stopRule: StopRule;
  loss: number;
  seed: number;
  antiEntropyEvery: number;
  /** Nodes crashed before the write. */
  crashed: number;
  /** Whether SWIM membership ran. */
  swim: boolean;
  /** With SWIM: rounds until every node knew of every other (before the write). */
  joinRounds?: number;
  /** First round after which every live node knew the rumor; null if it never happened. */
  roundsToFullCoverage: number | null;
  /** log2 N + ln N, the expected rounds of push gossip (fanout 1). */
  theoreticalRounds: number;
  /** Live nodes that knew the rumor after each round (index 0 = after the write). */
  coverageByRound: number[];
  /** Messages sent (all kinds) up to full coverage, per live node. */
  messagesPerNode: number;
  /** Rumor pushes sent up to full coverage, per node. */
  rumorMessagesPerNode: number;
  /** Messages sent until no node spread the rumor any more, per node. */
  messagesPerNodeUntilQuiet: number;
  /** Round at which the last node stopped spreading (null if still spreading at the end). */
  quietRound: number | null;
  /** Nodes that learned the rumor through pushes (not anti-entropy). */
  learnedByRumor: number;
  /** Frame bytes sent per node per round up to full coverage (when measured). */
  bytesPerNodePerRound?: number;
  /** Wall-clock milliseconds the run took. */
  elapsedMs: number;
}

const ROUND_MS = 1000;

function knownMembers(node: GossipNode): number {
  const c = node.memberCounts();
  return c.alive + c.suspect + c.dead;
}

/** Runs one simulation; the same options give the same result. */
export function simulate(options: SimulationOptions): SimulationResult {
  const n = options.nodes;
  const fanout = options.fanout ?? 3;
  const k = options.k ?? 5;
  const loss = options.loss ?? 0;
  const seed = options.seed ?? 1;
  const aeEvery = options.antiEntropyEvery ?? 5;
  const maxRounds = options.maxRounds ?? 500;
  const t0 = performance.now();
  const random = seededRandom(seed);
  const net = new VirtualNetwork({
    random: seededRandom(seed ^ 0x5bd1e995),
    loss,
    measureBytes: options.measureBytes,
  });
  const peers: PeerRef[] = Array.from({ length: n }, (_, i) => ({ name: `s${i}`, addr: `s${i}` }));
  const swim = options.swim ?? false;
  let covered = 1;
  let byRumor = 0;
  const nodes = peers.map((p) => {
    const node = new GossipNode({
      name: p.name,
      addr: p.addr,
      transport: net.transport(),
      random,
      fanout,
      k,
      stopRule: options.stopRule,
      gossipIntervalMs: ROUND_MS,
      antiEntropyIntervalMs: aeEvery > 0 ? aeEvery * ROUND_MS : Number.MAX_SAFE_INTEGER,
      ...(swim
        ? {
          seeds: p.name === "s0" ? [] : ["s0"],
          probeIntervalMs: 2 * ROUND_MS,
          probeTimeoutMs: ROUND_MS / 2,
          suspectTimeoutMs: 6 * ROUND_MS,
        }
        : { probeIntervalMs: 0, staticPeers: peers }),
      emit: (ev, fields) => {
        if (ev !== "rumor.learned") return;
        covered++;
        if (fields.via === "rumor") byRumor++;
      },
    });
    net.attach(p.addr, node);
    return node;
  });
  for (const node of nodes) node.start(0);
  // with SWIM, everyone first joins through s0 and learns the whole membership
  let start = 0;
  let joinRounds: number | undefined;
  if (swim) {
    for (let round = 1; round <= maxRounds && !options.signal?.aborted; round++) {
      start = round * ROUND_MS;
      for (const node of nodes) node.tick(start);
      net.deliver(start);
      if (round % 2 === 0 && nodes.every((x) => knownMembers(x) === n)) {
        joinRounds = round;
        break;
      }
    }
  }
  const sentBefore = net.stats.sent;
  const bytesBefore = net.stats.bytes;
  // crash a seeded random share of the nodes (never the writer, s0)
  const crashed = Math.min(n - 1, Math.round((options.crash ?? 0) * n));
  const down = new Set<number>();
  while (down.size < crashed) down.add(1 + Math.floor(random() * (n - 1)));
  for (const i of down) net.setDown(peers[i].addr, true);
  const live = n - crashed;
  nodes[0].spread("rumor", "hello");
  const coverage = [covered];
  let full: number | null = covered === live ? 0 : null;
  let sentAtFull = 0;
  let rumorsAtFull = 0;
  let bytesAtFull = 0;
  let quiet: number | null = null;
  const rumorSent = () => nodes.reduce((s, x) => s + (x.stats.sent["g.rumor"] ?? 0), 0);
  for (let round = 1; round <= maxRounds && !options.signal?.aborted; round++) {
    const now = start + round * ROUND_MS;
    for (let i = 0; i < n; i++) if (!down.has(i)) nodes[i].tick(now);
    net.deliver(now);
    coverage.push(covered);
    if (full === null && covered === live) {
      full = round;
      sentAtFull = net.stats.sent - sentBefore;
      rumorsAtFull = rumorSent();
      bytesAtFull = net.stats.bytes - bytesBefore;
    }
    if (quiet === null && nodes.every((x, i) => down.has(i) || x.hotCount === 0)) quiet = round;
    if (full !== null && quiet !== null) break;
  }
  const result: SimulationResult = {
    nodes: n,
    fanout,
    k,
    stopRule: options.stopRule ?? "coin",
    loss,
    seed,
    antiEntropyEvery: aeEvery,
    crashed,
    swim,
    ...(joinRounds === undefined ? {} : { joinRounds }),
    roundsToFullCoverage: full,
    theoreticalRounds: Math.log2(n) + Math.log(n),
    coverageByRound: coverage,
    messagesPerNode: (full === null ? net.stats.sent - sentBefore : sentAtFull) / live,
    rumorMessagesPerNode: (full === null ? rumorSent() : rumorsAtFull) / live,
    messagesPerNodeUntilQuiet: (net.stats.sent - sentBefore) / live,
    quietRound: quiet,
    learnedByRumor: byRumor,
    elapsedMs: performance.now() - t0,
  };
  if (options.measureBytes && full !== null && full > 0) {
    result.bytesPerNodePerRound = bytesAtFull / live / full;
  }
  return result;
}

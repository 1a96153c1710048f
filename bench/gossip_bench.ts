/**
 * Gossip benchmark: time and rounds to full coverage for 5, 20 and 50 real processes;
 * simulated rounds for 1,000 and 10,000 nodes with 0% and 20% loss beside log2 N + ln N;
 * bytes sent per node per round. One JSON line per figure on stdout.
 *
 *     deno run -A bench/gossip_bench.ts [--quick]
 *
 * @module
 */
import {
  type ClusterNode,
  LocalCluster,
  type LocalClusterOptions,
  pause,
} from "../mod/harness/mod.ts";
import { simulate } from "../mod/gossip/mod.ts";

const quick = Deno.args.includes("--quick");
const GOSSIP_MS = 100;
const ARGS = [
  "--gossip-interval",
  String(GOSSIP_MS),
  "--anti-entropy-interval",
  "1000",
  "--probe-interval",
  "500",
  "--probe-timeout",
  "200",
  "--suspect-timeout",
  "4000",
];

function emit(figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  console.log(JSON.stringify({ bench: "gossip", figure, value: round(value), unit, ...extra }));
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** LocalCluster.start, retried when another process took a port between pick and listen. */
async function startCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  for (let attempt = 1;; attempt++) {
    try {
      return await LocalCluster.start(options);
    } catch (err) {
      if (attempt >= 3 || !/address in use/.test(String(err))) throw err;
    }
  }
}

async function sumBytes(nodes: ClusterNode[]): Promise<number> {
  const st = await Promise.all(nodes.map((n) => n.ctl("status")));
  return st.reduce((s, x) => s + Number(x.bytes_sent), 0);
}

async function processes(n: number, reps: number): Promise<void> {
  const t0 = performance.now();
  await using cluster = await startCluster({
    nodes: Array.from({ length: n }, (_, i) => ({ name: `g${i + 1}`, role: "gossip", args: ARGS })),
    readyTimeoutMs: 60_000,
    logLevel: "warn",
  });
  const nodes = cluster.nodes;
  for (let i = 0; i < 600; i++) {
    const st = await Promise.all(nodes.map((x) => x.ctl("status")));
    if (st.every((s) => (s.members as { alive: number }).alive === n)) break;
    await pause(100);
  }
  const startMs = performance.now() - t0;
  // background traffic (SWIM probes + anti-entropy), nothing hot
  const idleWindow = 2_000;
  const b0 = await sumBytes(nodes);
  await pause(idleWindow);
  const b1 = await sumBytes(nodes);
  const idlePerNodeRound = (b1 - b0) / n / (idleWindow / GOSSIP_MS);
  const times: number[] = [];
  const rounds: number[] = [];
  const hops: number[] = [];
  const w0 = performance.now();
  const bytesBefore = await sumBytes(nodes);
  for (let r = 0; r < reps; r++) {
    const origin = nodes[(r * 7) % n];
    const others = nodes.filter((x) => x !== origin);
    const marks = others.map((x) => x.mark());
    const key = `bench-${r}`;
    const om = origin.mark();
    await origin.ctl("spread", [key, `value ${r}`]);
    const spread = await origin.waitForEvent((e) => e.ev === "rumor.spread" && e.key === key, {
      from: om,
    });
    const learned = await Promise.all(
      others.map((x, i) =>
        x.waitForEvent((e) => e.ev === "rumor.learned" && e.key === key, {
          timeoutMs: 30_000,
          from: marks[i],
        })
      ),
    );
    const last = Math.max(...learned.map((e) => e.ts));
    const ms = last - spread.ts;
    times.push(ms);
    rounds.push(Math.ceil(ms / GOSSIP_MS));
    hops.push(Math.max(...learned.map((e) => Number(e.hops))));
  }
  // let the rumors die down, then count what the whole dissemination cost
  for (let i = 0; i < 100; i++) {
    const st = await Promise.all(nodes.map((x) => x.ctl("status")));
    if (st.every((s) => s.hot === 0)) break;
    await pause(100);
  }
  const bytesAfter = await sumBytes(nodes);
  const windowRounds = (performance.now() - w0) / GOSSIP_MS;
  const bound = Math.log2(n) + Math.log(n);
  const common = { processes: n, reps, gossip_interval_ms: GOSSIP_MS, fanout: 3 };
  emit("coverage_time", median(times), "ms", { ...common, max: round(Math.max(...times)) });
  emit("coverage_rounds", median(rounds), "rounds", {
    ...common,
    max: Math.max(...rounds),
    bound: round(bound),
    target: round(bound + 2),
    target_met: Math.max(...rounds) <= bound + 2,
    median_max_hops: median(hops),
  });
  emit("bytes_per_node_per_round", (bytesAfter - bytesBefore) / n / windowRounds, "bytes", {
    ...common,
    while: "spreading (rumors, anti-entropy, SWIM)",
  });
  emit("idle_bytes_per_node_per_round", idlePerNodeRound, "bytes", {
    ...common,
    while: "idle (anti-entropy digests, SWIM probes)",
  });
  console.error(
    `gossip bench: ${n} processes done in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s (start ${(startMs / 1000).toFixed(1)} s)`,
  );
}

const deadline = AbortSignal.timeout(110_000);
for (const n of quick ? [5, 20] : [5, 20, 50]) {
  if (deadline.aborted) break;
  await processes(n, n >= 50 ? 3 : 5);
}
const SIM_CASES: { nodes: number; loss: number; crash: number }[] = [
  { nodes: 1_000, loss: 0, crash: 0 },
  { nodes: 1_000, loss: 0.2, crash: 0 },
  { nodes: 10_000, loss: 0, crash: 0 },
  { nodes: 10_000, loss: 0.2, crash: 0 },
  { nodes: 10_000, loss: 0, crash: 0.3 },
];
for (const { nodes, loss, crash } of SIM_CASES) {
  const seeds = quick || nodes > 1000 ? [1, 2, 3] : [1, 2, 3, 4, 5];
  const runs = seeds.map((seed) =>
    simulate({ nodes, loss, crash, seed, fanout: 3, measureBytes: true })
  );
  const full = runs.map((r) => r.roundsToFullCoverage ?? Infinity);
  const bound = runs[0].theoreticalRounds;
  const clean = loss === 0 && crash === 0;
  const tag = { nodes, loss, crash };
  emit("sim_rounds_to_full_coverage", median(full), "rounds", {
    ...tag,
    fanout: 3,
    k: 5,
    seeds: seeds.length,
    max: Math.max(...full),
    bound: round(bound),
    target: round(bound + 2),
    ...(clean ? { target_met: Math.max(...full) <= bound + 2 } : {}),
  });
  emit("sim_messages_per_node", median(runs.map((r) => r.messagesPerNode)), "messages", {
    ...tag,
    rumor_pushes: round(median(runs.map((r) => r.rumorMessagesPerNode))),
    until_quiet: round(median(runs.map((r) => r.messagesPerNodeUntilQuiet))),
  });
  emit(
    "sim_bytes_per_node_per_round",
    median(runs.map((r) => r.bytesPerNodePerRound ?? 0)),
    "bytes",
    tag,
  );
}

/**
 * Multicast benchmark: 3 and 5 real processes all sending. Figures: ordered deliveries per
 * second per node at saturation (median over nodes), then delivery latency p50/p99
 * (send event at the sender → delivered event at each node) at 10% of that rate.
 *
 * Run: `deno run -A bench/multicast_bench.ts` (or `deno task bench multicast`).
 *
 * @module
 */
import { LocalCluster, pause } from "../mod/harness/mod.ts";

const WARMUP_MS = 1_500;
const WINDOW_MS = 4_000;
const LATENCY_WINDOW_MS = 4_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function figure(figure: string, value: number, unit: string, extra: Record<string, unknown>) {
  console.log(
    JSON.stringify({
      bench: "multicast",
      figure,
      value: Math.round(value * 100) / 100,
      unit,
      ...extra,
    }),
  );
}

async function startGroup(n: number, rate: number): Promise<LocalCluster> {
  const cluster = await LocalCluster.start({
    nodes: Array.from({ length: n }, (_, i) => ({
      name: `m${i + 1}`,
      role: "multicast",
      args: ["--generate", String(rate), "--quiet", "--fail-timeout-ms", "5000"],
    })),
    logLevel: "warn",
  });
  const deadline = performance.now() + 15_000;
  while (!cluster.nodes.every((node) => node.events().some((e) => e.ev === "view.changed"))) {
    if (performance.now() > deadline) throw new Error("group did not form");
    await pause(50);
  }
  return cluster;
}

async function deliveredCounts(cluster: LocalCluster): Promise<number[]> {
  return await Promise.all(
    cluster.nodes.map(async (n) => Number((await n.ctl("status")).delivered)),
  );
}

async function throughput(n: number): Promise<number> {
  await using cluster = await startGroup(n, 50_000);
  await pause(WARMUP_MS);
  const t1 = performance.now();
  const c1 = await deliveredCounts(cluster);
  await pause(WINDOW_MS);
  const c2 = await deliveredCounts(cluster);
  const secs = (performance.now() - t1) / 1000;
  const rates = c2.map((c, i) => (c - c1[i]) / secs);
  const statuses = await Promise.all(cluster.nodes.map((node) => node.ctl("status")));
  const views = new Set(statuses.map((s) => s.view));
  figure(`deliveries_per_s_per_node_${n}_nodes`, median(rates), "msg/s", {
    nodes: n,
    min: Math.round(Math.min(...rates)),
    max: Math.round(Math.max(...rates)),
    window_s: Math.round(secs * 10) / 10,
    views: views.size,
    target: n === 3 ? ">= 10000" : undefined,
  });
  return median(rates);
}

async function latency(n: number, totalRate: number): Promise<void> {
  const perNode = Math.max(1, totalRate / n);
  await using cluster = await startGroup(n, perNode);
  await pause(WARMUP_MS);
  const from = cluster.nodes.map((node) => node.mark());
  await pause(LATENCY_WINDOW_MS);
  const sentAt = new Map<string, number>();
  for (const [i, node] of cluster.nodes.entries()) {
    for (const e of node.events().slice(from[i])) {
      if (e.ev === "mc.sent") sentAt.set(String(e.id), e.ts);
    }
  }
  const lat: number[] = [];
  for (const [i, node] of cluster.nodes.entries()) {
    for (const e of node.events().slice(from[i])) {
      if (e.ev !== "mc.delivered") continue;
      const t = sentAt.get(String(e.id));
      if (t !== undefined) lat.push(e.ts - t);
    }
  }
  lat.sort((a, b) => a - b);
  const extra = { nodes: n, offered_msg_s: Math.round(perNode * n), samples: lat.length };
  figure(`latency_p50_${n}_nodes`, quantile(lat, 0.5), "ms", extra);
  figure(`latency_p99_${n}_nodes`, quantile(lat, 0.99), "ms", { ...extra, target: "<= 10" });
}

for (const n of [3, 5]) {
  const rate = await throughput(n);
  await latency(n, Math.max(10, rate * 0.1));
}

/**
 * Ratings benchmark: 3 replica managers and 1 front end as real processes on loopback
 * (default synthetic MovieLens-small dataset, gossip every 200 ms).
 *
 * 1. Throughput: many concurrent clients (users) pipelined over a few connections to the
 *    FE, 90% queries (average/get) / 10% updates, each client carrying its timestamp;
 *    requests/s with p50/p99 latency. Target ≥ 30,000 req/s.
 * 2. Propagation: updates with no queries running; time from the client sending the update
 *    until every RM has applied it (from the RMs' `rm.update` events), p50/p99.
 *    Target p99 ≤ 2 gossip intervals.
 *
 * Run: `deno run -A bench/ratings_bench.ts [--seconds 8] [--connections 8] [--window 96]`
 *
 * @module
 */
import { LocalCluster, pause } from "../mod/harness/mod.ts";
import { PeerLink } from "../mod/ratings/peer_link.ts";
import { generateDataset } from "../mod/ratings/mod.ts";
import { mergeInto, parseVectorTs, type VectorTs } from "../mod/ratings/vector_ts.ts";
import type { Message } from "../mod/wire/mod.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

const SECONDS = arg("seconds", 8);
const CONNECTIONS = arg("connections", 8);
const WINDOW = arg("window", 96);
const GOSSIP_MS = arg("gossip", 200);
const PROPAGATION_UPDATES = arg("updates", 150);

function emit(figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  console.log(JSON.stringify({ bench: "ratings", figure, value, unit, ...extra }));
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// The same data the RMs generate for themselves (seed 42): pick (user, movie) pairs that exist.
const data = generateDataset();
const pairs = data.ratings.map((r) => [r.user, r.movie] as const);
const movieIds = data.movies.map((m) => m.id);

const rmArgs = ["--gossip-interval", String(GOSSIP_MS)];
const t0 = performance.now();
await using cluster = await LocalCluster.start({
  nodes: [
    { name: "rm1", role: "replica", args: rmArgs },
    { name: "rm2", role: "replica", args: rmArgs },
    { name: "rm3", role: "replica", args: rmArgs },
    { name: "fe1", role: "frontend" },
  ],
  logLevel: "warn",
  readyTimeoutMs: 60_000,
});
emit("cluster_start_with_100k_ratings", Math.round(performance.now() - t0), "ms", {
  note: "3 RMs each generate and load the default dataset into SQLite, plus 1 FE",
});
const fe = cluster.node("fe1");
for (let i = 0; i < 200; i++) {
  const st = await fe.ctl("status");
  if ((st.rms as Message[]).every((r) => r.status === "ACTIVE")) break;
  await pause(50);
}

const links = Array.from(
  { length: CONNECTIONS },
  (_, i) =>
    new PeerLink("127.0.0.1", fe.port, { role: "client", name: `bench${i}`, timeoutMs: 30_000 }),
);
const users = new Map<number, VectorTs>();
let rnd = 12345;
const rand = () => {
  rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
  return rnd / 0x7fffffff;
};

function nextRequest(): Message {
  const [user, movie] = pairs[Math.floor(rand() * pairs.length)];
  const prev = users.get(user) ?? {};
  const x = rand();
  if (x < 0.1) {
    return {
      t: "ratings.update",
      kind: "update",
      user,
      movie,
      rating: 0.5 + Math.floor(rand() * 10) * 0.5,
      uid: crypto.randomUUID(),
      prev,
    };
  }
  if (x < 0.55) {
    return {
      t: "ratings.query",
      q: "average",
      user,
      movie: movieIds[Math.floor(rand() * movieIds.length)],
      prev,
    };
  }
  return { t: "ratings.query", q: "get", user, movie, prev };
}

// ── 1. throughput ──
const latencies: number[] = [];
const updateLatencies: number[] = [];
let done = 0;
let errors = 0;
let measuring = false;
const stopAt = performance.now() + 2_000 + SECONDS * 1000;
const measureFrom = performance.now() + 2_000;
let measuredStart = 0;
async function worker(link: PeerLink): Promise<void> {
  while (performance.now() < stopAt) {
    const msg = nextRequest();
    const start = performance.now();
    try {
      const reply = await link.request(msg, 30_000);
      const ts = parseVectorTs(reply.ts);
      const user = msg.user as number;
      if (ts) {
        let kept = users.get(user);
        if (!kept) users.set(user, kept = {});
        mergeInto(kept, ts);
      }
      if (!measuring && performance.now() >= measureFrom) {
        measuring = true;
        measuredStart = performance.now();
        latencies.length = 0;
        updateLatencies.length = 0;
        done = 0;
      }
      latencies.push(performance.now() - start);
      if (msg.t === "ratings.update") updateLatencies.push(performance.now() - start);
      done++;
    } catch {
      errors++;
    }
  }
}
await Promise.all(links.flatMap((link) => Array.from({ length: WINDOW }, () => worker(link))));
const elapsed = (performance.now() - measuredStart) / 1000;
latencies.sort((a, b) => a - b);
updateLatencies.sort((a, b) => a - b);
const rps = done / elapsed;
const concurrency = CONNECTIONS * WINDOW;
emit("throughput_90q_10u", Math.round(rps), "req/s", {
  target: 30_000,
  met: rps >= 30_000,
  clients_in_flight: concurrency,
  connections: CONNECTIONS,
  seconds: round(elapsed, 1),
  errors,
});
emit("latency_p50", round(quantile(latencies, 0.5)), "ms", { in_flight: concurrency });
emit("latency_p99", round(quantile(latencies, 0.99)), "ms", { in_flight: concurrency });
emit("update_latency_p50", round(quantile(updateLatencies, 0.5)), "ms", {
  note: "commit + push to f-1 = 1 peer before the ack",
});
emit("update_latency_p99", round(quantile(updateLatencies, 0.99)), "ms");
// a lighter load: one pipelined connection with 8 in flight
{
  const light: number[] = [];
  const link = links[0];
  const until = performance.now() + 3_000;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (performance.now() < until) {
      const s = performance.now();
      await link.request(nextRequest()).catch(() => {});
      light.push(performance.now() - s);
    }
  }));
  light.sort((a, b) => a - b);
  emit("throughput_light_8_in_flight", Math.round(light.length / 3), "req/s");
  emit("latency_light_p50", round(quantile(light, 0.5)), "ms", { in_flight: 8 });
  emit("latency_light_p99", round(quantile(light, 0.99)), "ms", { in_flight: 8 });
}

// ── 2. propagation, no queries ──
await pause(1_000);
const acked = new Map<string, number>();
for (let i = 0; i < PROPAGATION_UPDATES; i++) {
  const [user, movie] = pairs[Math.floor(rand() * pairs.length)];
  const uid = `prop-${i}-${crypto.randomUUID()}`;
  const sent = performance.timeOrigin + performance.now();
  await links[0].request({
    t: "ratings.update",
    kind: "update",
    user,
    movie,
    rating: 0.5 + (i % 10) * 0.5,
    uid,
    prev: users.get(user) ?? {},
  });
  acked.set(uid, sent);
  await pause(5 + rand() * 40);
}
const rmNodes = ["rm1", "rm2", "rm3"].map((n) => cluster.node(n));
const applied = new Map<string, number[]>();
for (let i = 0; i < 100; i++) {
  applied.clear();
  for (const node of rmNodes) {
    for (const e of node.events()) {
      if (e.ev !== "rm.update" || typeof e.id !== "string" || !acked.has(e.id)) continue;
      let list = applied.get(e.id);
      if (!list) applied.set(e.id, list = []);
      list.push(e.ts);
    }
  }
  if ([...applied.values()].filter((l) => l.length >= 3).length === acked.size) break;
  await pause(100);
}
const propagation: number[] = [];
for (const [uid, ack] of acked) {
  const list = applied.get(uid) ?? [];
  if (list.length >= 3) propagation.push(Math.max(0, Math.max(...list) - ack));
}
propagation.sort((a, b) => a - b);
const p99 = quantile(propagation, 0.99);
emit("propagation_p50", round(quantile(propagation, 0.5)), "ms", { gossip_interval_ms: GOSSIP_MS });
emit("propagation_p99", round(p99), "ms", {
  gossip_interval_ms: GOSSIP_MS,
  target: 2 * GOSSIP_MS,
  met: p99 <= 2 * GOSSIP_MS,
  updates: propagation.length,
  of: acked.size,
});
const sums = await Promise.all(rmNodes.map(async (n) => String((await n.ctl("status")).checksum)));
emit("replicas_converged", sums.every((s) => s === sums[0]) ? 1 : 0, "bool", { checksum: sums[0] });
await Promise.all(links.map((l) => l.close()));

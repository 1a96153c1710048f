/**
 * Token ring benchmark: 5 real ring processes on loopback. Figures: idle CPU % per node
 * (from /proc/<pid>/stat over an idle window), lock acquire latency with one requester
 * on an otherwise idle ring (token parked at the requester, and token fetched from the
 * previous requester), acquire latency p50/p99 with every node contending, grants per
 * second and token hops per second when busy; then the lock's unavailability when its holder
 * is cut off: stopped (SIGSTOP, on loopback) and, when the lab can run (root, `ip`, `nft`),
 * isolated by nftables in network namespaces. Both ≈ the lease (default 3 s): the others
 * wait until the last lease the holder could count on has ended.
 *
 * Run: `deno run -A bench/ring_bench.ts` (or `deno task bench ring`).
 *
 * @module
 */
import { type ClusterNode, LocalCluster, pause } from "../mod/harness/mod.ts";
import { Lab, labAvailable } from "../mod/lab/mod.ts";
import { type Message, RpcClient } from "../mod/wire/mod.ts";

const IDLE_WINDOW_MS = Number(Deno.env.get("RING_BENCH_IDLE_MS") ?? 10_000);
const SINGLE_ROUNDS = 300;
const CONTENDED_MS = 6_000;
const CLIENTS_PER_NODE = 2;
const CUT_ROUNDS = Number(Deno.env.get("RING_BENCH_CUT_ROUNDS") ?? 3);
const LEASE_MS = 3_000; // the default

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function figure(figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  console.log(
    JSON.stringify({
      bench: "ring",
      figure,
      value: Math.round(value * 1000) / 1000,
      unit,
      ...extra,
    }),
  );
}

/** CPU seconds (user + system) of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command: state is field 3; utime and stime are fields 14 and 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

async function ctlClient(node: ClusterNode): Promise<RpcClient> {
  return await RpcClient.connect({ hostname: "127.0.0.1", port: node.port }, {
    role: "ctl",
    name: "bench",
  });
}

async function ctl(client: RpcClient, cmd: string, args: string[] = []): Promise<Message> {
  return await client.request({ t: "ctl", cmd, args }, { timeoutMs: 30_000 });
}

async function main(): Promise<void> {
  await using cluster = await LocalCluster.start({
    nodes: Array.from({ length: 5 }, (_, i) => ({ name: `n${i + 1}`, role: "ring" })),
    peersFormat: "txt",
    logLevel: "warn",
  });
  const nodes = cluster.nodes;
  await nodes[0].waitForEvent("token.created", { timeoutMs: 10_000 });
  const clients = await Promise.all(nodes.map((n) => ctlClient(n)));
  try {
    // Idle: nobody asks for the lock.
    await pause(1_000);
    const before = nodes.map((n) => cpuSeconds(n.pid!));
    const t0 = performance.now();
    await pause(IDLE_WINDOW_MS);
    const seconds = (performance.now() - t0) / 1000;
    const idle = nodes.map((n, i) => (100 * (cpuSeconds(n.pid!) - before[i])) / seconds);
    for (const [i, pct] of idle.entries()) {
      figure("idle_cpu_percent", pct, "%", {
        node: nodes[i].name,
        window_s: seconds,
        target: "<= 1",
      });
    }
    figure("idle_cpu_percent_max", Math.max(...idle), "%", { target: "<= 1" });

    // One requester, idle ring: the token parks at the requester after its first lock.
    const one = clients[2];
    await ctl(one, "lock");
    await ctl(one, "unlock");
    const parked: number[] = [];
    for (let i = 0; i < SINGLE_ROUNDS; i++) {
      const s = performance.now();
      await ctl(one, "lock");
      parked.push(performance.now() - s);
      await ctl(one, "unlock");
    }
    figure("acquire_single_parked_p50", quantile(parked, 0.5), "ms", {
      rounds: SINGLE_ROUNDS,
      target: "<= 1",
    });
    figure("acquire_single_parked_p99", quantile(parked, 0.99), "ms", { rounds: SINGLE_ROUNDS });

    // One requester at a time, a different node each time: the token must be fetched.
    const moving: number[] = [];
    for (let i = 0; i < SINGLE_ROUNDS; i++) {
      const c = clients[i % clients.length];
      const s = performance.now();
      await ctl(c, "lock");
      moving.push(performance.now() - s);
      await ctl(c, "unlock");
    }
    figure("acquire_single_fetch_p50", quantile(moving, 0.5), "ms", { rounds: SINGLE_ROUNDS });
    figure("acquire_single_fetch_p99", quantile(moving, 0.99), "ms", { rounds: SINGLE_ROUNDS });

    // Everyone contends.
    const extra = await Promise.all(
      nodes.flatMap((n) => Array.from({ length: CLIENTS_PER_NODE - 1 }, () => ctlClient(n))),
    );
    const all = [...clients, ...extra];
    try {
      const passesBefore = await Promise.all(
        clients.map(async (c) => Number((await ctl(c, "status")).passes)),
      );
      const latencies: number[] = [];
      let grants = 0;
      const start = performance.now();
      const end = start + CONTENDED_MS;
      await Promise.all(all.map(async (c) => {
        while (performance.now() < end) {
          const s = performance.now();
          await ctl(c, "lock");
          latencies.push(performance.now() - s);
          grants++;
          await ctl(c, "unlock");
        }
      }));
      const elapsed = (performance.now() - start) / 1000;
      const passesAfter = await Promise.all(
        clients.map(async (c) => Number((await ctl(c, "status")).passes)),
      );
      const hops = passesAfter.reduce((a, b, i) => a + b - passesBefore[i], 0);
      const ctx = { nodes: 5, clients: all.length, window_s: Math.round(elapsed * 10) / 10 };
      figure("acquire_contended_p50", quantile(latencies, 0.5), "ms", ctx);
      figure("acquire_contended_p99", quantile(latencies, 0.99), "ms", ctx);
      figure("grants_per_s", grants / elapsed, "grants/s", ctx);
      figure("token_hops_per_s", hops / elapsed, "hops/s", ctx);
    } finally {
      await Promise.all(extra.map((c) => c.close()));
    }

    // The holder stops (SIGSTOP): how long until another node holds the lock.
    const stopped: number[] = [];
    for (let round = 0; round < CUT_ROUNDS; round++) {
      const victim = nodes[round % nodes.length];
      const next = clients[(round + 2) % clients.length];
      const held = await ctl(clients[round % nodes.length], "lock");
      const t0 = performance.now();
      Deno.kill(victim.pid!, "SIGSTOP");
      try {
        const got = await ctl(next, "lock", ["--timeout", "30"]);
        stopped.push(performance.now() - t0);
        await ctl(next, "unlock", [String(got.fence)]);
      } finally {
        Deno.kill(victim.pid!, "SIGCONT");
      }
      // The resumed holder finds its lock lost; wait until it says so.
      await victim.waitForEvent((e) => e.ev === "lock.lost" && e.fence === held.fence, {
        timeoutMs: 10_000,
      });
    }
    if (CUT_ROUNDS > 0) {
      figure("unavailable_holder_stopped_ms", quantile(stopped, 0.5), "ms", {
        rounds: CUT_ROUNDS,
        all: stopped.map((x) => Math.round(x)),
        lease_ms: LEASE_MS,
        target: "≈ lease",
      });
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  await isolatedHolder();
}

/** In the lab: the holder's namespace is cut off from the others. */
async function isolatedHolder(): Promise<void> {
  if (CUT_ROUNDS === 0) return;
  const reason = await labAvailable();
  if (reason) {
    console.error(`ring bench: unavailable_holder_isolated_ms skipped: ${reason}`);
    return;
  }
  await using lab = await Lab.up({
    prefix: "rgb",
    peers: Array.from({ length: 5 }, (_, i) => ({ name: `n${i + 1}`, role: "ring", port: 7101 })),
    logLevel: "warn",
  });
  const names = lab.names;
  for (let i = 0; i < 200; i++) {
    const st = await Promise.all(names.map((n) => lab.ctl(n, "status")));
    if (st.every((s) => (s.alive as string[]).length === names.length && Number(s.gen) > 0)) break;
    await pause(100);
  }
  const isolated: number[] = [];
  for (let round = 0; round < CUT_ROUNDS; round++) {
    const victim = names[round % names.length];
    const next = names[(round + 2) % names.length];
    await lab.ctl(victim, "lock", ["--timeout", "30"], { timeoutMs: 35_000 });
    const t0 = performance.now();
    await lab.isolate(victim);
    const got = await lab.ctl(next, "lock", ["--timeout", "30"], { timeoutMs: 35_000 });
    isolated.push(performance.now() - t0);
    await lab.ctl(next, "unlock", [String(got.fence)]);
    await lab.heal();
    // Back to one token, meshed.
    for (let i = 0; i < 200; i++) {
      const st = await Promise.all(names.map((n) => lab.ctl(n, "status")));
      const meshed = st.every((s) => (s.alive as string[]).length === names.length);
      if (meshed && st.filter((s) => s.token === true).length === 1) break;
      await pause(100);
    }
  }
  figure("unavailable_holder_isolated_ms", quantile(isolated, 0.5), "ms", {
    rounds: CUT_ROUNDS,
    all: isolated.map((x) => Math.round(x)),
    lease_ms: LEASE_MS,
    target: "≈ lease",
  });
}

await main();

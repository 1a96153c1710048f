/**
 * MOM benchmark: a real broker and two daemons, 100-byte payloads, applications using
 * `MomClient` as any application does; the publisher on `d1`, its subscribers on `d1` too
 * ("same daemon": the daemon delivers them itself, as in peers-bench) and on `d2` ("across
 * daemons": through the broker).
 *
 * Figures: delivered/s with 1 publisher and 1 and 4 subscribers (batches of 1,000 and a
 * `flush()` per batch, at most 20,000 published-but-not-received, like peers-bench);
 * publish → receive latency p50/p99 (one message in flight, 1 ms pause); broker CPU µs
 * per delivery, and the daemons' (both, summed); broker memory under a slow subscriber (a daemon connection that stops
 * reading while 4×n messages are published: RSS by eighth, its growth over the second
 * half, and the backlog kept in SQLite).
 *
 * `deno run -A bench/mom_bench.ts [--n 100000]` prints one JSON line per figure.
 *
 * @module
 */
import { LocalCluster } from "../mod/harness/mod.ts";
import { MomClient, type MomUser } from "../mod/mom/mod.ts";
import { dial } from "../mod/wire/mod.ts";

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const N = Number(argValue("--n", "100000"));
/** `--only slow` runs just the slow-subscriber figure. */
const ONLY = argValue("--only", "");
const PAYLOAD = new Uint8Array(100).fill(42);

function emit(figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  console.log(
    JSON.stringify({ bench: "mom", figure, value: Math.round(value * 100) / 100, unit, ...extra }),
  );
}

function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in ticks of 10 ms
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function fanout(
  cluster: LocalCluster,
  subs: number,
  n: number,
  topic: string,
  subDaemon: "d1" | "d2",
): Promise<{ total: number; perSubMin: number; brokerUs: number; daemonsUs: number }> {
  const d1 = cluster.node("d1");
  const d2 = cluster.node(subDaemon);
  const pubClient = await MomClient.connect({ hostname: "127.0.0.1", port: d1.port });
  const subClients = await Promise.all(
    Array.from({ length: subs }, () => MomClient.connect({ hostname: "127.0.0.1", port: d2.port })),
  );
  const publisher = await pubClient.create();
  const users: MomUser[] = [];
  for (const c of subClients) {
    const u = await c.create();
    await u.subscribe(topic);
    users.push(u);
  }
  const received = new Array<number>(subs).fill(0);
  const lastAt = new Array<number>(subs).fill(0);
  const warm = Math.min(10_000, n / 10);
  const want = warm + n;
  let wake: (() => void) | undefined;
  const loops = users.map(async (u, i) => {
    const deadline = performance.now() + 100_000;
    while (received[i] < want && performance.now() < deadline) {
      const batch = await u.receiveBatch({ timeout: 1_000 });
      received[i] += batch.length;
      lastAt[i] = performance.now();
      wake?.();
    }
    await u.ack();
  });
  const minReceived = () => Math.min(...received);
  const window = 20_000;
  async function publish(count: number): Promise<void> {
    let flushing: Promise<void> = Promise.resolve();
    for (let sent = 0; sent < count;) {
      const end = Math.min(count, sent + 1_000);
      for (; sent < end; sent++) publisher.publishNoWait(topic, PAYLOAD);
      await flushing;
      flushing = publisher.flush();
      for (let i = 0; i < 100_000 && sentTotal() + sent - minReceived() > window; i++) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    }
    await flushing;
  }
  let base = 0;
  const sentTotal = () => base;
  await publish(warm);
  base = warm;
  while (minReceived() < warm) await new Promise((r) => setTimeout(r, 5));
  const brokerPid = cluster.node("b1").pid!;
  const daemonPids = [cluster.node("d1").pid!, cluster.node("d2").pid!];
  const daemons = () => daemonPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const cpu0 = cpuSeconds(brokerPid);
  const daemons0 = daemons();
  const t0 = performance.now();
  await publish(n);
  await Promise.all(loops);
  const cpu1 = cpuSeconds(brokerPid);
  const daemons1 = daemons();
  const tEnd = Math.max(...lastAt);
  const perSub = lastAt.map((t) => n / ((t - t0) / 1000));
  await publisher.destroy();
  for (const u of users) await u.destroy();
  await pubClient.close();
  for (const c of subClients) await c.close();
  if (minReceived() < want) throw new Error(`fanout ${subs}: received ${received} of ${want}`);
  return {
    total: (subs * n) / ((tEnd - t0) / 1000),
    perSubMin: Math.min(...perSub),
    brokerUs: ((cpu1 - cpu0) * 1e6) / (subs * n),
    daemonsUs: ((daemons1 - daemons0) * 1e6) / (subs * n),
  };
}

async function latency(
  cluster: LocalCluster,
  samples: number,
  subDaemon: "d1" | "d2",
): Promise<number[]> {
  const pubClient = await MomClient.connect({
    hostname: "127.0.0.1",
    port: cluster.node("d1").port,
  });
  const subClient = await MomClient.connect({
    hostname: "127.0.0.1",
    port: cluster.node(subDaemon).port,
  });
  const publisher = await pubClient.create();
  const subscriber = await subClient.create();
  await subscriber.subscribe("lat");
  const out: number[] = [];
  for (let i = 0; i < samples + 200; i++) {
    const t0 = performance.now();
    const got = subscriber.receive({ timeout: 5_000 });
    publisher.publishNoWait("lat", PAYLOAD);
    const m = await got;
    if (!m) throw new Error("latency: message lost");
    if (i >= 200) out.push((performance.now() - t0) * 1000);
    await new Promise((r) => setTimeout(r, 1));
  }
  await subscriber.ack();
  await pubClient.close();
  await subClient.close();
  return out.sort((a, b) => a - b);
}

async function slowSubscriber(cluster: LocalCluster, n: number) {
  const b1 = cluster.node("b1");
  const brokerPid = b1.pid!;
  // a "daemon" that attaches, subscribes one user, then stops reading its socket
  const { conn } = await dial({ hostname: "127.0.0.1", port: b1.port }, {
    role: "daemon",
    name: "slow",
  });
  const ask = async (msg: Record<string, unknown>) => {
    conn.send({ ...msg, t: String(msg.t), rid: 1 });
    const reply = await conn.read();
    if (!reply || reply.t === "error") throw new Error(`slow daemon: ${JSON.stringify(reply)}`);
    return reply;
  };
  await ask({ t: "attach", epoch: "slow", broker: "", acked: 0 });
  const user = (await ask({ t: "user.create" })).user;
  await ask({ t: "sub.add", user, topic: "slow/#" });
  const pubClient = await MomClient.connect({
    hostname: "127.0.0.1",
    port: cluster.node("d1").port,
  });
  const publisher = await pubClient.create();
  const rss0 = rssKiB(brokerPid);
  const quarters: number[] = [];
  const heaps: number[] = [];
  for (let sent = 0; sent < n;) {
    const end = Math.min(n, sent + 1_000);
    for (; sent < end; sent++) publisher.publishNoWait("slow/x", PAYLOAD);
    await publisher.flush();
    if (sent % Math.floor(n / 8) === 0) {
      quarters.push(rssKiB(brokerPid));
      const mem = (await b1.ctl("status")).memory_mib as Record<string, number>;
      heaps.push(mem.heap_used);
    }
  }
  let backlog = 0;
  for (let i = 0; i < 400; i++) {
    const status = await b1.ctl("status");
    backlog = (status.backlog as Record<string, number>).slow ?? 0;
    if (backlog >= n) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  conn.close();
  await pubClient.close();
  return { rss0, quarters, heaps, backlog };
}

/** A broker and daemons `d1`, `d2`, linked. */
async function startCluster(): Promise<LocalCluster> {
  const cluster = await LocalCluster.start({
    nodes: [
      { name: "b1", role: "broker", args: ["--log-level", "warn"] },
      { name: "d1", role: "daemon", args: ["--log-level", "warn"] },
      { name: "d2", role: "daemon", args: ["--log-level", "warn"] },
    ],
  });
  for (const d of ["d1", "d2"]) {
    for (let i = 0; i < 400 && (await cluster.node(d).ctl("status")).link !== "up"; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return cluster;
}

async function stopCluster(cluster: LocalCluster): Promise<void> {
  await cluster.stop();
  await Deno.remove(cluster.dir, { recursive: true }).catch(() => {});
}

if (ONLY !== "slow") {
  const cluster = await startCluster();
  try {
    // subscribers on the publisher's daemon (delivered by the daemon itself, as in
    // peers-bench) and on another daemon (through the broker)
    for (
      const [subDaemon, topology] of [["d1", "same daemon"], ["d2", "across daemons"]] as const
    ) {
      const common = { n: N, size: 100, topology };
      const one = await fanout(cluster, 1, N, `fan1${subDaemon}`, subDaemon);
      emit("fanout_1sub_delivered_per_s", one.total, "msg/s", common);
      const four = await fanout(cluster, 4, N, `fan4${subDaemon}`, subDaemon);
      emit("fanout_4subs_total_delivered_per_s", four.total, "msg/s", common);
      emit("fanout_4subs_per_sub_min_per_s", four.perSubMin, "msg/s", common);
      emit("broker_cpu_us_per_delivery_1sub", one.brokerUs, "µs", { topology });
      emit("broker_cpu_us_per_delivery_4subs", four.brokerUs, "µs", { topology });
      emit("daemons_cpu_us_per_delivery_1sub", one.daemonsUs, "µs", { topology });
      emit("daemons_cpu_us_per_delivery_4subs", four.daemonsUs, "µs", { topology });
      const lat = await latency(cluster, 2_000, subDaemon);
      emit("latency_p50", percentile(lat, 0.5), "µs", { samples: lat.length, topology });
      emit("latency_p99", percentile(lat, 0.99), "µs", { samples: lat.length, topology });
    }
  } finally {
    await stopCluster(cluster);
  }
}

// the slow subscriber with V8's old space capped (DENO_V8_FLAGS, inherited by the nodes):
// without a cap V8 lets garbage pile up to its default limit of gigabytes before a full
// collection, so RSS would say more about the collector than about the broker
const HEAP_CAP_MIB = 64;
Deno.env.set("DENO_V8_FLAGS", `--max-old-space-size=${HEAP_CAP_MIB}`);
const slowCluster = await startCluster();
try {
  const slow = await slowSubscriber(slowCluster, 4 * N);
  const q = slow.quarters.map((k) => Math.round(k / 102.4) / 10);
  // bounded means no growth once the backlog is large: compare the last eighth with the middle
  emit("slow_subscriber_broker_rss_growth_second_half", q[q.length - 1] - q[3], "MiB", {
    v8_old_space_cap_mib: HEAP_CAP_MIB,
    rss_before_mib: Math.round(slow.rss0 / 102.4) / 10,
    rss_by_eighth_mib: q,
    js_heap_used_by_eighth_mib: slow.heaps,
    backlog_in_sqlite: slow.backlog,
    backlog_payload_mib: Math.round((slow.backlog * 100) / 1024 / 102.4) / 10,
  });
} finally {
  await stopCluster(slowCluster);
}

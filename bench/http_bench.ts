/**
 * What `--http` and an attached console cost a role: the same benchmark with HTTP off,
 * then on with `peerd console` attached (its own process: status polled every second, every
 * node's `/events` streamed, as the console asks for them), optionally on with nobody
 * attached (`bare`), alternating in one run, REPS times each, fresh processes every time.
 * Figures, each with its ratio to off: ring grants per second with every node contending
 * (three lock events per grant) and acquire p50; queue persistent publishes confirmed per
 * second and fan-out deliveries per second; multicast deliveries per second per node with
 * every node generating (an `mc.sent` and three `mc.delivered` events per message); MOM
 * deliveries per second from a publisher on one daemon to a subscriber on another (two
 * events per message). Since the machine may be shared, the nodes' CPU time per grant,
 * delivery or message (`/proc/<pid>/stat`) is given too: it is what streaming costs the
 * node itself, whatever else runs.
 *
 * Run: `deno run -A bench/http_bench.ts [--reps 3] [--only ring,queue,multicast,mom]
 * [--modes off,console[,bare]]` (or `deno task bench http`).
 *
 * @module
 */
import { peerdCommand } from "../mod/process/mod.ts";
import { LocalCluster, type NodeSpec } from "../mod/harness/mod.ts";
import { MomClient } from "../mod/mom/mod.ts";
import { QueueClient } from "../mod/queue/mod.ts";
import { RpcClient } from "../mod/wire/mod.ts";

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const REPS = Number(argValue("--reps", "3"));
const RING_MS = Number(argValue("--ring-ms", "4000"));
const QUEUE_N = Number(argValue("--queue-n", "20000"));
const FANOUT_N = Number(argValue("--fanout-n", "50000"));
/** Only these workloads (comma-separated: ring, queue, multicast, mom); all by default. */
const ONLY = argValue("--only", "ring,queue,multicast,mom").split(",");
const MC_WINDOW_MS = Number(argValue("--multicast-ms", "4000"));
const MOM_N = Number(argValue("--mom-n", "30000"));
/**
 * The configurations compared, alternating in one run: `off` (no --http), `console`
 * (--http on, `peerd console` attached: the target) and `bare` (--http on, nobody
 * attached: what the endpoints cost by themselves).
 */
type Mode = "off" | "bare" | "console";
const MODES = argValue("--modes", "off,console").split(",") as Mode[];
for (const m of MODES) {
  if (!["off", "bare", "console"].includes(m)) throw new Error(`--modes: unknown mode ${m}`);
}
const BODY = new Uint8Array(100).fill(42);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function emit(figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  console.log(
    JSON.stringify({
      bench: "http",
      figure,
      value: Math.round(value * 1000) / 1000,
      unit,
      ...extra,
    }),
  );
}

/** `count` distinct free ports (bound together, then released). */
function freePorts(count: number): number[] {
  const ls = Array.from({ length: count }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  try {
    return ls.map((l) => (l.addr as Deno.NetAddr).port);
  } finally {
    for (const l of ls) l.close();
  }
}

/** CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // fields after the command name (which may hold spaces) start at state, field 3
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Linux's USER_HZ: /proc times are in these ticks. */
const CLOCK_TICKS = 100;

/** CPU seconds used by the cluster's node processes and by the console (when attached). */
interface CpuProbe {
  nodes(): number;
  console(): number;
}

/** Starts `nodes` with HTTP and a console attached (`http`), or plain; runs `work`, stops. */
async function withCluster<T>(
  nodes: NodeSpec[],
  mode: Mode,
  work: (cluster: LocalCluster, cpu: CpuProbe) => Promise<T>,
): Promise<T> {
  const ports = freePorts(nodes.length * 2);
  const specs = nodes.map((n, i) => ({
    ...n,
    port: ports[2 * i],
    args: [...(n.args ?? []), "--log-level", "warn"],
    entry: mode === "off" ? {} : { http: `127.0.0.1:${ports[2 * i + 1]}` },
  }));
  await using cluster = await LocalCluster.start({ nodes: specs });
  const nodesCpu = () => cluster.nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0);
  if (mode !== "console") return await work(cluster, { nodes: nodesCpu, console: () => 0 });
  // the console as a user runs it: its own process, polling and streaming every node
  const [port] = freePorts(1);
  const web = peerdCommand(
    ["console", "--peers", cluster.peersPath, "--listen", `127.0.0.1:${port}`],
    { stdin: "null", stdout: "null", stderr: "null" },
  ).spawn();
  try {
    let attached = false;
    for (let i = 0; i < 400 && !attached; i++) {
      try {
        const snap = await fetch(`http://127.0.0.1:${port}/api/snapshot`).then((r) => r.json());
        attached = snap.nodes.every((n: { up: boolean; streaming: boolean }) =>
          n.up && n.streaming
        );
      } catch {
        // not listening yet
      }
      if (!attached) await new Promise((r) => setTimeout(r, 50));
    }
    if (!attached) throw new Error("Cannot attach the console to the cluster within 20 s");
    return await work(cluster, { nodes: nodesCpu, console: () => cpuSeconds(web.pid) });
  } finally {
    web.kill("SIGTERM");
    await web.status;
  }
}

async function ringContended(
  cluster: LocalCluster,
  cpu: CpuProbe,
): Promise<{ grants: number; p50: number; nodeCpuUs: number; consoleCpuUs: number }> {
  const clients = await Promise.all(
    cluster.nodes.map((n) =>
      RpcClient.connect({ hostname: "127.0.0.1", port: n.port }, { role: "ctl", name: "bench" })
    ),
  );
  try {
    // wait for the ring to have a token (a first lock anywhere)
    const first = await clients[0].request({ t: "ctl", cmd: "lock", args: ["20"] }, {
      timeoutMs: 30_000,
    });
    await clients[0].request({ t: "ctl", cmd: "unlock", args: [String(first.fence)] });
    const waits: number[] = [];
    let grants = 0;
    const cpu0 = { nodes: cpu.nodes(), console: cpu.console() };
    const end = performance.now() + RING_MS;
    await Promise.all(clients.map(async (c) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const r = await c.request({ t: "ctl", cmd: "lock", args: ["20"] }, { timeoutMs: 30_000 });
        waits.push(performance.now() - t0);
        grants++;
        await c.request({ t: "ctl", cmd: "unlock", args: [String(r.fence)] });
      }
    }));
    const perGrantUs = (seconds: number) => (seconds * 1e6) / Math.max(grants, 1);
    return {
      grants: grants / (RING_MS / 1000),
      p50: median(waits),
      nodeCpuUs: perGrantUs(cpu.nodes() - cpu0.nodes),
      consoleCpuUs: perGrantUs(cpu.console() - cpu0.console),
    };
  } finally {
    for (const c of clients) await c.close();
  }
}

async function queueConfirmed(cluster: LocalCluster): Promise<number> {
  const ch = await QueueClient.connect(cluster.nodes[0].address, { name: "bench" });
  try {
    await ch.assertQueue("bench.durable", { durable: true });
    await ch.confirmSelect();
    const run = async (n: number) => {
      const window: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        window.push(ch.publishConfirmed("", "bench.durable", BODY, { persistent: true }));
        if (window.length >= 1000) await window.shift();
      }
      await Promise.all(window);
    };
    await run(2_000);
    await ch.purgeQueue("bench.durable");
    const t0 = performance.now();
    await run(QUEUE_N);
    return QUEUE_N / ((performance.now() - t0) / 1000);
  } finally {
    await ch.close();
  }
}

async function queueFanout(cluster: LocalCluster): Promise<number> {
  const address = cluster.nodes[0].address;
  const pub = await QueueClient.connect(address, { name: "bench-pub" });
  const sub = await QueueClient.connect(address, { name: "bench-sub" });
  try {
    await pub.assertExchange("bench.fanout", "fanout", { durable: false });
    const { queue } = await sub.assertQueue("", { durable: false, exclusive: true });
    await sub.bindQueue(queue, "bench.fanout");
    let got = 0;
    let wake: (() => void) | undefined;
    await sub.consume(queue, () => {
      got++;
      if (wake && got % 1000 === 0) wake();
    }, { noAck: true });
    const until = (target: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (got >= target) {
            wake = undefined;
            resolve();
          }
        };
        wake = check;
        check();
      });
    const run = async (n: number) => {
      const base = got;
      let sent = 0;
      while (sent < n) {
        if (sent - (got - base) > 20_000) await until(base + sent - 20_000);
        const batch = Math.min(1000, n - sent);
        for (let i = 0; i < batch; i++) pub.publish("bench.fanout", "", BODY);
        sent += batch;
        await pub.sync();
      }
      await until(base + n);
    };
    await run(5_000);
    const t0 = performance.now();
    await run(FANOUT_N);
    return FANOUT_N / ((performance.now() - t0) / 1000);
  } finally {
    await pub.close();
    await sub.close();
  }
}

/**
 * Multicast: 3 nodes each generating as fast as the group delivers (`--generate`); the
 * median node's deliveries per second over a window, and the nodes' CPU per delivery.
 * Every delivery is an `mc.delivered` event (and every send an `mc.sent`), all streamed
 * to the console, which draws them in its diagram.
 */
async function multicastThroughput(
  cluster: LocalCluster,
  cpu: CpuProbe,
): Promise<{ rate: number; nodeCpuUs: number }> {
  const delivered = async () =>
    await Promise.all(cluster.nodes.map(async (n) => Number((await n.ctl("status")).delivered)));
  for (let i = 0; i < 300; i++) {
    const s = await Promise.all(cluster.nodes.map((n) => n.ctl("status")));
    if (s.every((x) => x.state === "member" && (x.members as string[]).length === 3)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 1_000)); // warm-up: the generators at full speed
  const c1 = await delivered();
  const cpu0 = cpu.nodes();
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, MC_WINDOW_MS)); // the measured window of a steady load
  const c2 = await delivered();
  const cpu1 = cpu.nodes();
  const secs = (performance.now() - t1) / 1000;
  const counts = c2.map((c, i) => c - c1[i]);
  const total = counts.reduce((a, b) => a + b, 0);
  return {
    rate: median(counts.map((c) => c / secs)),
    nodeCpuUs: ((cpu1 - cpu0) * 1e6) / Math.max(total, 1),
  };
}

/**
 * MOM: a broker and two daemons; MOM_N publications on d1 delivered to a subscriber on d2
 * (each one a `msg.published` and a `msg.delivered` event); deliveries per second and the
 * three processes' CPU per message.
 */
async function momDelivery(
  cluster: LocalCluster,
  cpu: CpuProbe,
): Promise<{ rate: number; nodeCpuUs: number }> {
  for (const d of ["d1", "d2"]) {
    for (let i = 0; i < 400 && (await cluster.node(d).ctl("status")).link !== "up"; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const pubClient = await MomClient.connect({
    hostname: "127.0.0.1",
    port: cluster.node("d1").port,
  });
  const subClient = await MomClient.connect({
    hostname: "127.0.0.1",
    port: cluster.node("d2").port,
  });
  try {
    const publisher = await pubClient.create();
    const subscriber = await subClient.create();
    await subscriber.subscribe("bench");
    const run = async (n: number) => {
      let received = 0;
      const reader = (async () => {
        for (let i = 0; i < 10 * n && received < n; i++) {
          received += (await subscriber.receiveBatch({ timeout: 1_000 })).length;
        }
        await subscriber.ack();
      })();
      for (let sent = 0; sent < n;) {
        const end = Math.min(n, sent + 1_000);
        for (; sent < end; sent++) publisher.publishNoWait("bench", BODY);
        await publisher.flush();
        // keep at most 20,000 in flight
        for (let i = 0; i < 100_000 && sent - received > 20_000; i++) {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      await reader;
      if (received < n) throw new Error(`mom: received ${received} of ${n}`);
    };
    await run(2_000);
    const cpu0 = cpu.nodes();
    const t0 = performance.now();
    await run(MOM_N);
    const secs = (performance.now() - t0) / 1000;
    const nodeCpuUs = ((cpu.nodes() - cpu0) * 1e6) / MOM_N;
    await publisher.destroy();
    await subscriber.destroy();
    return { rate: MOM_N / secs, nodeCpuUs };
  } finally {
    await pubClient.close();
    await subClient.close();
  }
}

async function main(): Promise<void> {
  const ring: NodeSpec[] = ["n1", "n2", "n3"].map((name) => ({ name, role: "ring" }));
  const queue: NodeSpec[] = [{ name: "q1", role: "queue" }];
  const multicast: NodeSpec[] = ["m1", "m2", "m3"].map((name) => ({
    name,
    role: "multicast",
    args: ["--generate", "50000", "--quiet", "--fail-timeout-ms", "5000"],
  }));
  const mom: NodeSpec[] = ["b1", "d1", "d2"].map((name) => ({
    name,
    role: name === "b1" ? "broker" : "daemon",
  }));
  const runs: Record<string, Partial<Record<Mode, number[]>>> = {};
  const put = (k: string, mode: Mode, v: number) => {
    runs[k] ??= {};
    (runs[k][mode] ??= []).push(v);
  };
  for (let rep = 0; rep < REPS; rep++) {
    // rotate which goes first, so drift in the machine's load hits all alike
    const order = MODES.map((_, i) => MODES[(i + rep) % MODES.length]);
    for (const mode of order) {
      const label = `rep ${rep + 1}/${REPS} ${mode}`;
      if (ONLY.includes("ring")) {
        console.error(`http bench: ${label}: ring`);
        const r = await withCluster(ring, mode, ringContended);
        put("ring_grants_per_s", mode, r.grants);
        put("ring_acquire_p50_ms", mode, r.p50);
        put("ring_node_cpu_us_per_grant", mode, r.nodeCpuUs);
        if (mode === "console") put("ring_console_cpu_us_per_grant", mode, r.consoleCpuUs);
      }
      if (ONLY.includes("queue")) {
        console.error(`http bench: ${label}: queue`);
        const q = await withCluster(queue, mode, async (c) => ({
          confirmed: await queueConfirmed(c),
          fanout: await queueFanout(c),
        }));
        put("queue_publish_confirmed_per_s", mode, q.confirmed);
        put("queue_fanout_delivered_per_s", mode, q.fanout);
      }
      if (ONLY.includes("multicast")) {
        console.error(`http bench: ${label}: multicast`);
        const m = await withCluster(multicast, mode, multicastThroughput);
        put("multicast_deliveries_per_s_per_node", mode, m.rate);
        put("multicast_node_cpu_us_per_delivery", mode, m.nodeCpuUs);
      }
      if (ONLY.includes("mom")) {
        console.error(`http bench: ${label}: mom`);
        const m = await withCluster(mom, mode, momDelivery);
        put("mom_delivered_per_s", mode, m.rate);
        put("mom_node_cpu_us_per_message", mode, m.nodeCpuUs);
      }
    }
  }
  const units: Record<string, string> = {
    ring_grants_per_s: "grants/s",
    ring_acquire_p50_ms: "ms",
    ring_node_cpu_us_per_grant: "µs",
    ring_console_cpu_us_per_grant: "µs",
    queue_publish_confirmed_per_s: "msgs/s",
    queue_fanout_delivered_per_s: "msgs/s",
    multicast_deliveries_per_s_per_node: "msgs/s",
    multicast_node_cpu_us_per_delivery: "µs",
    mom_delivered_per_s: "msgs/s",
    mom_node_cpu_us_per_message: "µs",
  };
  const names: Record<Mode, string> = {
    off: "http_off",
    bare: "http_on_bare",
    console: "http_on_console",
  };
  for (const [k, v] of Object.entries(runs)) {
    const off = v.off?.length ? median(v.off) : undefined;
    for (const mode of MODES) {
      const xs = v[mode];
      if (!xs?.length) continue;
      const value = median(xs);
      emit(`${k}_${names[mode]}`, value, units[k], {
        runs: xs.map(round2),
        ...(mode !== "off" && off ? { ratio_on_off: Math.round((value / off) * 1000) / 1000 } : {}),
      });
    }
  }
}

await main();

/**
 * MOM daemon CPU per delivery, two or more source trees alternated in one run: each round
 * starts a broker and two daemons from every tree in turn (each tree's own `LocalCluster`
 * and `MomClient`, loaded at run time) and runs `mom_bench`'s 1-subscriber same-daemon
 * fan-out on it; the daemons' utime+stime (all threads, `/proc/<pid>/stat`) over the
 * measured messages, divided by the deliveries (and d1's syscalls and bytes read and written
 * per delivery, `/proc/<pid>/io`). The order of the trees alternates from round to round.
 *
 * `deno run -A bench/mom_cpu_ab.ts --trees <dir>,<dir> [--rounds 5] [--n 100000]
 * [--topology same|across]` (a `<dir>` is a checkout of peerd, e.g. a `git worktree add` of
 * the commit to compare; `.` is this tree; `across` puts the subscriber on `d2`). One JSON
 * line per measurement, then one per tree: the medians, and the median over rounds of its
 * CPU per delivery divided by the first tree's in the same round (the figure to quote on a
 * shared machine: both sides of each ratio ran seconds apart).
 *
 * @module
 */

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const TREES = argValue("--trees", ".").split(",").map((t) =>
  new URL(t.endsWith("/") ? t : `${t}/`, `file://${Deno.cwd()}/`)
);
const ROUNDS = Number(argValue("--rounds", "5"));
const N = Number(argValue("--n", "100000"));
const TOPOLOGY = argValue("--topology", "same");
const PAYLOAD = new Uint8Array(100).fill(42);

interface Cluster {
  node(name: string): { pid?: number; port: number; ctl(cmd: string): Promise<{ link?: unknown }> };
  stop(): Promise<unknown>;
  dir: string;
}
interface User {
  subscribe(topic: string): Promise<unknown>;
  receiveBatch(o: { timeout: number }): Promise<unknown[]>;
  publishNoWait(topic: string, payload: Uint8Array): void;
  flush(): Promise<void>;
  ack(): Promise<unknown>;
  destroy(): Promise<unknown>;
}
interface Client {
  create(): Promise<User>;
  close(): Promise<void>;
}
interface Tree {
  url: URL;
  start(): Promise<Cluster>;
  connect(port: number): Promise<Client>;
}

async function loadTree(url: URL): Promise<Tree> {
  let harness: { LocalCluster: { start(o: unknown): Promise<Cluster> } };
  try {
    harness = await import(new URL("mod/harness/mod.ts", url).href);
  } catch {
    harness = await import(new URL("mod/process/mod.ts", url).href);
  }
  const mom = await import(new URL("mod/mom/mod.ts", url).href);
  return {
    url,
    start: () =>
      harness.LocalCluster.start({
        nodes: [
          { name: "b1", role: "broker", args: ["--log-level", "warn"] },
          { name: "d1", role: "daemon", args: ["--log-level", "warn"] },
          { name: "d2", role: "daemon", args: ["--log-level", "warn"] },
        ],
      }),
    connect: (port) => mom.MomClient.connect({ hostname: "127.0.0.1", port }),
  };
}

/** Bytes and calls of read/write-like syscalls (sockets and files), `/proc/<pid>/io`. */
function io(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/io`).split("\n")) {
    const [k, v] = line.split(": ");
    if (v !== undefined) out[k] = Number(v);
  }
  return out;
}

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, ticks of 10 ms
}

async function fanout1(tree: Tree, cluster: Cluster, topic: string) {
  const subDaemon = TOPOLOGY === "same" ? "d1" : "d2";
  const pubClient = await tree.connect(cluster.node("d1").port);
  const subClient = await tree.connect(cluster.node(subDaemon).port);
  try {
    const publisher = await pubClient.create();
    const user = await subClient.create();
    await user.subscribe(topic);
    let received = 0;
    const warm = Math.min(10_000, N / 10);
    const want = warm + N;
    let wake: (() => void) | undefined;
    const loop = (async () => {
      const deadline = performance.now() + 100_000;
      while (received < want && performance.now() < deadline) {
        received += (await user.receiveBatch({ timeout: 1_000 })).length;
        wake?.();
      }
      await user.ack();
    })();
    let base = 0;
    const publish = async (count: number) => {
      let flushing: Promise<void> = Promise.resolve();
      for (let sent = 0; sent < count;) {
        const end = Math.min(count, sent + 1_000);
        for (; sent < end; sent++) publisher.publishNoWait(topic, PAYLOAD);
        await flushing;
        flushing = publisher.flush();
        for (let i = 0; i < 100_000 && base + sent - received > 20_000; i++) {
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 50);
          });
        }
      }
      await flushing;
    };
    await publish(warm);
    base = warm;
    for (let i = 0; i < 20_000 && received < warm; i++) await new Promise((r) => setTimeout(r, 5));
    const pids = ["b1", "d1", "d2"].map((n) => cluster.node(n).pid!);
    const before = pids.map(cpuTicks);
    const io0 = io(pids[1]);
    const t0 = performance.now();
    await publish(N);
    await loop;
    const seconds = (performance.now() - t0) / 1000;
    const after = pids.map(cpuTicks);
    const io1 = io(pids[1]);
    if (received < want) throw new Error(`received ${received} of ${want}`);
    const us = (i: number) => ((after[i] - before[i]) * 1e4) / N; // ticks·10 ms / N, in µs
    await publisher.destroy();
    await user.destroy();
    const perMsg = (k: string) => Math.round(((io1[k] - io0[k]) / N) * 100) / 100;
    const d1io = {
      rchar: perMsg("rchar"),
      wchar: perMsg("wchar"),
      syscr: perMsg("syscr"),
      syscw: perMsg("syscw"),
    };
    return { d1io, rate: N / seconds, broker: us(0), d1: us(1), d2: us(2), daemons: us(1) + us(2) };
  } finally {
    await pubClient.close();
    await subClient.close();
  }
}

const trees = await Promise.all(TREES.map(loadTree));
const results = new Map<string, { daemons: number[]; d1: number[]; rate: number[] }>();
/** Per round, each tree's daemons' CPU per delivery. */
const byRound: Array<Map<string, number>> = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const tree of round % 2 === 0 ? trees : [...trees].reverse()) {
    const cluster = await tree.start();
    try {
      for (const d of ["d1", "d2"]) {
        for (let i = 0; i < 400 && (await cluster.node(d).ctl("status")).link !== "up"; i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      const r = await fanout1(tree, cluster, `ab${round}`);
      const key = tree.url.pathname;
      const acc = results.get(key) ?? { daemons: [], d1: [], rate: [] };
      acc.daemons.push(r.daemons);
      acc.d1.push(r.d1);
      acc.rate.push(r.rate);
      results.set(key, acc);
      (byRound[round] ??= new Map()).set(key, r.daemons);
      console.log(JSON.stringify({
        bench: "mom_cpu_ab",
        round,
        tree: key,
        topology: TOPOLOGY,
        delivered_per_s: Math.round(r.rate),
        daemons_us: Math.round(r.daemons * 100) / 100,
        d1_us: Math.round(r.d1 * 100) / 100,
        d2_us: Math.round(r.d2 * 100) / 100,
        broker_us: Math.round(r.broker * 100) / 100,
        d1_io_per_delivery: r.d1io,
      }));
    } finally {
      await cluster.stop();
      await Deno.remove(cluster.dir, { recursive: true }).catch(() => {});
    }
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const first = trees[0].url.pathname;
for (const [tree, r] of results) {
  const ratios = byRound.filter((m) => m.has(tree) && m.get(first)! > 0).map((m) =>
    m.get(tree)! / m.get(first)!
  );
  console.log(JSON.stringify({
    bench: "mom_cpu_ab",
    tree,
    topology: TOPOLOGY,
    rounds: r.daemons.length,
    median_daemons_us: Math.round(median(r.daemons) * 100) / 100,
    median_d1_us: Math.round(median(r.d1) * 100) / 100,
    median_ratio_to_first: Math.round(median(ratios) * 1000) / 1000,
    first: first,
    median_delivered_per_s: Math.round(median(r.rate)),
  }));
}

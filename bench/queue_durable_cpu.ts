/**
 * The durable phases of `bench/queue_bench.ts` (persistent confirmed publish, consume + ack
 * of that backlog, and both at once end to end) measured as CPU per message of the server
 * and of the client process, beside msgs/s, for two checkouts alternating in one run: the
 * robust before/after comparison on a shared 2-core machine, where msgs/s alone is noise.
 *
 *   deno run -A bench/queue_durable_cpu.ts --before DIR [--after DIR] [--runs 6] [--n 50000]
 *
 * `DIR` is a checkout of peerd (e.g. `git worktree add ../q-old 6c0d086`); `--after` defaults
 * to this checkout. Each run is a fresh child process (`--probe`) that starts the server of
 * one checkout on a free loopback port with a fresh data dir, drives it with that checkout's
 * own `QueueClient` (the native protocol changed between versions), prints one JSON line and
 * stops the server by PID. Runs alternate before/after; the medians are printed at the end.
 *
 * @module
 */

const args = Deno.args;
const argValue = (name: string, fallback?: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const N = Number(argValue("--n", "50000"));

interface Phase {
  rate: number;
  serverUs: number;
  clientUs: number;
}
type Probe = Record<"publish" | "consume" | "both", Phase>;

function procCpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return (l.addr as Deno.NetAddr).port;
  } finally {
    l.close();
  }
}

/** One measurement against the server of checkout `tree`, in this (child) process. */
async function probe(tree: string): Promise<Probe> {
  // deno-lint-ignore no-explicit-any
  const { QueueClient } = await import(`${tree}/mod/queue/mod.ts`) as any;
  const port = freePort();
  const address = `127.0.0.1:${port}`;
  const data = await Deno.makeTempDir({ prefix: "peerd-qdur-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${tree}/main.ts`, "--role", "queue", "--name", "qdur", "--listen"]
      .concat([address, "--data", data, "--log-level", "warn"]),
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const body = new Uint8Array(100).fill(42);
  try {
    // deno-lint-ignore no-explicit-any
    let connect: () => Promise<any> = () => QueueClient.connect(address, { name: "bench" });
    let ch;
    for (let i = 0; i < 300 && !ch; i++) {
      try {
        ch = await connect();
      } catch {
        await new Promise((r) => setTimeout(r, 100)); // poll: the server is starting
      }
    }
    if (!ch) throw new Error(`${tree}: the server did not accept connections in 30 s`);
    const sub = await connect();
    connect = () => Promise.reject(new Error("unused"));
    const publishConfirmed = async (n: number) => {
      const window: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        window.push(ch.publishConfirmed("", "bench.durable", body, { persistent: true }));
        if (window.length >= 1000) await window.shift();
      }
      await Promise.all(window);
    };
    const phase = async (run: () => Promise<void>): Promise<Phase> => {
      const s0 = procCpuUs(child.pid);
      const c0 = procCpuUs(Deno.pid);
      const t0 = performance.now();
      await run();
      const s = (performance.now() - t0) / 1000;
      return {
        rate: Math.round(N / s),
        serverUs: (procCpuUs(child.pid) - s0) / N,
        clientUs: (procCpuUs(Deno.pid) - c0) / N,
      };
    };
    try {
      await ch.assertQueue("bench.durable", { durable: true });
      await ch.confirmSelect();
      await publishConfirmed(5_000); // warm-up
      await ch.purgeQueue("bench.durable");
      const publish = await phase(() => publishConfirmed(N));
      let got = 0;
      let done: (() => void) | undefined;
      await sub.prefetch(500);
      let consumerTag = "";
      const consume = await phase(async () => {
        // deno-lint-ignore no-explicit-any
        ({ consumerTag } = await sub.consume("bench.durable", (m: any) => {
          sub.ack(m);
          if (++got === N) done?.();
        }));
        if (got < N) await new Promise<void>((r) => done = r);
      });
      await sub.sync();
      got = 0;
      const both = await phase(async () => {
        const all = new Promise<void>((r) => done = r);
        await publishConfirmed(N);
        await all;
      });
      await sub.cancel(consumerTag);
      return { publish, consume, both };
    } finally {
      await ch.close();
      await sub.close();
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(data, { recursive: true });
  }
}

if (args.includes("--probe")) {
  console.log(JSON.stringify(await probe(argValue("--probe")!)));
} else {
  const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  // absolute paths: the probes import from them as module specifiers
  const beforeArg = argValue("--before");
  if (!beforeArg) throw new Error("usage: --before DIR [--after DIR] [--runs 6] [--n 50000]");
  const before = Deno.realPathSync(beforeArg);
  const after = Deno.realPathSync(argValue("--after", here)!);
  const runs = Number(argValue("--runs", "6"));
  const results: Record<string, Probe[]> = { before: [], after: [] };
  for (let i = 0; i < runs; i++) {
    const order: Array<["before" | "after", string]> = i % 2
      ? [["after", after], ["before", before]]
      : [["before", before], ["after", after]];
    for (const [label, tree] of order) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", `${tree}/deno.json`, new URL(import.meta.url).pathname]
          .concat(["--probe", tree, "--n", String(N)]),
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`probe of ${tree} failed`);
      const p = JSON.parse(new TextDecoder().decode(out.stdout)) as Probe;
      results[label].push(p);
      console.log(JSON.stringify({ bench: "queue_durable_cpu", run: i, label, tree, ...p }));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`n=${N} runs=${runs} load ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  console.log("phase    label   msgs/s (median)  server µs/msg  client µs/msg");
  for (const phase of ["publish", "consume", "both"] as const) {
    for (const label of ["before", "after"]) {
      const ps = results[label].map((p) => p[phase]);
      console.log(
        [
          phase.padEnd(8),
          label.padEnd(7),
          String(median(ps.map((p) => p.rate))).padStart(16),
          median(ps.map((p) => p.serverUs)).toFixed(2).padStart(14),
          median(ps.map((p) => p.clientUs)).toFixed(2).padStart(14),
        ].join(" "),
      );
    }
  }
}

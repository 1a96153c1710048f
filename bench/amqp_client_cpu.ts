/**
 * What the same AMQP client (amqplib, unmodified) spends per message against RabbitMQ and
 * against `peerd --role queue --amqp`, in one run, alternating: client CPU µs per message
 * (this process, which only runs the client during a workload), socket reads ('data'
 * events) and bytes per message the client gets, and the server's CPU µs per message
 * (`/proc/<pid>/stat`). These, not throughput, are what a loaded 2-core machine measures
 * well; the peers-bench ratios (`bench/amqp_peers.sh`) follow from them.
 *
 *   deno run -A bench/amqp_client_cpu.ts [--n 20000] [--reps 3] [--before DIR]
 *
 * `--before DIR` also starts the peerd of another checkout (`DIR/main.ts`, e.g. a
 * `git worktree` of the previous commit) as server `before`, measured in the same run,
 * alternating with the others: the before/after comparison on one (noisy) machine.
 *
 * Workloads (100-byte bodies, as peers-bench): `confirm` (persistent publishes on a confirm
 * channel, at most 1000 unconfirmed), `consume` (a queue of n persistent messages consumed
 * with prefetch 500 and one ack each), `fanout` (n transient publishes to `amq.topic`, one
 * subscriber with no-ack).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import amqp from "amqplib";
import { freePort } from "../mod/harness/mod.ts";
import { RabbitMq } from "../tests/harness/rabbitmq.ts";

type Conn = Awaited<ReturnType<typeof amqp.connect>>;

const args = Deno.args;
function num(name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
}
const N = num("n", 20_000);
const REPS = num("reps", 3);
const BEFORE = args.includes("--before") ? args[args.indexOf("--before") + 1] : undefined;
const BODY = Buffer.alloc(100, 0x61);

/** utime + stime of a process, µs (clock ticks are 100 Hz on Linux). */
function procCpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

function clientCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Counts the socket reads and bytes of an amqplib connection. */
function countReads(conn: Conn): { reads: number; bytes: number } {
  const c = { reads: 0, bytes: 0 };
  // deno-lint-ignore no-explicit-any
  const stream = (conn as any).connection.stream as {
    on(ev: string, fn: (b: Buffer) => void): void;
  };
  stream.on("data", (b) => {
    c.reads++;
    c.bytes += b.length;
  });
  return c;
}

interface Sample {
  server: string;
  workload: string;
  clientUs: number;
  serverUs: number;
  reads: number;
  bytes: number;
  ms: number;
}

async function measure(
  server: string,
  pid: number,
  workload: string,
  conns: Conn[],
  run: () => Promise<void>,
): Promise<Sample> {
  const counters = conns.map(countReads);
  const c0 = clientCpuUs();
  const s0 = procCpuUs(pid);
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  return {
    server,
    workload,
    clientUs: (clientCpuUs() - c0) / N,
    serverUs: (procCpuUs(pid) - s0) / N,
    reads: counters.reduce((n, c) => n + c.reads, 0) / N,
    bytes: counters.reduce((n, c) => n + c.bytes, 0) / N,
    ms,
  };
}

async function confirmRun(server: string, pid: number, url: string): Promise<Sample> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue("cpu.q", { durable: true });
    await ch.purgeQueue("cpu.q");
    return await measure(server, pid, "confirm", [conn], async () => {
      let sent = 0;
      let done = 0;
      await new Promise<void>((resolve, reject) => {
        const pump = () => {
          while (sent < N && sent - done < 1000) {
            sent++;
            ch.sendToQueue("cpu.q", BODY, { persistent: true }, (err) => {
              if (err) return reject(err);
              if (++done === N) resolve();
              else pump();
            });
          }
        };
        pump();
      });
    });
  } finally {
    await conn.close();
  }
}

async function consumeRun(server: string, pid: number, url: string): Promise<Sample> {
  // the queue holds the n messages of the confirm run
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    const { messageCount } = await ch.checkQueue("cpu.q");
    if (messageCount !== N) throw new Error(`${server}: cpu.q holds ${messageCount}, not ${N}`);
    await ch.prefetch(500);
    return await measure(server, pid, "consume", [conn], async () => {
      let got = 0;
      await new Promise<void>((resolve) => {
        ch.consume("cpu.q", (m) => {
          if (!m) return;
          ch.ack(m);
          if (++got === N) resolve();
        });
      });
    });
  } finally {
    await conn.close();
  }
}

async function fanoutRun(server: string, pid: number, url: string): Promise<Sample> {
  const pubConn = await amqp.connect(url);
  const subConn = await amqp.connect(url);
  try {
    const pub = await pubConn.createChannel();
    const sub = await subConn.createChannel();
    const q = await sub.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    await sub.bindQueue(q.queue, "amq.topic", "cpu.t");
    let got = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => resolveAll = r);
    await sub.consume(q.queue, () => {
      if (++got === N) resolveAll();
    }, { noAck: true });
    return await measure(server, pid, "fanout", [pubConn, subConn], async () => {
      for (let i = 0; i < N; i++) {
        if (!pub.publish("amq.topic", "cpu.t", BODY)) {
          await new Promise((r) => pub.once("drain", r));
        }
      }
      await all;
    });
  } finally {
    await pubConn.close();
    await subConn.close();
  }
}

async function startPeerd(
  main = new URL("../main.ts", import.meta.url).pathname,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const native = freePort();
  const port = freePort();
  const data = await Deno.makeTempDir({ prefix: "peerd-amqp-cpu-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      main,
      "--role",
      "queue",
      "--name",
      "qcpu",
      "--listen",
      `127.0.0.1:${native}`,
      "--data",
      data,
      "--amqp",
      `127.0.0.1:${port}`,
      "--log-level",
      "warn",
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      await (await amqp.connect(url)).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100)); // poll: the node is starting
    }
  }
  return {
    url,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(data, { recursive: true });
    },
  };
}

const missing = await RabbitMq.missing();
if (missing) throw new Error(missing);
const rabbit = await RabbitMq.start();
const peerd = await startPeerd();
let before: Awaited<ReturnType<typeof startPeerd>> | undefined;
const samples: Sample[] = [];
try {
  if (BEFORE) before = await startPeerd(`${BEFORE.replace(/\/$/, "")}/main.ts`);
  const rabbitPid = Number((await Deno.readTextFile(`${rabbit.dir}/rabbit.pid`)).trim());
  const servers: Array<[string, number, string]> = [
    ["rabbitmq", rabbitPid, rabbit.url],
    ["peerd", peerd.pid, peerd.url],
  ];
  if (before) servers.push(["before", before.pid, before.url]);
  for (let rep = 0; rep < REPS; rep++) {
    for (const run of [confirmRun, consumeRun, fanoutRun]) {
      // alternate which server goes first
      for (const [name, pid, url] of rep % 2 ? [...servers].reverse() : servers) {
        console.error(`rep ${rep}: ${run.name} on ${name}`);
        samples.push(await run(name, pid, url));
      }
    }
  }
} finally {
  await before?.stop();
  await peerd.stop();
  await rabbit.stop();
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`n=${N} reps=${REPS} load ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
console.log(
  "workload  server     client µs/msg  server µs/msg  reads/msg  bytes/msg  ms (median)",
);
for (const workload of ["confirm", "consume", "fanout"]) {
  for (const server of ["rabbitmq", "peerd", "before"]) {
    const s = samples.filter((x) => x.workload === workload && x.server === server);
    if (s.length === 0) continue;
    console.log(
      [
        workload.padEnd(9),
        server.padEnd(10),
        median(s.map((x) => x.clientUs)).toFixed(2).padStart(13),
        median(s.map((x) => x.serverUs)).toFixed(2).padStart(14),
        median(s.map((x) => x.reads)).toFixed(3).padStart(10),
        median(s.map((x) => x.bytes)).toFixed(1).padStart(10),
        median(s.map((x) => x.ms)).toFixed(0).padStart(12),
      ].join(" "),
    );
  }
}

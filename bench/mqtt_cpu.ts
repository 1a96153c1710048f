/**
 * Server CPU per MQTT delivery, the same mqtt.js client against Mosquitto and against one or
 * more peerd trees (a broker and a daemon with `--mqtt` each), alternating in one run, so
 * that a before/after pair and Mosquitto share the machine's load:
 *
 * ```sh
 * deno run -A bench/mqtt_cpu.ts                          # this tree and Mosquitto
 * deno run -A bench/mqtt_cpu.ts --trees ../peerd-before,.    # two trees and Mosquitto
 * deno run -A bench/mqtt_cpu.ts --rounds 3 --n 50000 --cases q0s1,q0s4,q1s1,q1s4
 * deno run -A bench/mqtt_cpu.ts --cases q1s1 --cpu-prof /tmp/prof  # daemon .cpuprofile files
 * ```
 *
 * Each case: S subscribers (QoS q; QoS 1 with persistent sessions, Mosquitto then with
 * persistence on) and one publisher sending N 100-byte messages at QoS q (QoS 0 in batches
 * of 1,000, each ended by a QoS 1 round trip as peers-bench's adapter does; QoS 1 with at most
 * 1,000 unacknowledged), at most 20,000 ahead of the slowest subscriber. Reported per run:
 * delivered/s and the server's CPU (utime + stime from `/proc`, all its threads) per delivery
 * in µs, for peerd the daemon and the broker apart. One JSON line per run, then the medians.
 *
 * @module
 */
import mqtt from "mqtt";

const args = new Map<string, string>();
for (let i = 0; i < Deno.args.length; i += 2) {
  args.set(Deno.args[i].replace(/^--/, ""), Deno.args[i + 1]);
}
const N = Number(args.get("n") ?? 50_000);
const ROUNDS = Number(args.get("rounds") ?? 2);
const CASES = (args.get("cases") ?? "q0s1,q0s4,q1s1,q1s4").split(",");
const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const TREES = (args.get("trees") ?? here).split(",").map((t) => t === "." ? here : t);
const WINDOW = 20_000;
const BATCH = 1_000;
const TICK = 100; // clock ticks per second (USER_HZ)
/** `--cpu-prof DIR`: the daemons run under V8's profiler, one `.cpuprofile` each into DIR. */
const PROFILE_DIR = args.get("cpu-prof");

/** CPU seconds (user + system) of process `pid` so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`Cannot reach ${what} on port ${port}`);
}

interface Server {
  name: string;
  port: number;
  /** Processes whose CPU counts, by label. */
  pids: Record<string, number>;
  stop(): Promise<void>;
}

/** Mosquitto on a free port (persistence on for QoS 1). */
async function startMosquitto(persistent: boolean): Promise<Server> {
  const dir = Deno.makeTempDirSync({ prefix: "mqtt-cpu-mosq-" });
  const port = freePort();
  const conf = [`listener ${port} 127.0.0.1`, "allow_anonymous true", "max_queued_messages 0"];
  if (persistent) conf.push("persistence true", `persistence_location ${dir}/`);
  else conf.push("persistence false");
  Deno.writeTextFileSync(`${dir}/m.conf`, conf.join("\n") + "\n");
  const child = new Deno.Command("mosquitto", {
    args: ["-c", `${dir}/m.conf`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitPort(port, "mosquitto");
  return {
    name: persistent ? "mosquitto (persistence)" : "mosquitto",
    port,
    pids: { server: child.pid },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** A broker and a daemon with `--mqtt` from `tree`. */
async function startPeerd(tree: string): Promise<Server> {
  const dir = Deno.makeTempDirSync({ prefix: "mqtt-cpu-peerd-" });
  const broker = freePort();
  const daemon = freePort();
  const port = freePort();
  const run = (extra: string[], profile = false) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(profile ? ["--cpu-prof", "--cpu-prof-dir", PROFILE_DIR!] : []),
        `${tree}/main.ts`,
        ...extra,
        "--log-level",
        "warn",
      ],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  const b = run([
    "--role",
    "broker",
    "--name",
    "b1",
    "--listen",
    `127.0.0.1:${broker}`,
    "--data",
    `${dir}/b1`,
  ]);
  const d = run([
    "--role",
    "daemon",
    "--name",
    "d1",
    "--listen",
    `127.0.0.1:${daemon}`,
    "--data",
    `${dir}/d1`,
    "--broker",
    `127.0.0.1:${broker}`,
    "--mqtt",
    `127.0.0.1:${port}`,
  ], PROFILE_DIR !== undefined);
  const stop = async () => {
    for (const c of [d, b]) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
    Deno.removeSync(dir, { recursive: true });
  };
  try {
    await waitPort(port, "peerd MQTT");
    // a new session needs the broker link: retry a first connection until it is accepted
    for (let i = 0;; i++) {
      try {
        const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
          reconnectPeriod: 0,
          connectTimeout: 2_000,
        });
        await c.endAsync();
        break;
      } catch (err) {
        if (i >= 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name: `peerd ${tree === here ? "." : tree}`,
    port,
    pids: { daemon: d.pid, broker: b.pid },
    stop,
  };
}

/** One case against `server`; returns delivered/s and CPU µs per delivery per process. */
async function runCase(server: Server, qos: 0 | 1, subs: number) {
  const url = `mqtt://127.0.0.1:${server.port}`;
  const topic = `cpu/${crypto.randomUUID().slice(0, 8)}`;
  const counts = new Array(subs).fill(0);
  const total = N + BATCH; // a warm-up batch first
  let done: () => void = () => {};
  const all = new Promise<void>((r) => done = r);
  const clients: Array<Awaited<ReturnType<typeof mqtt.connectAsync>>> = [];
  try {
    for (let i = 0; i < subs; i++) {
      const c = await mqtt.connectAsync(url, {
        protocolVersion: 4,
        clientId: `cpu-sub-${i}-${topic}`,
        clean: qos === 0,
        reconnectPeriod: 0,
      });
      clients.push(c);
      c.on("message", () => {
        if (++counts[i] === total && counts.every((n) => n >= total)) done();
      });
      await c.subscribeAsync(topic, { qos });
    }
    const pub = await mqtt.connectAsync(url, {
      protocolVersion: 4,
      clientId: `cpu-pub-${topic}`,
      clean: true,
      reconnectPeriod: 0,
    });
    clients.push(pub);
    const payload = new Uint8Array(100);
    const slowest = () => Math.min(...counts);
    const waitFor = async (cond: () => boolean) => {
      for (let i = 0; i < 600_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
      if (!cond()) throw new Error("Cannot finish the case: subscribers stopped receiving");
    };
    const publishBatch = async (count: number) => {
      if (qos === 0) {
        for (let i = 0; i < count; i++) {
          pub.publish(topic, payload as unknown as string, { qos: 0 });
        }
        await pub.publishAsync(`${topic}/flush`, "", { qos: 1 });
      } else {
        await Promise.all(
          Array.from(
            { length: count },
            () => pub.publishAsync(topic, payload as unknown as string, { qos: 1 }),
          ),
        );
      }
    };
    await publishBatch(BATCH);
    await waitFor(() => slowest() >= BATCH);
    const before = Object.fromEntries(
      Object.entries(server.pids).map(([k, pid]) => [k, cpuSeconds(pid)]),
    );
    const t0 = performance.now();
    for (let sent = 0; sent < N; sent += BATCH) {
      await publishBatch(Math.min(BATCH, N - sent));
      await waitFor(() => BATCH + sent - slowest() <= WINDOW);
    }
    await Promise.race([all, waitFor(() => slowest() >= total)]);
    const seconds = (performance.now() - t0) / 1000;
    const deliveries = N * subs;
    const cpu: Record<string, number> = {};
    for (const [k, pid] of Object.entries(server.pids)) {
      cpu[k] = Math.round(((cpuSeconds(pid) - before[k]) * 1e6 / deliveries) * 100) / 100;
    }
    return { delivered_per_s: Math.round(deliveries / seconds), cpu_us_per_delivery: cpu };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }
}

const results: Array<
  {
    server: string;
    case: string;
    delivered_per_s: number;
    cpu_us_per_delivery: Record<string, number>;
  }
> = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const name of CASES) {
    const m = /^q([01])s(\d+)$/.exec(name);
    if (!m) throw new Error(`Cannot run case ${name}: expected q0s1, q1s4, …`);
    const qos = Number(m[1]) as 0 | 1;
    const subs = Number(m[2]);
    const starts = [() => startMosquitto(qos === 1), ...TREES.map((t) => () => startPeerd(t))];
    // alternate the order per round so that no server always runs first
    if (round % 2 === 0) starts.reverse();
    for (const start of starts) {
      const server = await start();
      try {
        const r = await runCase(server, qos, subs);
        const line = {
          round,
          server: server.name,
          case: name,
          n: N,
          load: Deno.loadavg()[0],
          ...r,
        };
        console.log(JSON.stringify(line));
        results.push({ server: server.name, case: name, ...r });
      } finally {
        await server.stop();
      }
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log("\n| case | server | delivered/s (median) | server CPU µs/delivery (median) |");
console.log("|---|---|---|---|");
for (const c of CASES) {
  for (const s of [...new Set(results.map((r) => r.server))]) {
    const rs = results.filter((r) => r.case === c && r.server === s);
    if (rs.length === 0) continue;
    const cpu = Object.keys(rs[0].cpu_us_per_delivery).map((k) =>
      `${k} ${median(rs.map((r) => r.cpu_us_per_delivery[k]))}`
    ).join(", ");
    console.log(
      `| ${c} | ${s} | ${median(rs.map((r) => r.delivered_per_s)).toLocaleString("en")} | ${cpu} |`,
    );
  }
}

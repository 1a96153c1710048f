/**
 * What one event costs a node's own process with `--http`, in-process and by CPU time (so
 * the figure holds on a loaded machine): an `EventSink` writing its events file, as every
 * node does, with nothing else (`off`); with the HTTP side's listeners (metrics and the
 * replay buffer) and nobody streaming (`bare`); with one `/events` client asking as the
 * console does for a ring node (`thinned`: lock events summarised per 250 ms); with one
 * client taking every event whole (`whole`). Clients are `curl -N` processes, so reading
 * costs this process nothing. Ring-like events (`lock.requested`, `lock.acquired`,
 * `lock.released` in turn) or, with `--role multicast`, multicast-like ones (an `mc.sent`,
 * three `mc.delivered`). Modes alternate, REPS times each.
 *
 * Run: `deno run -A bench/http_events_bench.ts [--reps 5] [--events 200000] [--role multicast]`.
 *
 * @module
 */
import { EventSink } from "../mod/events/mod.ts";
import { MetricRegistry, NodeHttpServer, roleMetrics } from "../mod/http/mod.ts";
import { streamQuery } from "../mod/console/mod.ts";

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const REPS = Number(argValue("--reps", "5"));
const EVENTS = Number(argValue("--events", "200000"));
/** Events emitted per turn of the event loop (then the timers and writes run). */
const PER_TURN = 300;
/** Ring-like events (three per grant) or multicast-like ones (a send, three deliveries). */
const ROLE = argValue("--role", "ring");
if (ROLE !== "ring" && ROLE !== "multicast") throw new Error(`--role: ring or multicast`);
const NAMES = ROLE === "ring"
  ? ["lock.requested", "lock.acquired", "lock.released"]
  : ["mc.sent", "mc.delivered", "mc.delivered", "mc.delivered"];

/** The fields of event `i`. */
function fieldsOf(i: number): Record<string, unknown> {
  if (ROLE === "ring") return { fence: i, waited_ms: 0.5, holder: "n1" };
  const id = `m1:${Math.floor(i / 4)}`;
  return i % 4 === 0
    ? { id, lamport: i, size: 24 }
    : { id, from: "m1", lamport: i, idx: i, body: "generated 0123456789" };
}

type Mode = "off" | "bare" | "thinned" | "whole";
const MODES: Mode[] = ["off", "bare", "thinned", "whole"];

/** CPU seconds (user + system) this process has used. */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Emits EVENTS ring-like events in `mode`; resolves with CPU µs per event. */
async function run(mode: Mode, dir: string): Promise<number> {
  const sink = new EventSink({ node: "n1", role: ROLE, path: `${dir}/${mode}.jsonl` });
  let server: NodeHttpServer | undefined;
  let unsubscribe = () => {};
  const clients: Deno.ChildProcess[] = [];
  try {
    if (mode !== "off") {
      const registry = new MetricRegistry();
      const metrics = roleMetrics(registry, ROLE);
      unsubscribe = sink.subscribe((e) => metrics.event(e));
      server = new NodeHttpServer({
        status: () => Promise.resolve({}),
        readiness: () => Promise.resolve({ ready: true }),
        metrics: () => Promise.resolve(registry.render()),
        subscribe: (l) => sink.subscribe(l),
      }, { hostname: "127.0.0.1", port: 0 });
      if (mode === "thinned" || mode === "whole") {
        const query = mode === "thinned" ? `?${streamQuery(ROLE)}` : "";
        clients.push(
          new Deno.Command("curl", {
            args: ["-sN", `http://${server.address}/events${query}`],
            stdout: "null",
            stderr: "null",
          }).spawn(),
        );
        for (let i = 0; i < 500 && server.sseClients === 0; i++) {
          await new Promise((r) => setTimeout(r, 10)); // until curl is connected
        }
        if (server.sseClients === 0) throw new Error("Cannot attach curl within 5 s");
      }
    }
    const c0 = cpuSeconds();
    for (let i = 0; i < EVENTS;) {
      for (const end = Math.min(EVENTS, i + PER_TURN); i < end; i++) {
        sink.emit(NAMES[i % NAMES.length], fieldsOf(i));
      }
      await new Promise((r) => setTimeout(r, 0)); // a turn: the sink and the streams write
    }
    return ((cpuSeconds() - c0) * 1e6) / EVENTS;
  } finally {
    unsubscribe();
    sink.close();
    for (const c of clients) {
      c.kill("SIGTERM");
      await c.status;
    }
    await server?.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const dir = await Deno.makeTempDir({ prefix: "peerd-http-events-" });
try {
  const runs: Record<Mode, number[]> = { off: [], bare: [], thinned: [], whole: [] };
  await run("off", dir); // warm-up: the JIT
  for (let rep = 0; rep < REPS; rep++) {
    for (const mode of MODES.map((_, i) => MODES[(i + rep) % MODES.length])) {
      runs[mode].push(await run(mode, dir));
    }
  }
  const off = median(runs.off);
  for (const mode of MODES) {
    const value = median(runs[mode]);
    console.log(JSON.stringify({
      bench: "http_events",
      figure: `${ROLE}_cpu_us_per_event_${mode}`,
      value: Math.round(value * 100) / 100,
      unit: "µs",
      runs: runs[mode].map((x) => Math.round(x * 100) / 100),
      extra_us: Math.round((value - off) * 100) / 100,
    }));
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

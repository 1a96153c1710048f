/**
 * `peerd --role demo`: starts a local cluster for every role from the repo's peers.json,
 * exercises each, prints a short summary per role, stops everything, and exits 0 (1 if
 * any step failed).
 *
 * @module
 */
import { type ClusterConfig, loadPeersFile } from "../config/mod.ts";
import { aborted, defineRole, UsageError } from "../process/mod.ts";
import { freePort, LocalCluster, type NodeSpec } from "../harness/mod.ts";
import type { DemoContext } from "../harness/mod.ts";
import { type DemoConsole, startDemoConsole } from "./console.ts";
import { DEMO_STEPS } from "./steps.ts";

/** The demo role. */
export const demoRole = defineRole({
  name: "demo",
  summary: "start a local cluster of every role, exercise each, print what happened, stop",
  peers: "none",
  options: {
    only: {
      type: "string",
      arg: "steps",
      help: `comma-separated steps to run (${DEMO_STEPS.map((s) => s.name).join(",")})`,
    },
    stepTimeout: {
      type: "int",
      arg: "seconds",
      default: 30,
      min: 1,
      help: "time limit of one step",
    },
    keep: { type: "bool", help: "keep the scratch directory (logs, events, data)" },
    console: {
      type: "bool",
      help: "serve the live web console of the demo's nodes; keep them running until Ctrl-C",
    },
    consoleListen: {
      type: "string",
      arg: "host:port",
      default: "127.0.0.1:7900",
      help: "where --console serves its page",
    },
  },
  examples: [
    "peerd --role demo",
    "peerd --role demo --only ring,gossip",
    "peerd --role demo --console",
  ],
  async run(ctx) {
    const only = ctx.options.only?.split(",").map((s) => s.trim());
    const unknown = only?.filter((s) => !DEMO_STEPS.some((d) => d.name === s)) ?? [];
    if (unknown.length) {
      throw new UsageError(
        `--only: unknown step ${unknown.join(", ")}; steps are ${
          DEMO_STEPS.map((s) => s.name).join(", ")
        }`,
      );
    }
    let peers: ClusterConfig | undefined;
    const peersPath = ctx.cluster?.source ?? (exists("peers.json") ? "peers.json" : undefined);
    if (ctx.cluster) peers = ctx.cluster;
    else if (peersPath) peers = loadPeersFile(peersPath);
    const root = await Deno.makeTempDir({ prefix: "peerd-demo-" });
    const steps = DEMO_STEPS.filter((s) => !only || only.includes(s.name));
    const t0 = performance.now();
    let failed = 0;
    const kept: LocalCluster[] = [];
    let web: DemoConsole | undefined;
    let stepsDone = false;
    if (ctx.options.console) {
      web = await startDemoConsole(ctx.options.consoleListen, ctx.signal);
      console.log(`peerd demo: console on ${web.url} (open it in a browser)`);
    }
    console.log(
      `peerd demo: ${steps.length} steps; peers from ${
        peersPath ?? "(free ports)"
      }; scratch ${root}`,
    );
    try {
      for (const step of steps) {
        if (ctx.signal.aborted) break;
        console.log(`\n== ${step.name}: ${step.title}`);
        const stepStart = performance.now();
        const clusters: LocalCluster[] = [];
        const stepSignal = AbortSignal.any([
          ctx.signal,
          AbortSignal.timeout(ctx.options.stepTimeout * 1000),
        ]);
        const demoCtx: DemoContext = {
          dir: `${root}/${step.name}`,
          peers,
          signal: stepSignal,
          say: (line) => console.log(`   ${line}`),
          nodesFor: (role, count, prefix) => nodesFor(peers, role, count, prefix),
          startCluster: async (nodes, options) => {
            const cluster = await LocalCluster.start({
              nodes: web ? web.withHttp(nodes) : nodes,
              dir: `${root}/${step.name}/${clusters.length}`,
              peersFormat: options?.peersFormat,
              secret: options?.secret,
            });
            clusters.push(cluster);
            if (web) await web.watch(cluster, options?.secret);
            return cluster;
          },
        };
        try {
          const lines = await raceSignal(step.run(demoCtx), stepSignal);
          for (const line of lines) console.log(`   ${line}`);
          console.log(`   ok (${((performance.now() - stepStart) / 1000).toFixed(1)} s)`);
        } catch (err) {
          failed++;
          console.log(`   FAILED: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          if (web) kept.push(...clusters);
          else for (const cluster of clusters) await cluster.stop();
        }
      }
      stepsDone = !ctx.signal.aborted;
      if (web && stepsDone) {
        console.log(
          `\npeerd demo: ${
            steps.length - failed
          } of ${steps.length} steps ok; the nodes keep running for the console at ${web.url}` +
            ` — Ctrl-C stops them`,
        );
        await aborted(ctx.signal);
      }
    } finally {
      for (const cluster of kept) await cluster.stop();
      await web?.close();
      if (!ctx.options.keep) await Deno.remove(root, { recursive: true }).catch(() => {});
    }
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`\npeerd demo: ${steps.length - failed} of ${steps.length} steps ok in ${secs} s`);
    // with --console, Ctrl-C after the steps is how the demo ends
    return failed === 0 && (stepsDone && web ? true : !ctx.signal.aborted) ? 0 : 1;
  },
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function nodesFor(
  peers: ClusterConfig | undefined,
  role: string,
  count: number,
  prefix: string,
): NodeSpec[] {
  const listed = peers?.nodes.filter((n) => n.role === role) ?? [];
  if (listed.length > 0) {
    return listed.map((n) => ({
      name: n.name,
      role,
      port: portIsFree(n.port) ? n.port : freePort(),
      entry: { ...n.options, ...(n.neighbours ? { neighbours: n.neighbours } : {}) },
    }));
  }
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}${i + 1}`, role }));
}

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

function raceSignal<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () =>
      reject(new Error(signal.reason instanceof Error ? signal.reason.message : "timed out"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

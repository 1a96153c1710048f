/**
 * Demo step for the multicast role: three real processes send concurrently and deliver
 * one identical order; one is killed with SIGKILL and the survivors agree and go on.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import type { ClusterNode } from "../harness/mod.ts";
import { pause } from "../harness/mod.ts";

const FAST = ["--heartbeat-ms", "50", "--fail-timeout-ms", "600", "--quiet"];

function deliveredIds(node: ClusterNode): string[] {
  return node.events().filter((e) => e.ev === "mc.delivered").map((e) => String(e.id));
}

async function until(what: string, check: () => boolean, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + 4_000;
  while (!check()) {
    if (performance.now() > deadline || signal.aborted) throw new Error(`timed out: ${what}`);
    await pause(20, signal);
  }
}

/** Total-order multicast across real processes, with a crash. */
export const multicastDemo: DemoStep = {
  name: "multicast",
  title: "total-order multicast chat: identical order on every node, survives kill -9",
  async run(ctx) {
    const specs = ctx.nodesFor("multicast", 3, "m").map((s) => ({
      ...s,
      args: [...(s.args ?? []), ...FAST],
    }));
    const cluster = await ctx.startCluster(specs);
    const nodes = cluster.nodes;
    const c = nodes[nodes.length - 1];
    const survivors = nodes.filter((n) => n !== c);
    const [a, b] = survivors;
    await until(
      "view of 3",
      () => nodes.every((n) => n.events().some((e) => e.ev === "view.changed")),
      ctx.signal,
    );
    const t0 = performance.now();
    const perNode = 20;
    await Promise.all(nodes.map(async (n) => {
      for (let i = 1; i <= perNode; i++) await n.ctl("send", [`hello ${i} from ${n.name}`]);
    }));
    const total = perNode * nodes.length;
    await until(
      "all delivered",
      () => nodes.every((n) => deliveredIds(n).length >= total),
      ctx.signal,
    );
    const ms = performance.now() - t0;
    const orders = nodes.map((n) => deliveredIds(n).join(","));
    const same = orders.every((o) => o === orders[0]);
    if (!same) throw new Error("nodes delivered different orders");
    const head = nodes[0].events().filter((e) => e.ev === "mc.delivered").slice(0, 3)
      .map((e) => `[${e.lamport}] ${e.from}: ${e.body}`).join(" | ");

    await c.kill("SIGKILL");
    const mark = survivors.map((n) => n.mark());
    const k0 = performance.now();
    await until(
      "view without the dead",
      () =>
        survivors.every((n, i) => n.events().slice(mark[i]).some((e) => e.ev === "view.changed")),
      ctx.signal,
    );
    const viewMs = performance.now() - k0;
    await a.ctl("send", ["still here after the crash"]);
    await until(
      "delivery after crash",
      () => survivors.every((n) => deliveredIds(n).length > total),
      ctx.signal,
    );
    const after = survivors.map((n) => deliveredIds(n).join(","));
    if (after.some((o) => o !== after[0])) throw new Error("survivors delivered different orders");
    const history = await b.ctl("history", ["1"]);
    const last = (history.entries as Array<Record<string, unknown>>)[0];
    return [
      `${nodes.length} nodes (${
        nodes.map((n) => n.address).join(", ")
      }); ${total} messages sent concurrently via ctl`,
      `every node delivered all ${total} in one identical order in ${
        ms.toFixed(0)
      } ms; first: ${head}`,
      `kill -9 ${c.name}: survivors installed a new view after ${
        viewMs.toFixed(0)
      } ms and agree on ${deliveredIds(a).length} deliveries`,
      `peerd ctl ${b.address} history 1 → #${last.idx} [${last.lamport}] ${last.from}: ${last.body}`,
    ];
  },
};

/**
 * Demo step for the ring: five real ring processes, concurrent lock/unlock from every
 * node, then a kill -9 of the holder and a regenerated token.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";

/** Token ring: contention, fences, a crashed holder and regeneration. */
export const ringDemo: DemoStep = {
  name: "ring",
  title: "token ring mutual exclusion: fences, contention, a crashed holder",
  async run(ctx) {
    const cluster = await ctx.startCluster(ctx.nodesFor("ring", 5, "n"));
    const nodes = cluster.nodes;
    const first = nodes[0];
    await first.waitForEvent((e) => e.ev === "token.created", { timeoutMs: 4000 });
    const fences: number[] = [];
    const t0 = performance.now();
    await Promise.all(nodes.map(async (node) => {
      for (let i = 0; i < 4; i++) {
        const got = await node.ctl("lock", ["--timeout", "5"]);
        fences.push(Number(got.fence));
        await node.ctl("unlock");
      }
    }));
    const ms = performance.now() - t0;
    const sorted = [...fences].sort((a, b) => a - b);
    const unique = new Set(fences).size === fences.length;
    const victim = nodes[2];
    const held = await victim.ctl("lock", ["--timeout", "5"]);
    const mark = nodes.map((n) => n.mark());
    await victim.kill("SIGKILL");
    ctx.say(`killed ${victim.name} (pid gone) while it held fence ${String(held.fence)}`);
    const after = await nodes[3].ctl("lock", ["--timeout", "10"]);
    await nodes[3].ctl("unlock");
    const regen = nodes.flatMap((n, i) => n.events().slice(mark[i])).filter((e) =>
      e.ev === "token.regenerated"
    );
    const status = await first.ctl("status");
    return [
      `5 ring processes ${
        nodes.map((n) => n.name).join(",")
      }, token generation 1 created by ${first.name}`,
      `${fences.length} lock/unlock pairs from 5 nodes at once in ${ms.toFixed(0)} ms; fences ${
        unique ? "all distinct" : "NOT distinct"
      }, ${sorted[0]} … ${sorted[sorted.length - 1]}`,
      `kill -9 ${victim.name} holding fence ${
        String(held.fence)
      } → ${regen.length} regeneration (gen ${regen.map((e) => String(e.gen)).join(",")}); ${
        nodes[3].name
      } then locked with fence ${String(after.fence)}`,
      `${first.name} status: alive=${JSON.stringify(status.alive)} gen=${
        String(status.gen)
      } fences_issued=${String(status.fences_issued)}`,
    ];
  },
};

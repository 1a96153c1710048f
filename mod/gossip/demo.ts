/**
 * Demo step for the gossip role: five real nodes join through one seed, a value spreads
 * to all of them, a crashed node is detected and marked down.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import { pause } from "../harness/mod.ts";

const FAST = [
  "--gossip-interval",
  "50",
  "--anti-entropy-interval",
  "300",
  "--probe-interval",
  "150",
  "--probe-timeout",
  "60",
  "--suspect-timeout",
  "500",
];

/** Gossip: join via a seed, spread, coverage, failure detection. */
export const gossipDemo: DemoStep = {
  name: "gossip",
  title: "gossip: join through one seed, spread a value to every node, detect a crash",
  async run(ctx) {
    const specs = ctx.nodesFor("gossip", 5, "g");
    const first = specs[0].name;
    const cluster = await ctx.startCluster(specs.map((s, i) => ({
      ...s,
      args: [...(s.args ?? []), ...FAST, ...(i === 0 ? [] : ["--seeds", first])],
    })));
    const [origin, ...others] = cluster.nodes;
    ctx.say(
      `${cluster.nodes.length} gossip nodes started; all but ${origin.name} know only ${first}`,
    );
    const joined = performance.now();
    for (let i = 0; i < 200; i++) {
      const counts = await Promise.all(
        cluster.nodes.map(async (n) =>
          ((await n.ctl("status")).members as { alive: number }).alive
        ),
      );
      if (counts.every((c) => c === cluster.nodes.length)) break;
      await pause(25, ctx.signal);
    }
    const joinMs = performance.now() - joined;
    const marks = others.map((n) => n.mark());
    const t0 = performance.now();
    const reply = await origin.ctl("spread", ["greeting", "hello", "gossip"]);
    const learned = await Promise.all(
      others.map((n, i) =>
        n.waitForEvent((e) => e.ev === "rumor.learned" && e.key === "greeting", {
          timeoutMs: 4000,
          from: marks[i],
        })
      ),
    );
    const coverMs = performance.now() - t0;
    const maxHops = Math.max(...learned.map((e) => Number(e.hops)));
    const value = await others[others.length - 1].ctl("get", ["greeting"]);
    const victim = others[others.length - 1];
    const mark = origin.mark();
    await victim.kill("SIGKILL");
    const t1 = performance.now();
    await origin.waitForEvent((e) => e.ev === "member.down" && e.peer === victim.name, {
      timeoutMs: 4000,
      from: mark,
    });
    const downMs = performance.now() - t1;
    const version = reply.version as { clock: number; node: string };
    return [
      `membership: every node saw all ${cluster.nodes.length} members alive ${
        joinMs.toFixed(0)
      } ms after start (one seed each)`,
      `spread greeting="hello gossip" at ${origin.name} (version ${version.clock}@${version.node}): all ${others.length} others learned it in ${
        coverMs.toFixed(0)
      } ms, at most ${maxHops} hops`,
      `peerd ctl ${victim.address} get greeting → ${JSON.stringify(value.value)}`,
      `kill -9 ${victim.name}: ${origin.name} marked it down after ${
        downMs.toFixed(0)
      } ms (SWIM probe, indirect probes, suspicion)`,
    ];
  },
};

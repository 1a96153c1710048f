/**
 * Demo step for the leader/follower job: `peerd --role leader --spawn 6` as a real process
 * (an embedded queue and six follower processes), its lists and verdict.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";

/** The leader/follower demo step. */
export const leaderDemo: DemoStep = {
  name: "leader",
  title: "leader/follower: 6 followers take random turns through the embedded queue",
  async run(ctx) {
    const cluster = await ctx.startCluster([{
      name: "lead",
      role: "leader",
      args: ["--spawn", "6"],
    }]);
    const leader = cluster.nodes[0];
    const verdict = await leader.waitForEvent("verdict", { timeoutMs: 5_000, signal: ctx.signal });
    const code = await leader.exited(5_000);
    const out = leader.stdout.trim().split("\n");
    const order = leader.events().filter((e) => e.ev === "grant").map((e) => e.follower);
    return [
      `peerd --role leader --spawn 6 → exit ${code}, verdict ok=${String(verdict.ok)}`,
      `turns granted in random order: ${order.join(" → ")}`,
      out[0] ?? "(no output)",
      `… ${out.length - 2} more identical lines`,
      out.at(-1) ?? "",
    ];
  },
};

/**
 * CPU time of the pure protocol cores on fixed, seeded workloads (no sockets, one process):
 * gossip `simulate()` of 20,000 nodes with 5 % loss (rumor mongering and anti-entropy),
 * and a multicast `SimGroup` of 5 members sending for 20 virtual seconds with a crash and a
 * rejoin. The same seeds give the same work (the `work` field shows it), so two trees
 * (before/after a change) compare by these figures even on a busy machine; run them
 * alternately. One JSON line per figure on stdout.
 *
 *     deno run -A bench/core_cpu_bench.ts [--rounds 3]
 *
 * @module
 */
import process from "node:process";
import { simulate } from "../mod/gossip/mod.ts";
import { SimGroup } from "../mod/multicast/mod.ts";

const at = Deno.args.indexOf("--rounds");
const rounds = at >= 0 ? Number(Deno.args[at + 1]) : 3;

/** CPU ms (user + system) of `fn`. */
function cpuMs(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** What a run did, to show both trees did the same work. */
let work = "";

function gossipRun(): void {
  const r = simulate({ nodes: 20_000, seed: 3, loss: 0.05 });
  if (r.roundsToFullCoverage === null) throw new Error("the gossip run did not converge");
  work = `${r.roundsToFullCoverage} rounds, ` +
    `${r.messagesPerNodeUntilQuiet.toFixed(2)} messages/node`;
}

function multicastRun(): void {
  const g = new SimGroup({ n: 5, seed: 5 });
  g.runUntil(() => g.settled(), "the first view");
  g.run(8_000, { sendEveryMs: 5 });
  g.crash("m3");
  g.run(4_000, { sendEveryMs: 5 });
  g.restart("m3");
  g.run(8_000, { sendEveryMs: 5 });
  g.runUntil(() => g.settled(), "one view again", 60_000);
  work = `${g.histories.get("m1")!.count} messages delivered, ${g.net.delivered} frames`;
}

const best = (xs: number[]) => Math.min(...xs);
for (
  const [figure, fn] of [["gossip_sim_20000", gossipRun], [
    "multicast_sim_5x20s",
    multicastRun,
  ]] as const
) {
  fn(); // warm up the JIT
  const runs = Array.from({ length: rounds }, () => cpuMs(fn));
  console.log(JSON.stringify({
    bench: "core_cpu",
    figure,
    value: Math.round(best(runs)),
    unit: "cpu ms (best of runs)",
    runs: runs.map(Math.round),
    work,
  }));
}

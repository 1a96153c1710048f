/**
 * `peerd gossip-sim`: runs the gossip protocol on N simulated nodes (one process, virtual
 * network, seeded randomness, message loss) and prints rounds to full coverage and
 * messages per node beside log2 N + ln N.
 *
 * @module
 */
import type { Command } from "commander";
import { printJson } from "../ctl/mod.ts";
import { type CommandDefinition, UsageError } from "../process/mod.ts";
import type { StopRule } from "./node.ts";
import { simulate, type SimulationResult } from "./simulation.ts";

function num(value: string, flag: string, min: number, max: number, integer = true): number {
  const n = Number(value);
  if (
    value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min ||
    n > max
  ) {
    throw new UsageError(
      `gossip-sim: ${flag} must be ${
        integer ? "an integer" : "a number"
      } in ${min}..${max}, got "${value}"`,
    );
  }
  return n;
}

function stopRule(value: string): StopRule {
  if (value !== "coin" && value !== "counter") {
    throw new UsageError(`gossip-sim: --stop-rule must be coin or counter, got "${value}"`);
  }
  return value;
}

/** The lines `gossip-sim` prints for one result. */
export function formatSimulation(r: SimulationResult): string[] {
  const bound = r.theoreticalRounds;
  const full = r.roundsToFullCoverage;
  const verdict = full === null
    ? "never reached"
    : `${full} rounds (log2 N + ln N = ${bound.toFixed(2)}; target ≤ ${(bound + 2).toFixed(2)}: ${
      full <= bound + 2 ? "met" : "missed"
    })`;
  return [
    `gossip simulation: N=${r.nodes} fanout=${r.fanout} k=${r.k} stop=${r.stopRule} loss=${
      (r.loss * 100).toFixed(0)
    }% seed=${r.seed} anti-entropy ${
      r.antiEntropyEvery > 0 ? `every ~${r.antiEntropyEvery} rounds` : "off"
    }${r.swim ? `; SWIM on, all joined through s0 in ${r.joinRounds ?? "—"} rounds` : ""}`,
    `rounds to full coverage${
      r.crashed > 0 ? ` of the ${r.nodes - r.crashed} live nodes (${r.crashed} crashed)` : ""
    }: ${verdict}`,
    `messages per node to full coverage: ${r.messagesPerNode.toFixed(2)} (rumor pushes ${
      r.rumorMessagesPerNode.toFixed(2)
    }); until quiet${r.quietRound === null ? "" : ` (round ${r.quietRound})`}: ${
      r.messagesPerNodeUntilQuiet.toFixed(2)
    }`,
    `learned by rumor: ${r.learnedByRumor} of ${r.nodes - r.crashed - 1}, by anti-entropy: ${
      r.coverageByRound[r.coverageByRound.length - 1] - 1 - r.learnedByRumor
    }${
      r.bytesPerNodePerRound === undefined
        ? ""
        : `; ${r.bytesPerNodePerRound.toFixed(1)} bytes per node per round`
    }`,
    `coverage by round: ${r.coverageByRound.slice(0, (full ?? 40) + 1).join(" ")}`,
  ];
}

/** The `gossip-sim` subcommand. */
export const gossipSimCommand: CommandDefinition = {
  name: "gossip-sim",
  summary: "simulate gossip on 1,000–10,000 nodes: rounds to full coverage vs log2 N + ln N",
  register(program: Command): void {
    program
      .command("gossip-sim")
      .description(
        "run the gossip protocol on N simulated nodes (virtual network, seeded, with loss)",
      )
      .option("--nodes <n>", "number of nodes", "1000")
      .option("--fanout <n>", "rumor fanout", "3")
      .option("--k <n>", "stop rule: stop spreading a known rumor with probability 1/k", "5")
      .option("--stop-rule <rule>", "coin (stop with probability 1/k) or counter (after k)", "coin")
      .option("--loss <p>", "message loss probability, 0 ≤ p < 1", "0")
      .option("--seed <n>", "random seed", "1")
      .option(
        "--anti-entropy-every <rounds>",
        "mean rounds between anti-entropy exchanges (0: off)",
        "5",
      )
      .option("--crash <fraction>", "share of nodes crashed before the write (0 ≤ f < 1)", "0")
      .option("--max-rounds <n>", "give up after this many rounds", "500")
      .option("--swim", "run SWIM membership too (per-node member tables; N ≤ 2000)")
      .option("--bytes", "measure frame bytes per node per round (slower)")
      .option("--json", "print the result as one JSON line instead of text")
      .action((opts: Record<string, string | boolean | undefined>) => {
        const result = simulate({
          nodes: num(String(opts.nodes), "--nodes", 2, opts.swim ? 2_000 : 100_000),
          fanout: num(String(opts.fanout), "--fanout", 1, 100),
          k: num(String(opts.k), "--k", 1, 1_000),
          stopRule: stopRule(String(opts.stopRule)),
          loss: num(String(opts.loss), "--loss", 0, 0.99, false),
          seed: num(String(opts.seed), "--seed", 0, 2 ** 32 - 1),
          antiEntropyEvery: num(String(opts.antiEntropyEvery), "--anti-entropy-every", 0, 1_000),
          swim: opts.swim === true,
          crash: num(String(opts.crash), "--crash", 0, 0.99, false),
          maxRounds: num(String(opts.maxRounds), "--max-rounds", 1, 100_000),
          measureBytes: opts.bytes === true,
        });
        if (opts.json) printJson(result, false);
        else for (const line of formatSimulation(result)) console.log(line);
        Deno.exitCode = result.roundsToFullCoverage === null ? 1 : 0;
      });
  },
};

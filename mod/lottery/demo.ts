/**
 * Demo step: a lottery server and three agencies as real processes; the draw and each
 * agency's own winners.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import { type Bet, DEFAULT_WINNING_NUMBER, formatBetsCsv } from "./bet.ts";
import { generateBets } from "./generate.ts";

/** Writes agency files of `count` bets with winners planted at `winnerRows`. */
export async function writeAgencyFile(
  path: string,
  agency: number,
  count: number,
  winnerRows: number[],
  seed = 1,
): Promise<Bet[]> {
  const bets = generateBets(agency, count, seed).map((b): Bet =>
    b[4] === DEFAULT_WINNING_NUMBER ? [b[0], b[1], b[2], b[3], 1] : b
  );
  for (const row of winnerRows) bets[row][4] = DEFAULT_WINNING_NUMBER;
  await Deno.writeTextFile(path, formatBetsCsv(bets));
  return bets;
}

/** The lottery demo step. */
export const lotteryDemo: DemoStep = {
  name: "lottery",
  title:
    "lottery: 3 agencies upload bets in batches, the server draws, each learns only its winners",
  async run(ctx) {
    await Deno.mkdir(ctx.dir, { recursive: true });
    const plan = [[0, 99], [50], []];
    for (let a = 1; a <= 3; a++) {
      await writeAgencyFile(`${ctx.dir}/agency-${a}.csv`, a, 100, plan[a - 1]);
    }
    const server = ctx.nodesFor("lottery-server", 1, "lottery")[0];
    const cluster = await ctx.startCluster([
      { ...server, args: ["--agencies", "3"] },
      ...[1, 2, 3].map((a) => ({
        name: `agency${a}`,
        role: "agency",
        unlisted: true,
        deferred: true,
        readyEvent: null,
      })),
    ]);
    const srv = cluster.nodes[0];
    const lines = [
      `lottery server on ${srv.address}, 3 agencies × 100 bets (winners planted at rows {0,99}, {50}, {})`,
    ];
    for (let a = 1; a <= 3; a++) {
      const node = cluster.node(`agency${a}`);
      node.spec.args = [
        "--agency",
        String(a),
        "--bets",
        `${ctx.dir}/agency-${a}.csv`,
        "--server",
        srv.address,
      ];
    }
    const agencies = [1, 2, 3].map((a) => cluster.node(`agency${a}`));
    await Promise.all(agencies.map((n) => n.start()));
    const codes = await Promise.all(agencies.map((n) => n.exited(20_000)));
    if (codes.some((c) => c !== 0)) throw new Error(`agency exit codes ${codes.join(", ")}`);
    for (const n of agencies) {
      const count = /cant_ganadores: (\d+)/.exec(n.stdout)?.[1];
      const docs = [...n.stdout.matchAll(/ganador: (\d+)/g)].map((m) => m[1]);
      lines.push(
        `${n.name}: cant_ganadores: ${count} ${docs.length ? `(${docs.join(", ")})` : ""}`,
      );
    }
    const status = await srv.ctl("status");
    lines.push(
      `server: ${String(status.bets)} bets stored, drawn=${String(status.drawn)}, winners=${
        String(status.winners)
      }`,
    );
    lines.push(
      `server log: ${srv.stdout.split("\n").filter((l) => l.includes("sorteo")).join("")}`,
    );
    return lines;
  },
};

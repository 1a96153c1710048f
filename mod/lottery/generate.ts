/**
 * `peerd lottery-gen`: writes realistic agency files (`agency-N.csv`) deterministically
 * from a seed.
 *
 * @module
 */
import type { Command } from "commander";
import type { CommandDefinition } from "../process/mod.ts";
import { type Bet, formatBetsCsv } from "./bet.ts";
import { seededRandom } from "../random/mod.ts";

const FIRST = [
  "Santiago",
  "Mateo",
  "Valentina",
  "Sofía",
  "Martín",
  "Lucía",
  "Joaquín",
  "Camila",
  "Tomás",
  "Martina",
  "Benjamín",
  "Agustina",
  "Nicolás",
  "Florencia",
  "Ramón",
  "Inés",
  "José",
  "María",
  "Ángel",
  "Belén",
];
const LAST = [
  "González",
  "Rodríguez",
  "Fernández",
  "López",
  "Martínez",
  "Pérez",
  "García",
  "Sánchez",
  "Romero",
  "Sosa",
  "Álvarez",
  "Torres",
  "Ruiz",
  "Ramírez",
  "Flores",
  "Benítez",
  "Acosta",
  "Medina",
  "Núñez",
  "Peña",
];

/** Generates `count` bets for `agency` from `seed`. */
export function generateBets(agency: number, count: number, seed: number): Bet[] {
  const rand = seededRandom(seed * 7919 + agency);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const bets: Bet[] = [];
  for (let i = 0; i < count; i++) {
    const year = 1940 + Math.floor(rand() * 66);
    const month = 1 + Math.floor(rand() * 12);
    const day = 1 + Math.floor(rand() * 28);
    bets.push([
      pick(FIRST),
      pick(LAST),
      String(10_000_000 + Math.floor(rand() * 40_000_000)),
      `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`,
      Math.floor(rand() * 10_000),
    ]);
  }
  return bets;
}

/** The `lottery-gen` subcommand. */
export const lotteryGenCommand: CommandDefinition = {
  name: "lottery-gen",
  summary: "write realistic agency bet files (agency-N.csv) from a seed",
  register(program: Command): void {
    program
      .command("lottery-gen")
      .description(
        "write agency-1.csv … agency-N.csv with M bets each, deterministically from --seed",
      )
      .requiredOption("--agencies <n>", "number of agencies")
      .requiredOption("--bets <m>", "bets per agency")
      .requiredOption("--out <dir>", "output directory")
      .option("--seed <s>", "random seed", "1")
      .action(async (o: { agencies: string; bets: string; out: string; seed: string }) => {
        const agencies = Number(o.agencies);
        const bets = Number(o.bets);
        const seed = Number(o.seed);
        if (![agencies, bets, seed].every(Number.isInteger) || agencies < 1 || bets < 0) {
          console.error(
            "peerd lottery-gen: --agencies (≥ 1), --bets (≥ 0) and --seed must be integers",
          );
          Deno.exitCode = 2;
          return;
        }
        await Deno.mkdir(o.out, { recursive: true });
        for (let a = 1; a <= agencies; a++) {
          const path = `${o.out}/agency-${a}.csv`;
          await Deno.writeTextFile(path, formatBetsCsv(generateBets(a, bets, seed)));
          console.log(path);
        }
      });
  },
};

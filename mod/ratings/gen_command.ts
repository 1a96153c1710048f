/**
 * `peerd ratings-gen --out DIR`: writes the synthetic dataset (MovieLens-small shape, from
 * a seed) or, with `--import-movielens DIR`, checks and copies a real MovieLens
 * `movies.csv`/`ratings.csv`, as `DIR/movies.csv` and `DIR/ratings.csv` for `--dataset`.
 *
 * @module
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import type { CommandDefinition } from "../process/mod.ts";
import {
  type Dataset,
  DatasetError,
  DEFAULT_SEED,
  generateDataset,
  readDatasetDir,
  writeDatasetDir,
} from "./dataset.ts";

function count(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("must be a non-negative integer");
  return Number(value);
}

/** The `ratings-gen` subcommand. */
export const ratingsGenCommand: CommandDefinition = {
  name: "ratings-gen",
  summary: "write the synthetic movie-ratings dataset (or import MovieLens CSVs) for --dataset",
  register(program: Command): void {
    program
      .command("ratings-gen")
      .description(
        "write DIR/movies.csv and DIR/ratings.csv: a synthetic MovieLens-small-shaped set " +
          "from a seed, or a checked copy of real MovieLens files",
      )
      .requiredOption("--out <dir>", "directory to write")
      .option("--seed <n>", "PRNG seed", count, DEFAULT_SEED)
      .option("--users <n>", "number of users", count, 610)
      .option("--movies <n>", "number of movies", count, 9700)
      .option("--ratings <n>", "number of ratings", count, 100_000)
      .option("--import-movielens <dir>", "read movies.csv and ratings.csv from DIR instead")
      .action(async (opts: {
        out: string;
        seed: number;
        users: number;
        movies: number;
        ratings: number;
        importMovielens?: string;
      }) => {
        const t0 = performance.now();
        let data: Dataset;
        try {
          data = opts.importMovielens
            ? await readDatasetDir(opts.importMovielens)
            : generateDataset({
              seed: opts.seed,
              users: opts.users,
              movies: opts.movies,
              ratings: opts.ratings,
            });
          await writeDatasetDir(opts.out, data);
        } catch (err) {
          console.error(
            `peerd ratings-gen: ${
              err instanceof DatasetError
                ? err.message
                : `Cannot write ${opts.out}: ${(err as Error).message}`
            }`,
          );
          Deno.exitCode = 1;
          return;
        }
        const users = new Set(data.ratings.map((r) => r.user)).size;
        console.log(
          `wrote ${opts.out}/movies.csv (${data.movies.length} movies) and ${opts.out}/ratings.csv (${data.ratings.length} ratings by ${users} users) in ${
            Math.round(performance.now() - t0)
          } ms`,
        );
        Deno.exitCode = 0;
      });
  },
};

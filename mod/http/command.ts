/**
 * `peerd http-token`: prints the bearer token of the nodes' HTTP endpoints, derived from
 * the cluster secret (`--secret`, `PEERD_SECRET`, or the `secret` of `--peers FILE`).
 *
 * @module
 */
import type { Command } from "commander";
import { loadPeersFile } from "../config/mod.ts";
import { type CommandDefinition, UsageError } from "../process/mod.ts";
import { httpToken } from "./token.ts";

/** The `http-token` subcommand. */
export const httpTokenCommand: CommandDefinition = {
  name: "http-token",
  summary: "print the bearer token of the nodes' --http endpoints (from the cluster secret)",
  register(program: Command): void {
    program
      .command("http-token")
      .description(
        'print the bearer token for --http endpoints: hex HMAC-SHA256(secret, "peerd-http")',
      )
      .option("--secret <secret>", "cluster secret")
      .option("--peers <file>", "take the secret from this peers.json")
      .action(async (opts: { secret?: string; peers?: string }) => {
        const secret = opts.secret ?? (opts.peers ? loadPeersFile(opts.peers).secret : undefined);
        if (!secret) {
          throw new UsageError("http-token: give --secret, PEERD_SECRET, or --peers with a secret");
        }
        console.log(await httpToken(secret));
        Deno.exitCode = 0;
      });
  },
};

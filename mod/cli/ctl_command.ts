/**
 * `peerd ctl <host:port> <cmd> [args…]`: sends one control command and prints the JSON
 * reply. Exit 0 on ok, 1 on an error reply or no connection, 2 on usage.
 *
 * @module
 */
import type { Command } from "commander";
import { loadTlsFiles, parseHostPort, type TlsFileOptions } from "../config/mod.ts";
import type { CommandDefinition } from "../process/mod.ts";
import { RemoteError } from "../wire/mod.ts";
import { ctlRequest, printJson } from "../ctl/mod.ts";

/** The `ctl` subcommand. */
export const ctlCommand: CommandDefinition = {
  name: "ctl",
  summary: "send a control command to a running node and print the JSON reply",
  register(program: Command): void {
    program
      .command("ctl")
      .description("send a control command (status, …) to a node and print the JSON reply")
      .argument("<address>", "the node's host:port")
      .argument("<cmd>", "command: status, help, or a role's own (lock, send, publish, …)")
      .argument("[args...]", "command arguments and --flags (`help` lists each command's)")
      // the command's own --flags go to the node (ctl's options are recognised anywhere)
      .allowUnknownOption()
      .option("--secret <secret>", "cluster secret", Deno.env.get("PEERD_SECRET"))
      .option("--tls-ca <file>", "dial TLS, verifying the node against this CA (PEM)")
      .option("--tls-cert <file>", "client certificate (PEM) for mutual TLS")
      .option("--tls-key <file>", "private key of --tls-cert (PEM)")
      .option("--timeout <seconds>", "how long to wait for the reply", "30")
      .option("--compact", "print the reply on one line")
      .action(
        async (
          address: string,
          cmd: string,
          args: string[],
          opts: { secret?: string; timeout: string; compact?: boolean } & TlsFileOptions,
        ) => {
          const target = parseHostPort(address, "ctl address");
          const timeoutS = Number(opts.timeout);
          if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
            console.error(
              `peerd ctl: --timeout must be a positive number of seconds, got "${opts.timeout}"`,
            );
            Deno.exitCode = 2;
            return;
          }
          const tls = loadTlsFiles(opts, { node: false });
          try {
            const reply = await ctlRequest(target, cmd, args, {
              secret: opts.secret,
              tls,
              timeoutMs: timeoutS * 1000,
            });
            delete reply.rid;
            printJson(reply, !opts.compact);
            Deno.exitCode = 0;
          } catch (err) {
            if (err instanceof RemoteError) {
              delete err.frame.rid;
              printJson(err.frame, !opts.compact);
              console.error(`peerd ctl: ${err.message}`);
            } else {
              console.error(
                `peerd ctl: Cannot reach ${address}: ${
                  err instanceof Error ? err.message : String(err)
                }`,
              );
            }
            Deno.exitCode = 1;
          }
        },
      );
  },
};

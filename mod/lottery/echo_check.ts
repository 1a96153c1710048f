/**
 * `peerd echo-check HOST:PORT`: the course's echo check against any node that answers
 * `{t:"echo"}` (the echo role, the lottery server).
 *
 * @module
 */
import type { Command } from "commander";
import { loadTlsFiles, parseHostPort, type TlsFileOptions } from "../config/mod.ts";
import type { CommandDefinition } from "../process/mod.ts";
import { RpcClient } from "../wire/mod.ts";

/** The `echo-check` subcommand. */
export const echoCheckCommand: CommandDefinition = {
  name: "echo-check",
  summary: "check an echo server: prints action: test_echo_server | result: success|fail",
  register(program: Command): void {
    program
      .command("echo-check")
      .description("send a random message to an echo server and check it comes back")
      .argument("<address>", "host:port")
      .option("--secret <secret>", "cluster secret")
      .option("--tls-ca <file>", "dial TLS, verifying the server against this CA (PEM)")
      .option("--tls-cert <file>", "client certificate (PEM) for mutual TLS")
      .option("--tls-key <file>", "private key of --tls-cert (PEM)")
      .option("--timeout <seconds>", "time limit", "5")
      .action(async (address: string, o: { secret?: string; timeout: string } & TlsFileOptions) => {
        const target = parseHostPort(address, "echo-check address");
        const tls = loadTlsFiles(o, { node: false });
        const data = `echo-check ${crypto.randomUUID()}`;
        let ok = false;
        try {
          const client = await RpcClient.connect(target, {
            name: "echo-check",
            secret: o.secret,
            tls,
            timeoutMs: Number(o.timeout) * 1000,
          });
          try {
            const reply = await client.request({ t: "echo", data }, {
              timeoutMs: Number(o.timeout) * 1000,
            });
            ok = reply.data === data;
          } finally {
            await client.close();
          }
        } catch (err) {
          console.error(`peerd echo-check: ${err instanceof Error ? err.message : String(err)}`);
        }
        console.log(`action: test_echo_server | result: ${ok ? "success" : "fail"}`);
        Deno.exitCode = ok ? 0 : 1;
      });
  },
};

/**
 * `peerd queue-ctl [--queue HOST:PORT] <command> [args]`: the queue client for people and
 * scripts. Commands: `queues` (depths), `declare <queue>`, `declare-exchange <name>
 * <type>`, `bind <queue> <exchange> [key]`, `publish <exchange|-> <key> <text>` (waits for
 * the confirm), `get <queue>`, `consume <queue>` (one JSON line per message; `--hold`
 * keeps them unacked), `purge <queue>`, `delete <queue>`.
 *
 * @module
 */
import type { Command } from "commander";
import { loadTlsFiles, parseHostPort, type TlsFileOptions } from "../config/mod.ts";
import { printJson } from "../ctl/mod.ts";
import type { CommandDefinition } from "../process/mod.ts";
import { Backoff, RemoteError, retryConnect } from "../wire/mod.ts";
import { QueueClient, type QueueMessage } from "./client.ts";

const decoder = new TextDecoder();

/** Default queue server address. */
export const DEFAULT_QUEUE = "127.0.0.1:7501";

interface QueueCtlOptions extends TlsFileOptions {
  queue: string;
  secret?: string;
  transient?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  maxLength?: string;
  prefetch?: string;
  ack: boolean;
  hold?: boolean;
  count?: string;
  mandatory?: boolean;
  heartbeat?: string;
  reconnect?: boolean;
}

class CliUsage extends Error {}

function intOption(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new CliUsage(`${what} must be an integer ≥ 0`);
  return n;
}

function messageLine(m: QueueMessage): string {
  return JSON.stringify({
    queue: m.queue,
    exchange: m.exchange,
    key: m.routingKey,
    body: decoder.decode(m.body),
    redelivered: m.redelivered,
    dt: m.deliveryTag,
  });
}

async function run(
  ch: QueueClient,
  cmd: string,
  args: string[],
  o: QueueCtlOptions,
): Promise<void> {
  const need = (n: number, usage: string) => {
    if (args.length < n) throw new CliUsage(`usage: peerd queue-ctl ${usage}`);
  };
  switch (cmd) {
    case "queues": {
      const { queues } = await ch.list();
      printJson({ queues });
      return;
    }
    case "declare": {
      need(1, "declare <queue> [--transient] [--exclusive] [--auto-delete] [--max-length N]");
      printJson(
        await ch.assertQueue(args[0], {
          durable: !o.transient,
          exclusive: o.exclusive,
          autoDelete: o.autoDelete,
          maxLength: intOption(o.maxLength, "--max-length"),
        }),
      );
      return;
    }
    case "declare-exchange": {
      need(2, "declare-exchange <name> <direct|fanout|topic> [--transient]");
      const type = args[1];
      if (type !== "direct" && type !== "fanout" && type !== "topic") {
        throw new CliUsage(`exchange type must be direct, fanout or topic, got "${type}"`);
      }
      printJson(await ch.assertExchange(args[0], type, { durable: !o.transient }));
      return;
    }
    case "bind": {
      need(2, "bind <queue> <exchange> [key]");
      await ch.bindQueue(args[0], args[1], args[2] ?? "");
      printJson({ queue: args[0], exchange: args[1], key: args[2] ?? "" });
      return;
    }
    case "publish": {
      need(3, "publish <exchange|-> <key> <text…> [--transient] [--mandatory]");
      await ch.confirmSelect();
      let returned = false;
      ch.onReturn = () => returned = true;
      const exchange = args[0] === "-" ? "" : args[0];
      await ch.publishConfirmed(exchange, args[1], args.slice(2).join(" "), {
        persistent: !o.transient,
        mandatory: o.mandatory,
      });
      printJson({ confirmed: true, returned });
      return;
    }
    case "get": {
      need(1, "get <queue>");
      const m = await ch.get(args[0], { noAck: true });
      console.log(m ? messageLine(m) : JSON.stringify({ empty: true }));
      return;
    }
    case "purge":
    case "delete": {
      need(1, `${cmd} <queue>`);
      printJson(cmd === "purge" ? await ch.purgeQueue(args[0]) : await ch.deleteQueue(args[0]));
      return;
    }
    case "consume": {
      need(1, "consume <queue> [--prefetch N] [--no-ack] [--hold] [--count N]");
      const count = intOption(o.count, "--count");
      const prefetch = intOption(o.prefetch, "--prefetch");
      await consumeOnce(ch, args[0], o, count, prefetch, 0);
      return;
    }
    default:
      throw new CliUsage(
        `unknown command "${cmd}"; commands: queues, declare, declare-exchange, bind, publish, get, consume, purge, delete`,
      );
  }
}

/**
 * Consumes from `queue` on `ch` until `count` messages (with `seen` already counted), a
 * signal, or the connection closes; resolves with the new count and whether a signal came.
 */
async function consumeOnce(
  ch: QueueClient,
  queue: string,
  o: QueueCtlOptions,
  count: number | undefined,
  prefetch: number | undefined,
  seen: number,
): Promise<{ seen: number; stopped: boolean }> {
  let stopped = false;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const stop = () => {
    stopped = true;
    resolve();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  ch.onClose = () => resolve();
  try {
    await ch.consume(queue, (m) => {
      console.log(messageLine(m));
      if (o.ack && !o.hold) ch.ack(m);
      if (count !== undefined && ++seen >= count) stop();
    }, { noAck: !o.ack, prefetch });
    await done;
    await ch.sync().catch(() => {});
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  }
  return { seen, stopped };
}

/** Pacing of `consume --reconnect`: 50 ms doubling to 1 s, ±50 % jitter (capped at 1 s). */
const RECONNECT_BACKOFF = { initialMs: 50, maxMs: 1_000, jitter: 0.5 } as const;

/**
 * `consume --reconnect`: consumes, and when the connection is lost (a server restart, or
 * a heartbeat that found it silent) connects again with capped, jittered backoff and goes
 * on, until `--count` or a signal. Messages unacked when a connection was lost come again,
 * marked `redelivered`; gives up after 60 s without a connection.
 */
async function consumeReconnecting(
  connect: () => Promise<QueueClient>,
  queue: string,
  o: QueueCtlOptions,
): Promise<void> {
  const count = intOption(o.count, "--count");
  const prefetch = intOption(o.prefetch, "--prefetch");
  let seen = 0;
  const backoff = new Backoff(RECONNECT_BACKOFF);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    for (let session = 0; session < 10_000 && !stop.signal.aborted; session++) {
      let ch: QueueClient;
      try {
        ch = await retryConnect(connect, {
          backoff,
          signal: stop.signal,
          giveUpAfterMs: 60_000,
          fatal: (err) => err instanceof RemoteError,
        });
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
      try {
        const r = await consumeOnce(ch, queue, o, count, prefetch, seen);
        seen = r.seen;
        if (r.stopped) return;
        console.error(`peerd queue-ctl: connection lost after ${seen} messages; reconnecting`);
      } finally {
        await ch.close();
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/** The `queue-ctl` subcommand. */
export const queueCtlCommand: CommandDefinition = {
  name: "queue-ctl",
  summary: "queue client: declare, bind, publish, get, consume, list queues with depths",
  register(program: Command): void {
    program
      .command("queue-ctl")
      .description(
        "talk to a queue server (or a leader's embedded queue): queues, declare, " +
          "declare-exchange, bind, publish, get, consume, purge, delete",
      )
      .argument("<cmd>", "command")
      .argument("[args...]", "its arguments")
      .option("--queue <host:port>", "queue server", Deno.env.get("PEERD_QUEUE") ?? DEFAULT_QUEUE)
      .option("--secret <secret>", "cluster secret", Deno.env.get("PEERD_SECRET"))
      .option("--tls-ca <file>", "dial TLS, verifying the server against this CA (PEM)")
      .option("--tls-cert <file>", "client certificate (PEM) for mutual TLS")
      .option("--tls-key <file>", "private key of --tls-cert (PEM)")
      .option("--transient", "declare: not durable; publish: not persistent")
      .option("--exclusive", "declare: exclusive to this connection")
      .option("--auto-delete", "declare: delete when the last consumer goes")
      .option("--max-length <n>", "declare: most ready messages")
      .option("--mandatory", "publish: return the message when no queue takes it")
      .option("--prefetch <n>", "consume: most unacked messages")
      .option("--no-ack", "consume: automatic acknowledgement")
      .option("--hold", "consume: never ack (messages go back when this process ends)")
      .option("--count <n>", "consume: stop after n messages")
      .option(
        "--heartbeat <ms>",
        "heartbeat interval (0: none); a silent server is dropped after 3",
        "1000",
      )
      .option("--reconnect", "consume: reconnect when the connection is lost, and go on")
      .action(async (cmd: string, args: string[], o: QueueCtlOptions) => {
        let ch: QueueClient | undefined;
        try {
          const address = parseHostPort(o.queue, "--queue");
          const heartbeatMs = intOption(o.heartbeat, "--heartbeat") || undefined;
          if (heartbeatMs !== undefined && heartbeatMs < 50) {
            throw new CliUsage("--heartbeat must be 0 (none) or at least 50 ms");
          }
          const tls = loadTlsFiles(o, { node: false });
          const connect = () =>
            QueueClient.connect(address, {
              name: "queue-ctl",
              secret: o.secret,
              tls,
              heartbeatMs,
            });
          if (cmd === "consume" && o.reconnect) {
            if (args.length < 1) throw new CliUsage("usage: consume <queue> --reconnect");
            await consumeReconnecting(connect, args[0], o);
          } else {
            ch = await connect();
            await run(ch, cmd, args, o);
          }
          Deno.exitCode = 0;
        } catch (err) {
          if (err instanceof CliUsage) {
            console.error(`peerd queue-ctl: ${err.message}`);
            Deno.exitCode = 2;
          } else if (err instanceof RemoteError) {
            console.error(`peerd queue-ctl: ${err.message}`);
            Deno.exitCode = 1;
          } else {
            console.error(
              `peerd queue-ctl: Cannot ${cmd}: ${err instanceof Error ? err.message : String(err)}`,
            );
            Deno.exitCode = (err as { exitCode?: number }).exitCode === 2 ? 2 : 1;
          }
        } finally {
          await ch?.close();
        }
      });
  },
};

/**
 * `peerd console --peers FILE [--listen 127.0.0.1:PORT]`: one live web page for a whole
 * cluster. Prints the page's URL and serves until SIGINT/SIGTERM.
 *
 * @module
 */
import type { Command } from "commander";
import { type ClusterConfig, loadPeersFile, parseHostPort } from "../config/mod.ts";
import { Logger } from "../events/mod.ts";
import { httpToken } from "../http/mod.ts";
import { aborted, type CommandDefinition, installShutdownSignals } from "../process/mod.ts";
import { ConsoleServer } from "./server.ts";
import { ClusterWatch } from "./watch.ts";

/** The console's default listen address. */
export const CONSOLE_DEFAULT_LISTEN = "127.0.0.1:7900";

/** Options of {@linkcode startConsole}. */
export interface ConsoleOptions {
  /** Where to serve the page. @default {{hostname: "127.0.0.1", port: 7900}} */
  listen?: { hostname: string; port: number };
  /** Cluster secret (else the peers file's). */
  secret?: string;
  /** Poll interval. @default {1000} */
  intervalMs?: number;
  /** Stops the console. */
  signal: AbortSignal;
}

/** A running console. */
export interface RunningConsole extends AsyncDisposable {
  /** The page's URL. */
  readonly url: string;
  /** The cluster watcher. */
  readonly watch: ClusterWatch;
  /** Stops the page server and the watchers. */
  close(): Promise<void>;
}

/** Starts watching `cluster` and serving its page. */
export async function startConsole(
  cluster: ClusterConfig,
  options: ConsoleOptions,
): Promise<RunningConsole> {
  const secret = options.secret ?? cluster.secret;
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const watch = new ClusterWatch(cluster, {
    secret,
    token: secret ? await httpToken(secret) : undefined,
    intervalMs: options.intervalMs,
    signal,
  });
  let server: ConsoleServer;
  try {
    server = new ConsoleServer(watch, {
      hostname: options.listen?.hostname ?? "127.0.0.1",
      port: options.listen?.port ?? 7900,
    });
  } catch (err) {
    stop.abort();
    await watch.closed;
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      stop.abort();
      await server.close();
      await watch.closed;
    })();
  return { url: server.url, watch, close, [Symbol.asyncDispose]: close };
}

/** The `console` subcommand. */
export const consoleCommand: CommandDefinition = {
  name: "console",
  summary:
    "serve a live web page of a whole cluster (status, events, diagrams) from its peers file",
  register(program: Command): void {
    program
      .command("console")
      .description("serve one live web page for the cluster of a peers file")
      .requiredOption("--peers <file>", "peers.json or machines.txt of the cluster")
      .option("--listen <host:port>", "where to serve the page", CONSOLE_DEFAULT_LISTEN)
      .option("--secret <secret>", "cluster secret (default: the peers file's)")
      .option("--interval-ms <ms>", "status poll interval", "1000")
      .action(
        async (opts: { peers: string; listen: string; secret?: string; intervalMs: string }) => {
          const cluster = loadPeersFile(opts.peers);
          const listen = parseHostPort(opts.listen, "--listen", { allowZero: true });
          const intervalMs = Number(opts.intervalMs);
          if (!Number.isInteger(intervalMs) || intervalMs < 50 || intervalMs > 60_000) {
            console.error(
              `peerd console: --interval-ms must be 50..60000, got "${opts.intervalMs}"`,
            );
            Deno.exitCode = 2;
            return;
          }
          const log = new Logger({ node: "console", role: "console" });
          const controller = new AbortController();
          const removeSignals = installShutdownSignals(controller, log);
          try {
            let running: RunningConsole;
            try {
              running = await startConsole(cluster, {
                listen,
                secret: opts.secret,
                intervalMs,
                signal: controller.signal,
              });
            } catch (err) {
              if (err instanceof Deno.errors.AddrInUse) {
                console.error(`peerd console: Cannot listen on ${opts.listen}: address in use`);
                Deno.exitCode = 1;
                return;
              }
              throw err;
            }
            try {
              console.log(`peerd console: ${cluster.nodes.length} nodes of ${cluster.source}`);
              console.log(`peerd console: open ${running.url}`);
              await aborted(controller.signal);
            } finally {
              await running.close();
            }
            Deno.exitCode = 0;
          } finally {
            removeSignals();
          }
        },
      );
  },
};

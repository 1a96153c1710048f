/**
 * The command line: `peerd --role <role> …` starts one role; `peerd <command> …` runs a
 * helper command. Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import {
  ConfigError,
  findNode,
  loadPeersFile,
  loadTlsFiles,
  parseHostPort,
  type TlsFileOptions,
} from "../config/mod.ts";
import { EventSink, isLogLevel, Logger, type LogLevel } from "../events/mod.ts";
import {
  installShutdownSignals,
  type OptionValues,
  type RoleContext,
  type RoleDefinition,
  type RoleOptions,
  UsageError,
} from "../process/mod.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME,
  DEFAULT_NODE_PENDING_BYTES,
  loadNodeTls,
  MIN_MAX_FRAME,
} from "../wire/mod.ts";
import { type NodeHttp, parseHttpListen, startNodeHttp } from "../http/mod.ts";
import {
  addEnvToOptions,
  parseIntOption,
  parseSizeOption,
  roleOptionValues,
  toCommanderOption,
} from "./options.ts";
import { checkNodeKeys, nodeOptionValues } from "./node_options.ts";
import { COMMANDS, ROLES } from "./registry.ts";

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

const COMMON_HELP = `Common options (every role; each also reads PEERD_<OPTION>, flags win):
  --name <node>          this node's entry in the peers file
  --peers <file>         peers.json or machines.txt
  --listen <host:port>   where to listen (default: the node's address in the peers file)
  --data <dir>           data directory (default ./data/<name>)
  --events <file|->      write events as JSON Lines (- for stdout)
  --secret <s>           cluster secret (both ends of every connection prove it)
  --tls-cert <file>      serve and dial TLS with this certificate (PEM)
  --tls-key <file>       the certificate's private key (PEM)
  --tls-ca <file>        CA that peers' certificates must chain to (mutual TLS)
  --log-level <level>    debug|info|warn|error (default info)
  --max-frame <size>     largest frame accepted (default 16MiB, at least 1KiB)
  --max-connections <n>  most connections served at once (default 1024)
  --max-pending <size>   bytes of requests awaiting replies, per node (default 128MiB)
  --http <host:port>     serve /healthz /readyz /status /metrics /events (off; host 127.0.0.1)`;

function globalHelp(): string {
  const width =
    Math.max(...ROLES.map((r) => r.name.length), ...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    `peerd ${VERSION} — one binary for every role of a small distributed system.`,
    "",
    "Usage:",
    "  peerd --role <role> [--name <node>] [--peers <peers.json|machines.txt>] [options]",
    "  peerd <command> [args…]",
    "",
    "Roles:",
    ...ROLES.map((r) => `  ${r.name.padEnd(width)}${r.summary}`),
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    COMMON_HELP,
    "",
    "`peerd --role <role> --help` lists a role's options; `peerd <command> --help` a command's.",
    "Quick start: `peerd --role demo` starts a local cluster of every role and shows what happens.",
  ].join("\n");
}

function roleArg(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--role") return argv[i + 1];
    if (argv[i].startsWith("--role=")) return argv[i].slice("--role=".length);
  }
  return Deno.env.get("PEERD_ROLE") || undefined;
}

function fail(message: string, code: number): number {
  console.error(`peerd: ${message}`);
  return code;
}

function buildRoleCommand(role: RoleDefinition): Command {
  const cmd = new Command("peerd")
    .usage(`--role ${role.name} [options]`)
    .description(`--role ${role.name}: ${role.summary}`)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) })
    .optionsGroup("Common options (every role):")
    .addOption(new Option("--role <role>", "the role to run").makeOptionMandatory())
    .option("--name <node>", "this node's name (its entry in the peers file)")
    .option("--peers <file>", "peers.json or machines.txt")
    .option("--listen <host:port>", "listen address (default: the node's entry in the peers file)")
    .option("--data <dir>", "data directory (default ./data/<name>)")
    .option("--events <file>", "write events as JSON Lines to a file, or - for stdout")
    .option("--secret <secret>", "cluster secret")
    .option("--tls-cert <file>", "TLS certificate (PEM) for this node's port and its links")
    .option("--tls-key <file>", "private key of --tls-cert (PEM)")
    .option("--tls-ca <file>", "CA (PEM) peers' certificates must chain to; makes TLS mutual")
    .addOption(
      new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"])
        .default("info"),
    )
    .addOption(
      new Option("--max-frame <size>", "largest frame accepted").argParser(parseSizeOption).default(
        DEFAULT_MAX_FRAME,
        "16MiB",
      ),
    )
    .addOption(
      new Option("--max-connections <n>", "most connections served at once").argParser(
        parseIntOption,
      ).default(DEFAULT_MAX_CONNECTIONS),
    )
    .addOption(
      new Option("--max-pending <size>", "bytes of requests awaiting replies, per node")
        .argParser(parseSizeOption).default(DEFAULT_NODE_PENDING_BYTES, "128MiB"),
    );
  cmd.option("--http <host:port>", "HTTP endpoints: /healthz /readyz /status /metrics /events");
  cmd.optionsGroup(`Options of --role ${role.name}:`);
  for (const [key, spec] of Object.entries(role.options ?? {})) {
    cmd.addOption(toCommanderOption(key, spec));
  }
  addEnvToOptions(cmd);
  if (role.examples?.length) {
    cmd.addHelpText("after", `\nExamples:\n${role.examples.map((e) => `  ${e}`).join("\n")}\n`);
  }
  return cmd;
}

/** Refuses (exit 2, naming `where`) a listen host that does not resolve to an address of this machine. */
function checkListenHost(hostname: string, where: string): void {
  try {
    Deno.listen({ hostname, port: 0 }).close();
  } catch (err) {
    const why = err instanceof Deno.errors.AddrNotAvailable
      ? "not an address of this machine"
      : `cannot resolve or bind it (${err instanceof Error ? err.message : String(err)})`;
    throw new ConfigError(`${where}: cannot listen on "${hostname}": ${why}`);
  }
}

async function runRole(role: RoleDefinition, argv: string[]): Promise<number> {
  const cmd = buildRoleCommand(role);
  try {
    cmd.parse(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === "commander.helpDisplayed" || err.code === "commander.help" ||
          err.code === "commander.version"
        ? 0
        : 2;
    }
    throw err;
  }
  const o = cmd.opts() as Record<string, unknown>;
  let ctx: RoleContext<OptionValues<RoleOptions>>;
  const controller = new AbortController();
  try {
    const peersPath = o.peers as string | undefined;
    if (role.peers === "required" && !peersPath) {
      throw new UsageError(
        `--peers is required for role ${role.name} (a peers.json or machines.txt)`,
      );
    }
    const cluster = peersPath ? loadPeersFile(peersPath) : undefined;
    let name = o.name as string | undefined;
    if (cluster && role.peers === "required" && !name) {
      throw new UsageError(
        `--name is required for role ${role.name}; nodes in ${cluster.source}: ${
          cluster.nodes.map((n) => n.name).join(", ")
        }`,
      );
    }
    const self = cluster && name && role.peers !== "none" ? findNode(cluster, name) : undefined;
    if (cluster) checkNodeKeys(cluster, role, ROLES);
    if (self && cluster) {
      Object.assign(o, nodeOptionValues(role, self, cluster, (a) => cmd.getOptionValueSource(a)));
    }
    const options = roleOptionValues(role.options ?? {}, o, (a) => cmd.getOptionValueSource(a));
    name ??= role.name;
    const listen = o.listen
      ? parseHostPort(String(o.listen), "--listen", { allowZero: true })
      : self
      ? { hostname: self.hostname, port: self.port }
      : { hostname: "127.0.0.1", port: role.defaultPort ?? 0 };
    checkListenHost(
      listen.hostname,
      o.listen
        ? `--listen ${String(o.listen)}`
        : self && cluster
        ? `${cluster.source}: node "${self.name}" host`
        : "listen address",
    );
    const maxFrame = o.maxFrame as number;
    if (maxFrame < MIN_MAX_FRAME || maxFrame > 0xffffffff) {
      throw new UsageError(
        `--max-frame must be between ${MIN_MAX_FRAME} bytes (1KiB) and 4GiB, got ${maxFrame}`,
      );
    }
    const maxConnections = o.maxConnections as number;
    if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) {
      throw new UsageError(`--max-connections must be a positive integer, got ${maxConnections}`);
    }
    const maxPending = o.maxPending as number;
    if (maxPending < maxFrame) {
      throw new UsageError(
        `--max-pending must be at least --max-frame (${maxFrame} bytes), got ${maxPending}`,
      );
    }
    const logLevel = String(o.logLevel);
    if (!isLogLevel(logLevel)) {
      throw new UsageError(`--log-level must be debug, info, warn or error`);
    }
    const log = new Logger({ node: name, role: role.name, level: logLevel as LogLevel });
    let events: EventSink;
    try {
      events = new EventSink({
        node: name,
        role: role.name,
        path: o.events as string | undefined,
        level: logLevel as LogLevel,
      });
    } catch (err) {
      throw new ConfigError(
        `--events ${String(o.events)}: cannot open: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
    ctx = {
      role: role.name,
      name,
      listen,
      cluster,
      self,
      dataDir: (o.data as string | undefined) ?? `./data/${name}`,
      secret: (o.secret as string | undefined) ?? cluster?.secret,
      tls: loadTlsFiles(o, { node: true }),
      tlsFiles: { tlsCert: o.tlsCert, tlsKey: o.tlsKey, tlsCa: o.tlsCa } as TlsFileOptions,
      maxFrame,
      maxConnections,
      maxPending,
      logLevel: logLevel as LogLevel,
      events,
      log,
      signal: controller.signal,
      options,
      interactive: Deno.stdin.isTerminal(),
    };
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) return fail(err.message, 2);
    throw err;
  }
  const removeSignals = installShutdownSignals(controller, ctx.log);
  let http: NodeHttp | undefined;
  try {
    if (ctx.tls) await loadNodeTls();
    const httpText = (o.http as string | undefined) ?? ctx.self?.options.http;
    if (httpText !== undefined && httpText !== "" && httpText !== false) {
      const listen = parseHttpListen(String(httpText));
      try {
        http = await startNodeHttp(ctx, { listen, readiness: role.readiness, version: VERSION });
      } catch (err) {
        if (err instanceof Deno.errors.AddrInUse) {
          return fail(
            `Cannot listen on ${listen.hostname}:${listen.port} (--http): address in use`,
            1,
          );
        }
        throw err;
      }
      ctx.exposeStatus = http.exposeStatus;
      ctx.events.emit("http.listening", { address: http.address });
    }
    return (await role.run(ctx)) ?? 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) return fail(err.message, 2);
    if (err instanceof Deno.errors.AddrInUse) {
      return fail(`Cannot listen on ${ctx.listen.hostname}:${ctx.listen.port}: address in use`, 1);
    }
    ctx.log.debug(err instanceof Error ? err.stack ?? err.message : String(err));
    return fail(err instanceof Error ? err.message : String(err), 1);
  } finally {
    await http?.close();
    removeSignals();
    ctx.events.close();
  }
}

async function runCommand(argv: string[]): Promise<number> {
  const program = new Command("peerd")
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) })
    .helpCommand(false);
  for (const command of COMMANDS) command.register(program);
  for (const sub of program.commands) {
    sub.exitOverride();
    addEnvToOptions(sub);
  }
  Deno.exitCode = 0;
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === "commander.helpDisplayed" || err.code === "commander.help" ? 0 : 2;
    }
    if (err instanceof ConfigError || err instanceof UsageError) return fail(err.message, 2);
    return fail(err instanceof Error ? err.message : String(err), 1);
  }
  return Deno.exitCode;
}

/** Runs the CLI on `argv` (without the program name); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === "--version" || first === "-V") {
    console.log(VERSION);
    return 0;
  }
  if (first !== undefined && !first.startsWith("-")) {
    if (first === "help") {
      console.log(globalHelp());
      return 0;
    }
    if (!COMMANDS.some((c) => c.name === first)) {
      return fail(
        `unknown command "${first}"; commands are ${
          COMMANDS.map((c) => c.name).join(", ")
        } (roles need --role)`,
        2,
      );
    }
    return await runCommand(argv);
  }
  const roleName = roleArg(argv);
  if (!roleName) {
    if (argv.length === 0 || argv.includes("--help") || argv.includes("-h")) {
      console.log(globalHelp());
      return argv.length === 0 ? 2 : 0;
    }
    return fail("missing --role; run `peerd --help` for the roles", 2);
  }
  const role = ROLES.find((r) => r.name === roleName);
  if (!role) {
    return fail(`unknown role "${roleName}"; roles are ${ROLES.map((r) => r.name).join(", ")}`, 2);
  }
  return await runRole(role, argv);
}

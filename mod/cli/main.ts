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
  formatSize,
  loadPeersFile,
  loadTlsFiles,
  parseHostPort,
} from "../config/mod.ts";
import { EventSink, Logger } from "../events/mod.ts";
import {
  installShutdownSignals,
  type OptionValues,
  type RoleContext,
  type RoleDefinition,
  type RoleOptions,
  UsageError,
} from "../process/mod.ts";
import { loadNodeTls } from "../wire/mod.ts";
import { type NodeHttp, parseHttpListen, startNodeHttp } from "../http/mod.ts";
import {
  addEnvToOptions,
  optionFlags,
  optionHelp,
  roleOptionValues,
  toCommanderOption,
} from "./options.ts";
import { COMMON_OPTIONS } from "./common_options.ts";
import { checkNodeKeys, nodeOptionValues } from "./node_options.ts";
import { COMMANDS, ROLES } from "./registry.ts";

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

/** The common options in `peerd --help`, one line each, from their declarations. */
function commonHelp(): string {
  const common: RoleOptions = COMMON_OPTIONS;
  const lines = Object.entries(common).map(([key, spec]) => {
    const shown = spec.type === "size" && spec.default !== undefined
      ? formatSize(spec.default)
      : spec.default === undefined
      ? undefined
      : String(spec.default);
    return `  ${optionFlags(key, spec).padEnd(23)}${optionHelp(spec)}${
      shown === undefined ? "" : ` (default ${shown})`
    }`;
  });
  return [
    "Common options (every role; each also reads PEERD_<OPTION>, flags win):",
    ...lines,
  ].join("\n");
}

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
    commonHelp(),
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
    .addOption(new Option("--role <role>", "the role to run").makeOptionMandatory());
  for (const [key, spec] of Object.entries(COMMON_OPTIONS)) {
    cmd.addOption(toCommanderOption(key, spec));
  }
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
  const sourceOf = (attribute: string) => cmd.getOptionValueSource(attribute);
  let ctx: RoleContext<OptionValues<RoleOptions>>;
  let httpFlag: string | undefined;
  const controller = new AbortController();
  try {
    const common = roleOptionValues(COMMON_OPTIONS, o, sourceOf);
    const peersPath = common.peers;
    if (role.peers === "required" && !peersPath) {
      throw new UsageError(
        `--peers is required for role ${role.name} (a peers.json or machines.txt)`,
      );
    }
    const cluster = peersPath ? loadPeersFile(peersPath) : undefined;
    let name = common.name;
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
      Object.assign(o, nodeOptionValues(role, self, cluster, sourceOf));
    }
    const options = roleOptionValues(role.options ?? {}, o, sourceOf);
    name ??= role.name;
    const listen = common.listen
      ? parseHostPort(common.listen, "--listen", { allowZero: true })
      : self
      ? { hostname: self.hostname, port: self.port }
      : { hostname: "127.0.0.1", port: role.defaultPort ?? 0 };
    checkListenHost(
      listen.hostname,
      common.listen
        ? `--listen ${common.listen}`
        : self && cluster
        ? `${cluster.source}: node "${self.name}" host`
        : "listen address",
    );
    const { maxFrame, maxConnections, maxPending, logLevel } = common;
    httpFlag = common.http;
    const tlsFiles = { tlsCert: common.tlsCert, tlsKey: common.tlsKey, tlsCa: common.tlsCa };
    if (maxPending < maxFrame) {
      throw new UsageError(
        `--max-pending must be at least --max-frame (${maxFrame} bytes), got ${maxPending}`,
      );
    }
    const log = new Logger({ node: name, role: role.name, level: logLevel });
    let events: EventSink;
    try {
      events = new EventSink({
        node: name,
        role: role.name,
        path: common.events,
        level: logLevel,
      });
    } catch (err) {
      throw new ConfigError(
        `--events ${common.events}: cannot open: ${
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
      dataDir: common.data ?? `./data/${name}`,
      secret: common.secret ?? cluster?.secret,
      tls: loadTlsFiles(tlsFiles, { node: true }),
      tlsFiles,
      maxFrame,
      maxConnections,
      maxPending,
      logLevel,
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
    const httpText = httpFlag ?? ctx.self?.options.http;
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

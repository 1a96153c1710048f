/**
 * The contract between the CLI and a role: what a role declares (name, options) and what
 * it gets when it runs (a {@linkcode RoleContext}).
 *
 * @module
 */
import type { Command } from "commander";
import type {
  ClusterConfig,
  HostPort,
  NodeEntry,
  TlsFileOptions,
  ValueOrDefault,
  ValueSpec,
} from "../config/mod.ts";
import type { EventSink, Logger, LogLevel } from "../events/mod.ts";
import type { TlsConfig } from "../wire/mod.ts";

/**
 * One role-specific option, declared once: its type, default, bounds and help make the
 * command-line flag (`--<kebab-key> <arg>`), its environment variable (`PEERD_<KEY>`), the
 * check of a peers.json value, and the typed value the role receives.
 */
export type RoleOption = ValueSpec & {
  /** The environment variable, when not `PEERD_<KEY_IN_SNAKE_CASE>`. */
  env?: string;
};

/** A role's options by attribute name (camelCase; `heartbeatMs` is `--heartbeat-ms`). */
export type RoleOptions = Readonly<Record<string, RoleOption>>;

/** The typed values of a role's options, as `ctx.options` holds them. */
export type OptionValues<S extends RoleOptions> = {
  readonly [K in keyof S]: ValueOrDefault<S[K]>;
};

/** The long flag of an option: `heartbeatMs` → `--heartbeat-ms`. */
export function optionFlag(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The environment variable of an option: `heartbeatMs` → `PEERD_HEARTBEAT_MS`. */
export function optionEnv(key: string, spec: RoleOption): string {
  return spec.env ?? `PEERD_${optionFlag(key).slice(2).replace(/-/g, "_").toUpperCase()}`;
}

/** What a running role gets; `O` is the type of its options. */
export interface RoleContext<O = Readonly<Record<string, unknown>>> {
  /** The role name. */
  role: string;
  /** This node's name. */
  name: string;
  /** Where to listen. */
  listen: HostPort;
  /** The peers file, when `--peers` was given. */
  cluster?: ClusterConfig;
  /** This node's entry in the peers file, when it has one. */
  self?: NodeEntry;
  /** This node's data directory (`--data`, default `./data/<name>`); not created yet. */
  dataDir: string;
  /** Cluster secret, if any. */
  secret?: string;
  /** TLS for the node's port and its outgoing links (`--tls-cert/--tls-key/--tls-ca`), if any. */
  tls?: TlsConfig;
  /** The `--tls-*` paths behind `tls`, for processes the role starts itself. */
  tlsFiles?: TlsFileOptions;
  /** Largest frame accepted. */
  maxFrame: number;
  /** Most connections the node's server takes at once (`--max-connections`). @default {1024} */
  maxConnections?: number;
  /** Bytes of frames held by requests awaiting replies, per node (`--max-pending`). */
  maxPending?: number;
  /** Log level. */
  logLevel: LogLevel;
  /** The event sink (`--events`). */
  events: EventSink;
  /** Logs to stderr. */
  log: Logger;
  /** Aborted when the process is asked to stop (SIGINT, SIGTERM). */
  signal: AbortSignal;
  /** The role's options, typed and checked (declared in {@linkcode RoleDefinition.options}). */
  options: O;
  /** Whether stdin is a terminal (roles may offer a prompt). */
  interactive: boolean;
  /**
   * Set when `--http` is on: the node server gives the HTTP endpoints its `status` through
   * it (a role with its own server may call it too; without it, HTTP asks the node's port).
   */
  exposeStatus?: (status: () => Promise<Record<string, unknown>>) => void;
}

/** A role: one long-running kind of node; `S` declares its options. */
export interface RoleDefinition<S extends RoleOptions = RoleOptions> {
  /** The `--role` value. */
  name: string;
  /** One line for `peerd --help`. */
  summary: string;
  /** Role options, by attribute name, in help order. */
  options?: S;
  /** Whether `--peers` is required, optional, or not used. @default {"optional"} */
  peers?: "required" | "optional" | "none";
  /** Port used when neither `--listen` nor the peers file says. @default {0} */
  defaultPort?: number;
  /** Example lines for `--help`. */
  examples?: string[];
  /**
   * Whether a node is ready for its role (`GET /readyz`), judged from its status; when
   * absent, a built-in rule for the role's name (mod/http/readiness.ts), else ready once
   * its `ready` event is out and it answers status.
   */
  readiness?: (status: Record<string, unknown>) => { ready: boolean; reason?: string };
  /** Runs the role until `ctx.signal` aborts (or the work is done); returns the exit code. */
  run(ctx: RoleContext<OptionValues<S>>): Promise<number | void>;
}

/** Declares a role, inferring the types of its options from their declarations. */
export function defineRole<const S extends RoleOptions = Record<never, never>>(
  role: RoleDefinition<S>,
): RoleDefinition<S> {
  return role;
}

/** A helper command that is not a daemon (`ctl`, `compose`, `mom`, …). */
export interface CommandDefinition {
  /** The subcommand word. */
  name: string;
  /** One line for `peerd --help`. */
  summary: string;
  /** Adds the subcommand, its options and its action to `program`. Actions set `Deno.exitCode`. */
  register(program: Command): void;
}

/** A usage error in a command's arguments: exit code 2 with this one line. */
export class UsageError extends Error {
  /** Always 2. */
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The nodes of the peers file that belong to this role's group: those whose `role` is
 * `ctx.role` or unset (machines.txt lines have none), in file order.
 */
export function roleMembers(
  ctx: Pick<RoleContext, "cluster" | "role">,
  role = ctx.role,
): NodeEntry[] {
  return ctx.cluster?.nodes.filter((n) => n.role === undefined || n.role === role) ?? [];
}

/**
 * The options every role takes, declared like a role's own ({@linkcode RoleOptions}): the
 * same flags, environment variables, checks and typed values.
 *
 * @module
 */
import type { RoleOptions } from "../process/mod.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME,
  DEFAULT_NODE_PENDING_BYTES,
  MIN_MAX_FRAME,
} from "../wire/mod.ts";

/** The common options of `peerd --role X` (besides `--role`), in help order. */
export const COMMON_OPTIONS = {
  name: { type: "string", arg: "node", help: "this node's name (its entry in the peers file)" },
  peers: { type: "string", arg: "file", help: "peers.json or machines.txt" },
  listen: {
    type: "string",
    arg: "host:port",
    help: "listen address (default: the node's entry in the peers file)",
  },
  data: { type: "string", arg: "dir", help: "data directory (default ./data/<name>)" },
  events: {
    type: "string",
    arg: "file",
    help: "write events as JSON Lines to a file, or - for stdout",
  },
  secret: { type: "string", arg: "secret", help: "cluster secret" },
  tlsCert: {
    type: "string",
    arg: "file",
    help: "TLS certificate (PEM) for this node's port and its links",
  },
  tlsKey: { type: "string", arg: "file", help: "private key of --tls-cert (PEM)" },
  tlsCa: {
    type: "string",
    arg: "file",
    help: "CA (PEM) peers' certificates must chain to; makes TLS mutual",
  },
  logLevel: {
    type: "choice",
    arg: "level",
    choices: ["debug", "info", "warn", "error"],
    default: "info",
    help: "log level",
  },
  maxFrame: {
    type: "size",
    default: DEFAULT_MAX_FRAME,
    min: MIN_MAX_FRAME,
    max: 4 * 1024 ** 3 - 1,
    help: "largest frame accepted",
  },
  maxConnections: {
    type: "int",
    default: DEFAULT_MAX_CONNECTIONS,
    min: 1,
    help: "most connections served at once",
  },
  maxPending: {
    type: "size",
    default: DEFAULT_NODE_PENDING_BYTES,
    help: "bytes of requests awaiting replies, per node; not below --max-frame",
  },
  http: {
    type: "string",
    arg: "host:port",
    help: "HTTP endpoints: /healthz /readyz /status /metrics /events",
  },
} as const satisfies RoleOptions;

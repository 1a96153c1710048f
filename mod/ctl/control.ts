/**
 * Control frames: `{t:"ctl", cmd, args}` → `{t:"ctl.ok", cmd, …}` or `{t:"error", …}`.
 *
 * @module
 */
import {
  ErrorCode,
  type FrameHandler,
  type Message,
  type PeerSession,
  ProtocolError,
  quote,
  RpcClient,
  type TlsConfig,
} from "../wire/mod.ts";
import type { HostPort } from "../config/mod.ts";

/** One control command: gets the string arguments, returns the reply's fields. */
export type CtlCommand = (
  args: string[],
  session: PeerSession,
  msg: Message,
) => Record<string, unknown> | Promise<Record<string, unknown>>;

/** Control commands by name. `status` should exist on every role. */
export type CtlCommands = Record<string, CtlCommand>;

/** What `help` lists of each command: its usage line (from {@linkcode ctlCommand}) and summary. */
export function ctlHelp(commands: CtlCommands): Array<{ usage: string; summary?: string }> {
  return Object.keys(commands).sort().map((name) => {
    const c = commands[name] as CtlCommand & { usage?: string; summary?: string };
    return c.usage ? { usage: c.usage, summary: c.summary } : { usage: name };
  });
}

/**
 * Builds the frame handler for `t:"ctl"` that dispatches to `commands`; `help` (unless the
 * role has its own) lists every command with its arguments.
 */
export function ctlHandler(commands: CtlCommands): FrameHandler {
  return async (msg, session) => {
    const cmd = msg.cmd;
    if (typeof cmd !== "string" || cmd.length === 0) {
      throw new ProtocolError(
        ErrorCode.BadField,
        "Cannot run ctl: field cmd must be a non-empty string",
      );
    }
    const rawArgs = msg.args ?? [];
    if (!Array.isArray(rawArgs)) {
      throw new ProtocolError(ErrorCode.BadField, "Cannot run ctl: field args must be an array");
    }
    const args = rawArgs.map((a) => String(a));
    const command = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
    if (!command && cmd === "help") return { t: "ctl.ok", cmd, commands: ctlHelp(commands) };
    if (!command) {
      throw new ProtocolError(
        ErrorCode.UnknownCommand,
        `Cannot run ${quote(cmd)}: unknown command; commands are ${
          Object.keys(commands).sort().join(", ")
        } (help lists their arguments)`,
      );
    }
    const result = await command(args, session, msg);
    return { ...result, t: "ctl.ok", cmd };
  };
}

/** Options of {@linkcode ctlRequest}. */
export interface CtlRequestOptions {
  /** Cluster secret, when the node has one. */
  secret?: string;
  /** TLS, when the node serves it. */
  tls?: TlsConfig;
  /** How long to wait for the reply. @default {30000} */
  timeoutMs?: number;
  /** Cancels the request. */
  signal?: AbortSignal;
}

/** Sends one control command to `address` and returns the reply frame. */
export async function ctlRequest(
  address: HostPort,
  cmd: string,
  args: string[] = [],
  options: CtlRequestOptions = {},
): Promise<Message> {
  const client = await RpcClient.connect(address, {
    role: "ctl",
    name: "ctl",
    secret: options.secret,
    tls: options.tls,
    timeoutMs: Math.min(options.timeoutMs ?? 30_000, 5_000),
    signal: options.signal,
  });
  try {
    return await client.request({ t: "ctl", cmd, args }, {
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
  } finally {
    await client.close();
  }
}

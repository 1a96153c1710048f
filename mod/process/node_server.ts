/**
 * Starts a role's framed server on its listen address with the node identity, secret,
 * frame limit and control commands wired in, and problems reported as events.
 *
 * @module
 */
import { type CtlCommands, ctlHandler } from "../ctl/mod.ts";
import { FrameServer, type FrameServerOptions, type LinkSecurity } from "../wire/mod.ts";
import type { RoleContext } from "./role.ts";

/** Options of {@linkcode startNodeServer}. */
export interface NodeServerOptions {
  /** Frame handlers by type (`ctl` is added). */
  handlers: FrameServerOptions["handlers"];
  /** Control commands; `status` gets role, name, uptime and connections merged in. */
  ctl?: CtlCommands;
  /** Called when a session is established. */
  onSession?: FrameServerOptions["onSession"];
  /** Called when a session ends. */
  onSessionClose?: FrameServerOptions["onSessionClose"];
  /** Listen somewhere other than `ctx.listen` (a Unix socket, say). */
  listen?: FrameServerOptions["listen"];
}

/**
 * The status fields every node's `status` starts with: role, name, listen address, uptime,
 * connections and pending bytes of `server` (undefined until it listens).
 */
export function nodeStatusFields(
  ctx: RoleContext,
  server: FrameServer | undefined,
  started: number,
): Record<string, unknown> {
  return {
    role: ctx.role,
    name: ctx.name,
    listen: `${ctx.listen.hostname}:${server?.port ?? ctx.listen.port}`,
    uptime_s: Math.round((Date.now() - started) / 1000),
    connections: server?.sessions.size ?? 0,
    pending_bytes: server?.pendingBytes ?? 0,
  };
}

/**
 * Listens on `ctx.listen` (or `options.listen`). Bad frames and refused handshakes are
 * logged and emitted as `wire.error` events; they never stop the server.
 */
export function startNodeServer(ctx: RoleContext, options: NodeServerOptions): FrameServer {
  const started = Date.now();
  const roleStatus = options.ctl?.status;
  let server: FrameServer | undefined = undefined;
  const commands: CtlCommands = {
    ...options.ctl,
    status: async (args, session, msg) => ({
      ...nodeStatusFields(ctx, server, started),
      ...(roleStatus ? await roleStatus(args, session, msg) : {}),
    }),
  };
  if (!options.listen) {
    ctx.exposeStatus?.(async () => ({
      ...(await commands.status([], undefined as never, { t: "ctl", cmd: "status" })),
    }));
  }
  server = new FrameServer({
    listen: options.listen ?? ctx.listen,
    identity: { role: ctx.role, name: ctx.name },
    secret: ctx.secret,
    tls: ctx.tls,
    maxFrame: ctx.maxFrame,
    maxConnections: ctx.maxConnections,
    pendingBytes: { perNode: ctx.maxPending },
    handlers: { ...options.handlers, ctl: ctlHandler(commands) },
    onSession: options.onSession,
    onSessionClose: options.onSessionClose,
    onProblem: reportWireProblem(ctx),
  });
  // a TLS listener binds asynchronously: the node's events (its `ready` first) are written
  // only once it accepts connections, so whoever waits for `ready` can connect at once
  ctx.events.holdUntil(server.listening());
  return server;
}

/**
 * The `onProblem` of a role's `FrameServer`: a bad frame or handshake is logged as a
 * warning and emitted as a `wire.error` event; a failed database write (`store`) is
 * logged as an error and emitted as `store.failed`.
 */
export function reportWireProblem(
  ctx: RoleContext,
): NonNullable<FrameServerOptions["onProblem"]> {
  return (what, detail) => {
    if (what === "store") {
      ctx.log.error(detail.message);
      ctx.events.emit("store.failed", { code: detail.code, message: detail.message.slice(0, 300) });
      return;
    }
    ctx.log.warn(`${what} problem from ${detail.remote}: ${detail.code}: ${detail.message}`);
    ctx.events.emit("wire.error", {
      what,
      remote: detail.remote,
      code: detail.code,
      message: detail.message.slice(0, 200),
    });
  };
}

/**
 * The security of a node's outgoing links: its secret and TLS, and refusals (an impostor
 * server, a failed TLS verification) reported as `wire.error` events. Spread it into the
 * options of every `dial`/`RpcClient.connect` a role makes. The same refusal of the same
 * peer is reported once per {@linkcode LINK_REPORT_QUIET_MS}, not on every redial.
 */
export function linkSecurity(ctx: RoleContext): LinkSecurity {
  const report = reportWireProblem(ctx);
  // a link redials every second or so: one report per peer and problem per quiet period
  const last = new Map<string, number>();
  return {
    secret: ctx.secret,
    tls: ctx.tls,
    onProblem: (what, detail) => {
      const key = `${what} ${detail.remote} ${detail.code}`;
      const now = performance.now();
      const at = last.get(key);
      if (at !== undefined && now - at < LINK_REPORT_QUIET_MS) return;
      if (last.size > 1_000) last.clear();
      last.set(key, now);
      report(what, detail);
    },
  };
}

/** How long the same refusal of the same peer goes unreported again on a node's links. */
export const LINK_REPORT_QUIET_MS = 10_000;

/**
 * Starts a role's framed server on its listen address with the node identity, secret,
 * frame limit and control commands wired in, and problems reported as events.
 *
 * @module
 */
import { type CtlCommands, ctlHandler } from "../ctl/mod.ts";
import { FrameServer, type FrameServerOptions } from "../wire/mod.ts";
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
      role: ctx.role,
      name: ctx.name,
      listen: `${ctx.listen.hostname}:${server?.port ?? ctx.listen.port}`,
      uptime_s: Math.round((Date.now() - started) / 1000),
      connections: server?.sessions.size ?? 0,
      pending_bytes: server?.pendingBytes ?? 0,
      ...(roleStatus ? await roleStatus(args, session, msg) : {}),
    }),
  };
  server = new FrameServer({
    listen: options.listen ?? ctx.listen,
    identity: { role: ctx.role, name: ctx.name },
    secret: ctx.secret,
    maxFrame: ctx.maxFrame,
    maxConnections: ctx.maxConnections,
    pendingBytes: { perNode: ctx.maxPending },
    handlers: { ...options.handlers, ctl: ctlHandler(commands) },
    onSession: options.onSession,
    onSessionClose: options.onSessionClose,
    onProblem: reportWireProblem(ctx),
  });
  return server;
}

/**
 * The `onProblem` of a role's `FrameServer`: a bad frame or handshake is logged as a
 * warning and emitted as a `wire.error` event.
 */
export function reportWireProblem(
  ctx: RoleContext,
): NonNullable<FrameServerOptions["onProblem"]> {
  return (what, detail) => {
    ctx.log.warn(`${what} problem from ${detail.remote}: ${detail.code}: ${detail.message}`);
    ctx.events.emit("wire.error", {
      what,
      remote: detail.remote,
      code: detail.code,
      message: detail.message.slice(0, 200),
    });
  };
}

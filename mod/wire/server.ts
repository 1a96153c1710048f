/**
 * A framed TCP (or Unix socket) server: accepts connections, runs the handshake, then
 * dispatches each frame to the handler registered for its `t`.
 *
 * @module
 */
import type { Message } from "./codec.ts";
import { FrameConnection } from "./connection.ts";
import { DEFAULT_MAX_FRAME, ErrorCode } from "./constants.ts";
import { ConnectionClosedError, errorFrame, ProtocolError, WireError } from "./errors.ts";
import { acceptHandshake, type PeerIdentity } from "./handshake.ts";
import { type TlsConfig, TlsListener } from "./tls.ts";

/** Whether a handler's error is a failed database write (node:sqlite, or a StorageError). */
function isStoreFailure(err: unknown): boolean {
  return err instanceof Error &&
    ((err as { code?: unknown }).code === "ERR_SQLITE_ERROR" || err.name === "StorageError");
}

/** One accepted, authenticated connection. */
export class PeerSession {
  /** Server-unique id of this connection. */
  readonly id: number;
  /** Who the peer said it is in its hello. */
  readonly peer: PeerIdentity;
  /** The framed connection. */
  readonly conn: FrameConnection;
  /** `host:port` of the remote end, or the socket path. */
  readonly remote: string;
  /** Free-form per-session state for the role. */
  readonly data: Record<string, unknown> = {};

  constructor(id: number, peer: PeerIdentity, conn: FrameConnection, remote: string) {
    this.id = id;
    this.peer = peer;
    this.conn = conn;
    this.remote = remote;
  }

  /**
   * Sends `msg`; returns false if the connection is closed or above its high-water mark.
   * `urgent`: written at once on an idle connection (see `FrameConnection.send`).
   */
  send(msg: Message, urgent = false): boolean {
    try {
      return this.conn.send(msg, urgent);
    } catch (err) {
      if (err instanceof ConnectionClosedError) return false;
      throw err;
    }
  }

  /** Sends `reply` as the answer to `request` (copies its `rid`). */
  reply(request: Message, reply: Message, urgent = false): boolean {
    if (request.rid !== undefined) reply.rid = request.rid;
    return this.send(reply, urgent);
  }

  /** Sends an error frame answering `request`. */
  replyError(request: Message | undefined, err: unknown): boolean {
    return this.send(errorFrame(err, request?.rid) as Message);
  }
}

/**
 * Handles one frame. A returned message is sent as the reply (with the request's `rid`);
 * a thrown `ProtocolError` becomes an error frame. Frames of one connection are handled
 * one at a time, in order.
 */
export type FrameHandler = (
  msg: Message,
  session: PeerSession,
) => Message | void | undefined | Promise<Message | void | undefined>;

/** Options of {@linkcode FrameServer}. */
export interface FrameServerOptions {
  /** TCP address to listen on, or `path` for a Unix socket. */
  listen: { hostname: string; port: number } | { path: string };
  /** This node's identity, sent in `welcome`. */
  identity: PeerIdentity;
  /** Cluster secret; peers must prove it. */
  secret?: string;
  /** Largest frame accepted. @default {16 MiB} */
  maxFrame?: number;
  /** Handlers by message type. */
  handlers: Record<string, FrameHandler>;
  /** Called when a session is established. */
  onSession?: (session: PeerSession) => void;
  /** Called when a session ends (either side). */
  onSessionClose?: (session: PeerSession) => void;
  /** Called for refused connections and bad frames (for logging or events). */
  onProblem?: (what: string, detail: { remote: string; code: string; message: string }) => void;
  /** Bad frames tolerated on one connection before it is closed. @default {16} */
  maxBadFrames?: number;
  /** Serve TLS (TCP only): a certificate and key; with `caCerts`, mutual TLS. */
  tls?: TlsConfig;
}

/**
 * Serves framed connections. Bad frames get an error frame and the connection goes on
 * (a frame over the limit, or too many bad frames, closes it); one connection's trouble
 * never stops the others. `close()` stops accepting and closes every session.
 */
export class FrameServer implements AsyncDisposable {
  readonly #listener: Deno.Listener | TlsListener;
  readonly #options: FrameServerOptions;
  readonly #sessions = new Set<PeerSession>();
  readonly #connections = new Set<FrameConnection>();
  readonly #tasks = new Set<Promise<void>>();
  #nextId = 1;
  #closing = false;
  #acceptLoop: Promise<void>;

  constructor(options: FrameServerOptions) {
    this.#options = options;
    this.#listener = "path" in options.listen
      ? Deno.listen({ transport: "unix", path: options.listen.path })
      : options.tls
      ? new TlsListener(
        options.listen,
        options.tls,
        (remote, message) => options.onProblem?.("tls", { remote, code: "tls", message }),
      )
      : Deno.listen({
        hostname: options.listen.hostname,
        port: options.listen.port,
        transport: "tcp",
      });
    this.#acceptLoop = this.#accept();
  }

  /** The bound address (the real port when 0 was asked for). */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  /** The bound TCP port (0 for a Unix socket). */
  get port(): number {
    const addr = this.#listener.addr;
    return addr.transport === "tcp" ? addr.port : 0;
  }

  /** Live sessions. */
  get sessions(): ReadonlySet<PeerSession> {
    return this.#sessions;
  }

  /** Stops accepting, closes every connection, and waits for their handlers to end. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await Promise.all([...this.#connections].map((c) => c.end(500)));
    await this.#acceptLoop;
    await Promise.allSettled([...this.#tasks]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let raw: Deno.Conn;
      try {
        raw = await this.#listener.accept();
      } catch (err) {
        if (this.#closing) return;
        if (err instanceof Deno.errors.BadResource) return;
        continue;
      }
      if (this.#closing) {
        raw.close();
        continue;
      }
      try {
        if (raw.remoteAddr.transport === "tcp") (raw as Deno.TcpConn).setNoDelay(true);
      } catch {
        // not supported
      }
      const task = this.#serve(raw);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #serve(raw: Deno.Conn): Promise<void> {
    const o = this.#options;
    const addr = raw.remoteAddr;
    const remote = addr.transport === "tcp" || addr.transport === "udp"
      ? `${addr.hostname}:${addr.port}`
      : "unix";
    const conn = new FrameConnection(raw, { maxFrame: o.maxFrame ?? DEFAULT_MAX_FRAME });
    this.#connections.add(conn);
    let session: PeerSession | undefined;
    try {
      let peer: PeerIdentity;
      try {
        peer = await acceptHandshake(conn, { ...o.identity, secret: o.secret });
      } catch (err) {
        const code = err instanceof ProtocolError ? String(err.code) : "handshake";
        o.onProblem?.("handshake", {
          remote,
          code,
          message: err instanceof Error ? err.message : String(err),
        });
        return;
      }
      session = new PeerSession(this.#nextId++, peer, conn, remote);
      this.#sessions.add(session);
      o.onSession?.(session);
      await this.#dispatch(session);
    } finally {
      conn.close();
      this.#connections.delete(conn);
      if (session) {
        this.#sessions.delete(session);
        o.onSessionClose?.(session);
      }
    }
  }

  async #dispatch(session: PeerSession): Promise<void> {
    const o = this.#options;
    const maxBad = o.maxBadFrames ?? 16;
    let bad = 0;
    const conn = session.conn;
    for (;;) {
      let msg: Message | null;
      try {
        msg = conn.readBuffered() ?? await conn.read();
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        bad++;
        o.onProblem?.("frame", {
          remote: session.remote,
          code: String(err.code),
          message: err.message,
        });
        session.send(errorFrame(err) as Message);
        if (err.fatal || bad > maxBad) {
          await conn.end(500);
          return;
        }
        continue;
      }
      if (msg === null) return;
      const handler = o.handlers[msg.t];
      if (!handler) {
        session.replyError(
          msg,
          new ProtocolError(
            ErrorCode.UnknownType,
            `Cannot handle ${msg.t}: unknown message type for role ${o.identity.role}`,
          ),
        );
        continue;
      }
      try {
        let result = handler(msg, session);
        if (result instanceof Promise) result = await result;
        if (result) session.reply(msg, result);
      } catch (err) {
        if (err instanceof ProtocolError || err instanceof WireError) {
          session.replyError(msg, err);
        } else if (isStoreFailure(err)) {
          // the database refused the write: say so, never an ok for data not stored
          const message = `Cannot store ${String(msg.t).slice(0, 40)}: ${(err as Error).message}`;
          o.onProblem?.("store", { remote: session.remote, code: "store_failed", message });
          session.replyError(msg, new ProtocolError("store_failed", message));
        } else {
          o.onProblem?.("handler", {
            remote: session.remote,
            code: ErrorCode.Internal,
            message: err instanceof Error ? err.stack ?? err.message : String(err),
          });
          session.replyError(msg, err);
        }
      }
    }
  }
}

/**
 * A framed TCP (or Unix socket) server: accepts connections, runs the handshake, then
 * dispatches each frame to the handler registered for its `t`.
 *
 * @module
 */
import { FrameEncoder, type Message } from "./codec.ts";
import { FrameConnection } from "./connection.ts";
import {
  DEFAULT_CONNECTION_PENDING_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME,
  DEFAULT_NODE_PENDING_BYTES,
  ErrorCode,
  HANDSHAKE_MAX_FRAME,
  MAX_RID_LENGTH,
} from "./constants.ts";
import {
  ConnectionClosedError,
  errorFrame,
  minimalErrorFrame,
  ProtocolError,
  quote,
  WireError,
} from "./errors.ts";
import { acceptHandshake, type PeerIdentity } from "./handshake.ts";
import { type TlsConfig, TlsListener } from "./tls.ts";

/** Whether a handler's error is a failed database write (node:sqlite, or a StorageError). */
function isStoreFailure(err: unknown): boolean {
  return err instanceof Error &&
    ((err as { code?: unknown }).code === "ERR_SQLITE_ERROR" || err.name === "StorageError");
}

/** Whether `rid` may be copied into replies: absent, a safe integer, or a short string. */
function validRid(rid: unknown): boolean {
  return rid === undefined || Number.isSafeInteger(rid) ||
    (typeof rid === "string" && rid.length <= MAX_RID_LENGTH);
}

/** The bytes of frames held by pending requests, over one node's connections. */
class PendingBudget {
  used = 0;
  constructor(readonly limit: number) {}
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
  /** Cost of the requests awaiting a reply, by `rid` (see `FrameServer`). */
  #held = new Map<unknown, number>();
  #heldBytes = 0;
  #limit: number;
  #node: PendingBudget | undefined;

  constructor(
    id: number,
    peer: PeerIdentity,
    conn: FrameConnection,
    remote: string,
    budget: { perConnection?: number; node?: PendingBudget } = {},
  ) {
    this.id = id;
    this.peer = peer;
    this.conn = conn;
    this.remote = remote;
    this.#limit = budget.perConnection ?? Infinity;
    this.#node = budget.node;
  }

  /** Bytes of this connection's frames held by requests still awaiting their reply. */
  get pendingBytes(): number {
    return this.#heldBytes;
  }

  /**
   * Sends `msg`; returns false if the connection is closed or above its high-water mark.
   * `urgent`: written at once on an idle connection (see `FrameConnection.send`). Throws
   * `WireError` (`frame_too_large`) for a frame over the limit.
   */
  send(msg: Message, urgent = false): boolean {
    if (this.#held.size > 0 && msg.rid !== undefined) this.#release(msg.rid);
    try {
      return this.conn.send(msg, urgent);
    } catch (err) {
      if (err instanceof ConnectionClosedError) return false;
      throw err;
    }
  }

  /**
   * Sends `reply` as the answer to `request` (copies its `rid`). A reply over the frame
   * limit is replaced by a `frame_too_large` error for the requester (returns false).
   */
  reply(request: Message, reply: Message, urgent = false): boolean {
    if (request.rid !== undefined) reply.rid = request.rid;
    try {
      return this.send(reply, urgent);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.replyError(request, err);
      return false;
    }
  }

  /**
   * Sends an error frame answering `request`. Never throws: an error frame too large for
   * the limit is cut to its code and a short message, and if even that cannot be sent the
   * connection is closed.
   */
  replyError(request: Message | undefined, err: unknown): boolean {
    const rid = request !== undefined && validRid(request.rid) ? request.rid : undefined;
    try {
      return this.send(errorFrame(err, rid));
    } catch {
      try {
        return this.send(minimalErrorFrame(err, rid));
      } catch {
        this.conn.close();
        return false;
      }
    }
  }

  /**
   * Charges `cost` bytes for a request until its reply; false (nothing charged) when this
   * connection's or the node's budget would be exceeded.
   */
  hold(rid: unknown, cost: number): boolean {
    if (!this.charge(cost)) return false;
    this.#held.set(rid, (this.#held.get(rid) ?? 0) + cost);
    return true;
  }

  /**
   * Charges `cost` bytes for a request while its handler runs; false (nothing charged) when
   * this connection's or the node's budget would be exceeded. The caller gives it back with
   * {@linkcode uncharge} once the handler is done (no per-request record: the server charges
   * most frames this way).
   */
  charge(cost: number): boolean {
    const node = this.#node;
    if (this.#heldBytes + cost > this.#limit) return false;
    if (node && node.used + cost > node.limit) return false;
    this.#heldBytes += cost;
    if (node) node.used += cost;
    return true;
  }

  /** Gives back what {@linkcode charge} took. */
  uncharge(cost: number): void {
    // never below zero (releaseAll may have given everything back already)
    const back = Math.min(cost, this.#heldBytes);
    this.#heldBytes -= back;
    if (this.#node) this.#node.used -= back;
  }

  /** Gives back what a request charged (its reply went out, or its handler finished). */
  #release(rid: unknown): void {
    const cost = this.#held.get(rid);
    if (cost === undefined) return;
    this.#held.delete(rid);
    this.#heldBytes -= cost;
    if (this.#node) this.#node.used -= cost;
  }

  /** @internal Releases the charge of `rid` (server use). */
  release(rid: unknown): void {
    this.#release(rid);
  }

  /** @internal Releases every charge (the connection closed). */
  releaseAll(): void {
    if (this.#node) this.#node.used -= this.#heldBytes;
    this.#heldBytes = 0;
    this.#held.clear();
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
  /**
   * Most connections served at once (handshaking ones included); one more gets
   * `{t:"error", code:"too_many_connections"}` and is closed. @default {1024}
   */
  maxConnections?: number;
  /**
   * Bytes of frames held by requests awaiting their reply, per connection and over the
   * node; past either, a request is refused with `overloaded`. Big frames (64 KiB or more)
   * on their way in take their size from a second node budget of `perNode` bytes; one that
   * does not fit gets `overloaded` and a close.
   * @default {{ perConnection: 32 MiB, perNode: 128 MiB }} (at least 2 and 4 frames; a
   * connection never more than the node)
   */
  pendingBytes?: { perConnection?: number; perNode?: number };
  /** Serve TLS (TCP only): a certificate and key; with `caCerts`, mutual TLS. */
  tls?: TlsConfig;
}

/** Frames at least this costly stay charged until their reply, not just their handler. */
const HOLD_UNTIL_REPLY_BYTES = 4096;

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
  readonly #handlers: Map<string, FrameHandler>;
  readonly #maxConnections: number;
  readonly #perConnection: number;
  readonly #budget: PendingBudget;
  /** Bytes of big frames on their way in (a budget of its own, of the same size). */
  readonly #incoming: PendingBudget;
  #refusing = 0;
  #refusedFrame: Uint8Array;
  #nextId = 1;
  #closing = false;
  #acceptLoop: Promise<void>;

  constructor(options: FrameServerOptions) {
    this.#options = options;
    // a plain map: only the protocol's own types dispatch (`constructor`, `__proto__`, … are
    // unknown types, not Object.prototype's members)
    this.#handlers = new Map(Object.entries(options.handlers));
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const perNode = options.pendingBytes?.perNode ??
      Math.max(DEFAULT_NODE_PENDING_BYTES, 4 * maxFrame);
    this.#perConnection = options.pendingBytes?.perConnection ??
      Math.min(perNode, Math.max(DEFAULT_CONNECTION_PENDING_BYTES, 2 * maxFrame));
    this.#budget = new PendingBudget(perNode);
    this.#incoming = new PendingBudget(perNode);
    this.#refusedFrame = new FrameEncoder().encode({
      t: "error",
      code: ErrorCode.TooManyConnections,
      message: `Cannot accept connection: this node serves at most ${this.#maxConnections}`,
    });
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

  /**
   * Resolves once connections are accepted: at once for TCP and Unix sockets (bound in the
   * constructor); a TLS listener (`node:tls`) binds asynchronously.
   */
  listening(): Promise<void> {
    return this.#listener instanceof TlsListener ? this.#listener.listening() : Promise.resolve();
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

  /** Connections open now (handshaking ones included). */
  get connections(): number {
    return this.#connections.size;
  }

  /** Bytes of frames held by requests awaiting their reply, over every connection. */
  get pendingBytes(): number {
    return this.#budget.used;
  }

  /** Bytes of big frames being received now, over every connection. */
  get incomingBytes(): number {
    return this.#incoming.used;
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
      if (this.#connections.size >= this.#maxConnections) {
        this.#refuse(raw);
        continue;
      }
      try {
        if (raw.remoteAddr.transport === "tcp") (raw as Deno.TcpConn).setNoDelay(true);
      } catch {
        // not supported
      }
      const task = this.#serve(raw).catch((err) => this.#report("connection", "unix", err));
      this.#tasks.add(task);
      void task.finally(() => this.#tasks.delete(task));
    }
  }

  /** Answers a connection over the cap with one error frame and closes it. */
  #refuse(raw: Deno.Conn): void {
    const addr = raw.remoteAddr;
    const remote = addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : "unix";
    this.#options.onProblem?.("connection", {
      remote,
      code: ErrorCode.TooManyConnections,
      message: `refused: ${this.#connections.size} connections open (--max-connections)`,
    });
    // at most 256 (or the cap, if larger) refusals in flight; past that, just close
    if (this.#refusing >= Math.max(256, this.#maxConnections)) {
      raw.close();
      return;
    }
    this.#refusing++;
    const task = (async () => {
      const timer = setTimeout(() => raw.close(), 1_000);
      try {
        await raw.write(this.#refusedFrame);
      } catch {
        // the peer is gone already
      } finally {
        clearTimeout(timer);
        this.#refusing--;
        try {
          raw.close();
        } catch {
          // closed by the timer
        }
      }
    })();
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }

  /** Reports an error that escaped a connection's handling (never rethrown). */
  #report(what: string, remote: string, err: unknown): void {
    try {
      this.#options.onProblem?.(what, {
        remote,
        code: ErrorCode.Internal,
        message: err instanceof Error ? err.stack ?? err.message : String(err),
      });
    } catch {
      // a faulty reporter must not take the server down
    }
  }

  async #serve(raw: Deno.Conn): Promise<void> {
    const o = this.#options;
    const addr = raw.remoteAddr;
    const remote = addr.transport === "tcp" || addr.transport === "udp"
      ? `${addr.hostname}:${addr.port}`
      : "unix";
    const conn = new FrameConnection(raw, {
      maxFrame: o.maxFrame ?? DEFAULT_MAX_FRAME,
      // big frames take their size from the node's incoming budget while they arrive
      incomingBudget: this.#incoming,
    });
    this.#connections.add(conn);
    let session: PeerSession | undefined;
    try {
      let peer: PeerIdentity;
      // nobody buffers a big frame before saying hello
      conn.limitIncoming(HANDSHAKE_MAX_FRAME);
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
      conn.limitIncoming(Infinity);
      conn.learnShapes();
      session = new PeerSession(this.#nextId++, peer, conn, remote, {
        perConnection: this.#perConnection,
        node: this.#budget,
      });
      this.#sessions.add(session);
      o.onSession?.(session);
      await this.#dispatch(session);
    } catch (err) {
      this.#report("connection", remote, err);
    } finally {
      conn.close();
      this.#connections.delete(conn);
      if (session) {
        session.releaseAll();
        this.#sessions.delete(session);
        try {
          o.onSessionClose?.(session);
        } catch (err) {
          this.#report("connection", remote, err);
        }
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
        session.replyError(undefined, err);
        if (err.fatal || bad > maxBad) {
          await conn.end(500);
          return;
        }
        continue;
      }
      if (msg === null) return;
      if (!validRid(msg.rid)) {
        session.replyError(
          undefined,
          new ProtocolError(
            ErrorCode.BadField,
            `Cannot accept ${
              quote(msg.t, 64)
            }: rid must be an integer or a string of at most ${MAX_RID_LENGTH} characters, got ${
              quote(msg.rid, 32)
            }`,
          ),
        );
        continue;
      }
      const handler = this.#handlers.get(msg.t);
      if (!handler) {
        session.replyError(
          msg,
          new ProtocolError(
            ErrorCode.UnknownType,
            `Cannot handle ${quote(msg.t)}: unknown message type for role ${o.identity.role}`,
          ),
        );
        continue;
      }
      const cost = conn.lastFrameCost;
      const rid = msg.rid;
      // a big request stays charged until its reply (its handler may answer later); any
      // other frame only while its handler runs, counted without a record per frame
      const untilReply = rid !== undefined && cost >= HOLD_UNTIL_REPLY_BYTES;
      if (!(untilReply ? session.hold(rid, cost) : session.charge(cost))) {
        session.replyError(
          msg,
          new ProtocolError(
            ErrorCode.Overloaded,
            `Cannot handle ${
              quote(msg.t, 64)
            }: requests awaiting replies hold too much memory; retry later`,
          ),
        );
        continue;
      }
      let answered = true;
      try {
        let result = handler(msg, session);
        if (result instanceof Promise) result = await result;
        if (result) session.reply(msg, result);
        else answered = false;
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
      } finally {
        // a big request answered later (the handler kept it) stays charged until its reply
        if (!untilReply) session.uncharge(cost);
        else if (answered) session.release(rid);
      }
    }
  }
}

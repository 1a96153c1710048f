/**
 * Client side: dial a node, run the handshake, and make requests that are matched to their
 * replies by `rid`.
 *
 * @module
 */
import type { Message } from "./codec.ts";
import { FrameConnection, type FrameConnectionOptions } from "./connection.ts";
import { ErrorCode, HANDSHAKE_MAX_FRAME } from "./constants.ts";
import { ConnectionClosedError, ProtocolError, RemoteError, WireError } from "./errors.ts";
import { type HandshakeOptions, offerHandshake, type PeerIdentity } from "./handshake.ts";
import { connectTls, type TlsConfig } from "./tls.ts";

/** Where to dial: TCP host and port, or a Unix socket path. */
export type DialAddress = { hostname: string; port: number } | { path: string };

/** Options of {@linkcode dial} and {@linkcode RpcClient.connect}. */
export interface DialOptions
  extends FrameConnectionOptions, Partial<Omit<HandshakeOptions, "signal">> {
  /** Cancels connecting. */
  signal?: AbortSignal;
  /** How long connecting plus the handshake may take. @default {5000} */
  timeoutMs?: number;
  /** Dial with TLS, verifying the server by these settings (TCP addresses only). */
  tls?: TlsConfig;
  /**
   * Called when the link fails for a security reason (the server could not prove the
   * secret, refused ours, or failed TLS verification), before `dial` throws — for a
   * `wire.error` event. Not called for plain unreachability.
   */
  onProblem?: (what: string, detail: { remote: string; code: string; message: string }) => void;
}

/** What every outgoing link of a node carries: the secret, TLS, and where to report refusals. */
export type LinkSecurity = Pick<DialOptions, "secret" | "tls" | "onProblem">;

/** Socket error codes that mean "not reachable", not "TLS refused". */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
]);

function remoteOf(address: DialAddress): string {
  return "path" in address ? address.path : `${address.hostname}:${address.port}`;
}

/** Opens a TCP (TLS when `options.tls`, or Unix) connection and frames it, without a handshake. */
export async function dialRaw(
  address: DialAddress,
  options: DialOptions = {},
): Promise<FrameConnection> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 5_000);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  let conn: Deno.Conn;
  if ("path" in address) {
    conn = await Deno.connect({ transport: "unix", path: address.path });
  } else if (options.tls) {
    try {
      conn = await connectTls(address, options.tls, signal);
    } catch (err) {
      // unreachable is not a TLS failure: only those are reported and turned unauthorized
      const code = String((err as { code?: unknown }).code ?? "");
      if (signal.aborted || UNREACHABLE.has(code)) throw err;
      const message = `Cannot open TLS to ${remoteOf(address)}: ${
        err instanceof Error ? err.message : String(err)
      }`;
      options.onProblem?.("tls", { remote: remoteOf(address), code: "tls", message });
      throw new ProtocolError(ErrorCode.Unauthorized, message);
    }
  } else {
    conn = await Deno.connect(
      { hostname: address.hostname, port: address.port, signal } as Deno.ConnectOptions,
    );
  }
  if (!("path" in address)) {
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // not every platform supports it
    }
  }
  return new FrameConnection(conn, options);
}

/**
 * Dials `address` and runs the client handshake; resolves with the ready connection. With
 * a secret it resolves only after the server proved the secret: an impostor gets nothing
 * but our hello, and `dial` throws a `ProtocolError` with code `impostor`.
 */
export async function dial(
  address: DialAddress,
  options: DialOptions = {},
): Promise<{ conn: FrameConnection; server: PeerIdentity }> {
  const conn = await dialRaw(address, options);
  // nobody makes us buffer a big frame before its welcome
  conn.limitIncoming(HANDSHAKE_MAX_FRAME);
  try {
    const server = await offerHandshake(conn, {
      role: options.role ?? "client",
      name: options.name ?? "",
      secret: options.secret,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
    conn.limitIncoming(Infinity);
    conn.learnShapes();
    return { conn, server };
  } catch (err) {
    conn.close();
    const code = err instanceof ProtocolError || err instanceof RemoteError ? err.code : "";
    if (
      code === ErrorCode.Impostor || code === ErrorCode.Unauthorized ||
      code === ErrorCode.BadVersion
    ) {
      options.onProblem?.("handshake", {
        remote: remoteOf(address),
        code: String(code),
        message: err instanceof Error ? err.message : String(err),
      });
    }
    throw err;
  }
}

/** Options of {@linkcode RpcClient.request}. */
export interface RequestOptions {
  /** Cancels waiting for the reply. */
  signal?: AbortSignal;
  /** How long to wait for the reply. @default {30000} */
  timeoutMs?: number;
}

interface Pending {
  resolve(msg: Message): void;
  reject(err: unknown): void;
  /** When it times out, on the `performance.now()` clock. */
  deadline: number;
  /** The request's type, for the timeout message. */
  t: unknown;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * A request/reply client over one framed connection. Requests carry a fresh `rid`; the
 * reply with the same `rid` resolves the request (an `error` frame rejects it with
 * {@linkcode RemoteError}). Frames without a known `rid` go to `onMessage`. Timeouts share
 * one timer, armed for the earliest deadline (no timer per request).
 *
 * Closing rejects every pending request with `ConnectionClosedError`.
 */
export class RpcClient implements AsyncDisposable {
  readonly conn: FrameConnection;
  /** The server's identity from its welcome. */
  readonly server: PeerIdentity;
  /** Receives frames that are not replies (pushes). */
  onMessage: (msg: Message) => void = () => {};
  /** Called once when the connection is gone. */
  onClose: (err?: unknown) => void = () => {};
  #nextRid = 1;
  #pending = new Map<number, Pending>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #done: Promise<void>;

  constructor(conn: FrameConnection, server: PeerIdentity) {
    this.conn = conn;
    this.server = server;
    this.#done = this.#readLoop();
  }

  /** Dials, handshakes, and starts reading. */
  static async connect(address: DialAddress, options: DialOptions = {}): Promise<RpcClient> {
    const { conn, server } = await dial(address, options);
    return new RpcClient(conn, server);
  }

  /** Requests waiting for their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Sends a frame that expects no reply. */
  send(msg: Message): boolean {
    return this.conn.send(msg);
  }

  /** Sends `msg` with a fresh `rid` and resolves with the reply. */
  request(msg: Message, options: RequestOptions = {}): Promise<Message> {
    const rid = this.#nextRid++;
    return new Promise<Message>((resolve, reject) => {
      if (this.conn.closed) {
        reject(new ConnectionClosedError(`Cannot send ${msg.t}: connection closed`));
        return;
      }
      const signal = options.signal;
      const entry: Pending = {
        resolve,
        reject,
        deadline: performance.now() + (options.timeoutMs ?? 30_000),
        t: msg.t,
      };
      if (signal) {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        entry.signal = signal;
        entry.onAbort = () => this.#take(rid)?.reject(signal.reason);
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.#pending.set(rid, entry);
      this.#arm(entry.deadline);
      try {
        this.conn.send({ ...msg, rid });
      } catch (err) {
        this.#take(rid)?.reject(err);
      }
    });
  }

  /** Closes the connection and waits for the reader to stop. Safe to call twice. */
  async close(): Promise<void> {
    this.conn.close();
    await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #readLoop(): Promise<void> {
    let failure: unknown;
    try {
      for (;;) {
        let msg: Message | null;
        try {
          msg = this.conn.readBuffered() ?? await this.conn.read();
        } catch (err) {
          if (err instanceof WireError && !err.fatal) continue;
          failure = err;
          break;
        }
        if (msg === null) break;
        const rid = msg.rid;
        const pending = typeof rid === "number" ? this.#take(rid) : undefined;
        if (pending) {
          if (msg.t === "error") pending.reject(new RemoteError(msg));
          else pending.resolve(msg);
        } else {
          try {
            this.onMessage(msg);
          } catch {
            // a faulty push handler must not stop replies
          }
        }
      }
    } finally {
      this.conn.close();
      const err = new ConnectionClosedError("Cannot get a reply: connection closed", {
        cause: failure,
      });
      for (const rid of [...this.#pending.keys()]) this.#take(rid)?.reject(err);
      try {
        this.onClose(failure ?? this.conn.closeError);
      } catch {
        // ignore
      }
    }
  }

  /** Removes the request `rid` from the pending ones and returns it (undefined if gone). */
  #take(rid: number): Pending | undefined {
    const entry = this.#pending.get(rid);
    if (!entry) return undefined;
    this.#pending.delete(rid);
    if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
    if (this.#pending.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    return entry;
  }

  /** Makes sure the shared timer fires no later than `deadline`. */
  #arm(deadline: number): void {
    if (deadline >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = deadline;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - performance.now()));
    Deno.unrefTimer(this.#timer); // as AbortSignal.timeout: a timeout alone keeps nobody alive
  }

  /** Rejects the requests whose deadline has passed and re-arms for the next one. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [rid, entry] of [...this.#pending]) {
      if (entry.deadline <= now) {
        this.#take(rid);
        entry.reject(
          new ProtocolError(ErrorCode.Timeout, `Cannot get a reply to ${entry.t}: timed out`),
        );
      } else if (entry.deadline < next) next = entry.deadline;
    }
    if (next < Infinity) this.#arm(next);
  }
}

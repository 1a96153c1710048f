/**
 * A pipelined request/reply link to one node that reconnects by itself: many requests in
 * flight on one connection, matched by `rid`, with one timer sweeping timeouts (no timer
 * per request), and capped, jittered reconnect backoff with one attempt at a time.
 *
 * @module
 */
import {
  Backoff,
  ConnectionClosedError,
  dial,
  ErrorCode,
  type FrameConnection,
  type LinkSecurity,
  type Message,
  ProtocolError,
  RemoteError,
  sleep,
  WireError,
} from "../wire/mod.ts";

/** Options of {@linkcode PeerLink}. */
export interface PeerLinkOptions {
  /** Our role in the hello. */
  role: string;
  /** Our name in the hello. */
  name: string;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame. */
  maxFrame?: number;
  /** Default request timeout. @default {5000} */
  timeoutMs?: number;
  /** Called when the link goes up or down. */
  onState?: (up: boolean) => void;
}

interface Pending {
  resolve(msg: Message): void;
  reject(err: unknown): void;
  deadline: number;
  /** The connection it was sent on, when a timeout should close it. */
  resetConn?: FrameConnection;
}

/**
 * A link to `hostname:port`. `request` connects on demand (one shared attempt); when the
 * connection breaks, every pending request is rejected with `ConnectionClosedError` and
 * the next request reconnects, no sooner than the backoff allows.
 */
export class PeerLink {
  readonly hostname: string;
  readonly port: number;
  #options: PeerLinkOptions;
  #conn: FrameConnection | undefined;
  #connecting: Promise<FrameConnection> | undefined;
  #pending = new Map<number, Pending>();
  #nextRid = 1;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #backoff = new Backoff({ initialMs: 100, maxMs: 2_000, jitter: 0.25 });
  #nextAttempt = 0;
  #readers = new Set<Promise<void>>();
  /** A coarse clock for deadlines, refreshed by the sweep (every 50 ms) while requests wait. */
  #now = 0;

  constructor(hostname: string, port: number, options: PeerLinkOptions) {
    this.hostname = hostname;
    this.port = port;
    this.#options = options;
  }

  /** Whether the connection is up. */
  get up(): boolean {
    return this.#conn !== undefined && !this.#conn.closed;
  }

  /** Requests waiting for a reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends `msg` and resolves with the reply; an error frame rejects with `RemoteError`.
   * `patient` waits out a reconnect backoff first; `resetOnTimeout` closes the connection
   * when this request times out (a partition leaves TCP silent, not broken: every other
   * request on it then fails over at once and the next one dials afresh).
   */
  async request(
    msg: Message,
    timeoutMs = this.#options.timeoutMs ?? 5_000,
    options: { patient?: boolean; resetOnTimeout?: boolean } = {},
  ): Promise<Message> {
    if (!this.up && options.patient) {
      // wait out a reconnect backoff (bounded by the timeout) instead of failing at once
      const wait = this.#nextAttempt - performance.now();
      // (a timer may fire a fraction of a millisecond early: wait one more)
      if (wait > 0 && wait < timeoutMs) await sleep(Math.ceil(wait) + 1);
    }
    const conn = this.up ? this.#conn! : await this.#connect();
    return new Promise<Message>((resolve, reject) => {
      const rid = this.#nextRid++;
      this.#ensureSweep();
      this.#pending.set(rid, {
        resolve,
        reject,
        deadline: this.#now + timeoutMs,
        resetConn: options.resetOnTimeout ? conn : undefined,
      });
      try {
        conn.send({ ...msg, rid });
      } catch (err) {
        this.#pending.delete(rid);
        reject(err);
      }
    });
  }

  /**
   * Closes the current connection (the link stays usable): what is pending on it is
   * rejected with `ConnectionClosedError`, and the next request dials again.
   */
  reset(): void {
    this.#conn?.close();
  }

  /** Closes the link and rejects what is pending. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#conn?.close();
    await this.#connecting?.catch(() => {});
    this.#conn?.close();
    await Promise.allSettled([...this.#readers]);
  }

  #ensureSweep(): void {
    if (this.#sweep !== undefined) return;
    this.#now = performance.now();
    this.#sweep = setInterval(() => {
      const now = this.#now = performance.now();
      const stalled = new Set<FrameConnection>();
      for (const [rid, p] of this.#pending) {
        if (p.deadline <= now) {
          this.#pending.delete(rid);
          p.reject(new ProtocolError(ErrorCode.Timeout, "Cannot get a reply: timed out"));
          if (p.resetConn) stalled.add(p.resetConn);
        }
      }
      for (const conn of stalled) if (conn === this.#conn) this.reset();
      if (this.#pending.size === 0) {
        clearInterval(this.#sweep);
        this.#sweep = undefined;
      }
    }, 50);
  }

  #connect(): Promise<FrameConnection> {
    if (this.#closed) {
      return Promise.reject(new ConnectionClosedError("Cannot send: link closed"));
    }
    if (this.#connecting) return this.#connecting;
    const wait = Math.max(0, this.#nextAttempt - performance.now());
    if (wait > 0) {
      return Promise.reject(
        new ConnectionClosedError(
          `Cannot reach ${this.hostname}:${this.port}: retrying in ${Math.round(wait)} ms`,
        ),
      );
    }
    this.#connecting = (async () => {
      try {
        const { conn } = await dial({ hostname: this.hostname, port: this.port }, {
          role: this.#options.role,
          name: this.#options.name,
          ...this.#options.security,
          maxFrame: this.#options.maxFrame,
          timeoutMs: 2_000,
        });
        if (this.#closed) {
          conn.close();
          throw new ConnectionClosedError("Cannot send: link closed");
        }
        this.#conn = conn;
        this.#backoff.reset();
        const reader = this.#read(conn);
        this.#readers.add(reader);
        reader.finally(() => this.#readers.delete(reader));
        this.#options.onState?.(true);
        return conn;
      } catch (err) {
        this.#nextAttempt = performance.now() + this.#backoff.next();
        throw err;
      } finally {
        this.#connecting = undefined;
      }
    })();
    return this.#connecting;
  }

  async #read(conn: FrameConnection): Promise<void> {
    try {
      for (;;) {
        let msg: Message | null;
        try {
          msg = conn.readBuffered() ?? await conn.read();
        } catch (err) {
          if (err instanceof WireError && !err.fatal) continue;
          break;
        }
        if (msg === null) break;
        const rid = msg.rid;
        if (typeof rid !== "number") continue;
        const p = this.#pending.get(rid);
        if (!p) continue;
        this.#pending.delete(rid);
        if (msg.t === "error") p.reject(new RemoteError(msg));
        else p.resolve(msg);
      }
    } finally {
      conn.close();
      if (this.#conn === conn) this.#conn = undefined;
      const err = new ConnectionClosedError(
        `Cannot get a reply from ${this.hostname}:${this.port}: connection closed`,
      );
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      if (!this.#closed) {
        this.#nextAttempt = performance.now() + 100;
        this.#options.onState?.(false);
      }
    }
  }
}

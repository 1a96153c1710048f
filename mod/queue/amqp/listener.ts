/**
 * The AMQP 0-9-1 listener: the thin TCP adapter around {@linkcode AmqpSession}. It
 * accepts connections, feeds what it reads to the session, writes what the session
 * produced (everything of one turn of the event loop in one write, one write in flight),
 * reports backpressure back, and ticks every session once a second for heartbeats. A
 * session blocked by memory pressure is not read from until it is let go.
 *
 * @module
 */
import type { QueueEngine } from "../engine.ts";
import type { AmqpAuthenticate } from "./handshake.ts";
import { AmqpSession, type AmqpSessionOptions } from "./session.ts";

/** Options of {@linkcode AmqpListener.listen}. */
export interface AmqpListenerOptions
  extends Omit<AmqpSessionOptions, "authenticate" | "label" | "now"> {
  /** Where to listen. */
  hostname: string;
  /** Port (0 = any free one). */
  port: number;
  /** Checks a login; `remote` is the client's address. */
  authenticate: (
    user: string,
    password: string,
    mechanism: string,
    remote: Deno.NetAddr,
  ) => boolean;
}

const READ_BYTES = 64 * 1024;
/**
 * How long a connection whose last frames went out waits, with its write side shut, for
 * the client's own end of the stream before the socket is closed anyway.
 */
const LINGER_MS = 2_000;

class AmqpSocket {
  readonly session: AmqpSession;
  readonly #engine: QueueEngine;
  readonly #conn: Deno.Conn;
  #pending = 0;
  #writing = false;
  #scheduled = false;
  #ending = false;
  #eof = false;
  #lingerUntil = 0;
  #closed = false;
  #wakeReader?: () => void;
  readonly done: Promise<void>;
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((r) => this.#resolveClosed = r);

  constructor(
    engine: QueueEngine,
    conn: Deno.Conn,
    options: AmqpSessionOptions,
  ) {
    this.#conn = conn;
    this.#engine = engine;
    this.session = new AmqpSession(engine, {
      wake: () => this.#schedule(),
      pendingBytes: () => this.#pending,
      end: () => {
        this.#ending = true;
        this.#schedule();
      },
      readable: () => this.#wakeReader?.(),
    }, { ...options, now: performance.now() });
    this.done = this.#readLoop();
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing || this.#closed) return;
    // (a write in progress picks up new output and the ending when it finishes)
    this.#scheduled = true;
    queueMicrotask(() => {
      // deliveries of stored messages go out after the commit that records them as
      // delivered (so a kill -9 cannot lose their redelivered flag); it ends this turn
      const recorded = this.#engine.deliveriesRecorded();
      if (recorded) {
        recorded.then(() => {
          this.#scheduled = false;
          this.#writeLoop();
        });
        return;
      }
      this.#scheduled = false;
      this.#writeLoop();
    });
  }

  async #writeLoop(): Promise<void> {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    try {
      for (;;) {
        const bytes = this.session.takeOutput(performance.now());
        if (!bytes) break;
        this.#pending += bytes.length;
        let at = 0;
        while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
        this.#pending -= bytes.length;
      }
    } catch {
      this.close();
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#ending) {
      this.#endWrite();
      return;
    }
    // deliveries paused by backpressure go on (the session checks its own mark)
    this.session.drained();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_BYTES);
    try {
      while (!this.#closed) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.session.receive(buf.subarray(0, n), performance.now());
        if (this.session.phase === "closed" && !this.#ending) break;
        // a publisher blocked by memory pressure: read again once it is let go (or closed)
        while (this.session.readBlocked && !this.#closed) {
          await new Promise<void>((resolve) => this.#wakeReader = resolve);
          this.#wakeReader = undefined;
        }
      }
    } catch {
      // reset by peer, or closed by us
    } finally {
      this.session.transportClosed();
      // what the session wrote last (a close, a protocol header) goes out, then the socket closes
      this.#eof = true;
      this.#ending = true;
      this.#schedule();
    }
    await this.#closedPromise;
  }

  /**
   * The session's last bytes are written. If the client has not ended its side, only ours
   * is shut (FIN) and what it still sends is read and dropped until its end or
   * {@linkcode LINGER_MS}: a client may have frames queued behind its `connection.close`
   * (amqplib writes a channel's backlog after a close on channel 0), and closing outright
   * would answer them with a reset, which the client sees as `write EPIPE` and which can
   * discard our `close-ok` before the client has read it.
   */
  #endWrite(): void {
    if (this.#closed) return;
    if (this.#eof) return this.close();
    if (this.#lingerUntil) return;
    this.#lingerUntil = performance.now() + LINGER_MS;
    this.#conn.closeWrite().catch(() => this.close());
  }

  tick(now: number): void {
    if (this.#lingerUntil && now > this.#lingerUntil) return this.close();
    this.session.tick(now);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeReader?.();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#resolveClosed();
  }
}

/**
 * Serves AMQP 0-9-1 over TCP on one engine. `close()` stops accepting, sends every
 * connection `connection.close` 320 CONNECTION_FORCED (their unacknowledged deliveries go
 * back to their queues), closes the sockets within 0.5 s and waits for their loops; safe
 * to call twice.
 */
export class AmqpListener implements AsyncDisposable {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #engine: QueueEngine;
  readonly #options: AmqpListenerOptions;
  readonly #sockets = new Set<AmqpSocket>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #accepting: Promise<void>;
  #closed = false;

  private constructor(engine: QueueEngine, options: AmqpListenerOptions) {
    this.#engine = engine;
    this.#options = options;
    this.#listener = Deno.listen({ hostname: options.hostname, port: options.port });
    this.#timer = setInterval(() => {
      const now = performance.now();
      for (const s of this.#sockets) s.tick(now);
    }, 1000);
    this.#accepting = this.#accept();
  }

  /** Starts listening (throws when the address is taken). */
  static listen(engine: QueueEngine, options: AmqpListenerOptions): AmqpListener {
    return new AmqpListener(engine, options);
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** Open connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      if (this.#closed) {
        conn.close();
        return;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // not fatal
      }
      const remote = conn.remoteAddr;
      const auth: AmqpAuthenticate = (u, p, m) => this.#options.authenticate(u, p, m, remote);
      const s = new AmqpSocket(this.#engine, conn, {
        ...this.#options,
        authenticate: auth,
        label: `amqp@${remote.hostname}:${remote.port}`,
      });
      this.#sockets.add(s);
      s.done.finally(() => this.#sockets.delete(s));
    }
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      this.#listener.close();
    } catch {
      // closed
    }
    await this.#accepting;
    const done = [...this.#sockets].map((s) => s.done);
    // tell every client (320 CONNECTION_FORCED), give the closes a moment to go out
    for (const s of this.#sockets) s.session.shutdown();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(done),
      new Promise((resolve) => timer = setTimeout(resolve, 500)),
    ]);
    clearTimeout(timer);
    for (const s of this.#sockets) s.close();
    await Promise.all(done);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Optional TLS for every link (`--tls-cert`, `--tls-key`, `--tls-ca`).
 *
 * Both ends use Deno's `node:tls` (rustls underneath), adapted to the `Deno.Conn` subset
 * the frame code reads and writes:
 *
 * - servers: `Deno.listenTls` cannot ask for client certificates; with a CA the server
 *   requires a client certificate that chains to it (mutual TLS) and the handshake fails for
 *   any other client; without a CA it only proves itself to clients. A plaintext client
 *   fails the TLS handshake and never reaches the frame protocol.
 * - clients: the server's certificate must chain to the CA (`caCerts`, else the system
 *   roots) and name the dialled host (an IP SAN for an address); a client certificate is
 *   presented when one is configured. `Deno.connectTls` would do the same checks, but its
 *   connection has no `setNoDelay` (and `Deno.startTls` takes no client certificate), so
 *   Nagle's algorithm held the first frame after the handshake for a delayed ACK: ~40 ms on
 *   every new link.
 *
 * @module
 */
import type * as NodeTls from "node:tls";
import type { Buffer } from "node:buffer";
import { HANDSHAKE_TIMEOUT_MS } from "./constants.ts";

/** What a node or client needs for TLS; PEM texts, not paths. */
export interface TlsConfig {
  /** This end's certificate chain (PEM); a server needs one, a client presents it. */
  cert?: string;
  /** The private key of `cert` (PEM). */
  key?: string;
  /** CA certificates (PEM) that peers' certificates must chain to; makes servers mutual. */
  caCerts?: string[];
}

let nodeTls: typeof NodeTls | undefined;

/**
 * Loads `node:tls` (tens of milliseconds at start, so only processes that use TLS pay it).
 * `connectTls` calls it itself; a {@linkcode TlsListener} needs it done first (the CLI does
 * it for a node started with `--tls-*`).
 */
export async function loadNodeTls(): Promise<void> {
  nodeTls ??= await import("node:tls");
}

/** Whether `host` is an IP address literal (no SNI name is sent for those). */
function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/**
 * Opens a TLS connection to `hostname:port`, verifying the server by `tls` (chain to the
 * CA, or the system roots; the certificate must name `hostname`). Resolves once the TLS
 * handshake is done; `signal` aborts connecting and the handshake.
 */
export async function connectTls(
  address: { hostname: string; port: number },
  tls: TlsConfig,
  signal?: AbortSignal,
): Promise<Deno.Conn> {
  if (signal?.aborted) throw signal.reason;
  await loadNodeTls();
  const socket = nodeTls!.connect({
    host: address.hostname,
    port: address.port,
    ...(isIpLiteral(address.hostname) ? {} : { servername: address.hostname }),
    ...(tls.caCerts?.length ? { ca: tls.caCerts } : {}),
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
  });
  // no Nagle from the first byte (see TlsListener)
  socket.setNoDelay(true);
  let onAbort = () => {};
  try {
    await new Promise<void>((resolve, reject) => {
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
  } catch (err) {
    socket.on("error", () => {}); // late errors of a socket given up
    socket.destroy();
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return new TlsSocketConn(socket) as unknown as Deno.Conn;
}

const READ_HIGH_WATER = 1024 * 1024;

/** A `node:tls` socket as the `Deno.Conn` subset the frame server reads and writes. */
class TlsSocketConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  #socket: NodeTls.TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #waiter: (() => void) | undefined;
  #drainWaiter: (() => void) | undefined;
  #closed = false;

  constructor(socket: NodeTls.TLSSocket) {
    this.#socket = socket;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    this.localAddr = {
      transport: "tcp",
      hostname: socket.localAddress ?? "",
      port: socket.localPort ?? 0,
    };
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#buffered += chunk.byteLength;
      if (this.#buffered > READ_HIGH_WATER) socket.pause();
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
      this.#drainWaiter?.();
    });
    socket.on("error", (err: Error) => {
      this.#error ??= err;
      this.#wake();
      this.#drainWaiter?.();
    });
    socket.on("drain", () => this.#drainWaiter?.());
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.BadResource("connection closed");
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const head = this.#chunks[0];
      const take = Math.min(head.length, p.length - n);
      p.set(head.subarray(0, take), n);
      n += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered <= READ_HIGH_WATER / 2 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    if (this.#closed) throw new Deno.errors.BadResource("connection closed");
    if (this.#error) throw this.#error;
    // the caller reuses its buffer once write resolves: hand the socket a copy
    const more = this.#socket.write(p.slice());
    if (!more) {
      await new Promise<void>((resolve) => this.#drainWaiter = resolve);
      this.#drainWaiter = undefined;
      if (this.#error) throw this.#error;
    }
    return p.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#wake();
    this.#drainWaiter?.();
  }

  setNoDelay(): void {}
}

/** Called for connections whose TLS handshake failed (plaintext or uncertified clients). */
export type TlsRefusal = (remote: string, message: string) => void;

/**
 * A TLS listener with the shape of a `Deno.Listener` (`accept`, `addr`, `close`): the
 * accepted connections have finished the TLS handshake (and, with a CA, presented a
 * client certificate that chains to it).
 */
export class TlsListener {
  readonly #server: NodeTls.Server;
  readonly #queue: TlsSocketConn[] = [];
  #waiter: { resolve(c: TlsSocketConn): void; reject(e: unknown): void } | undefined;
  #closed = false;
  #addr: Deno.NetAddr;
  #ready: Promise<void>;

  constructor(
    listen: { hostname: string; port: number },
    tls: TlsConfig,
    onRefused?: TlsRefusal,
  ) {
    if (!tls.cert || !tls.key) {
      throw new TypeError("Cannot listen with TLS: a certificate and its key are needed");
    }
    if (!nodeTls) {
      throw new TypeError("Cannot listen with TLS: node:tls is not loaded (await loadNodeTls())");
    }
    const mutual = (tls.caCerts?.length ?? 0) > 0;
    this.#server = nodeTls.createServer({
      cert: tls.cert,
      key: tls.key,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(mutual ? { ca: tls.caCerts, requestCert: true, rejectUnauthorized: true } : {}),
    }, (socket) => {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      const conn = new TlsSocketConn(socket);
      const w = this.#waiter;
      this.#waiter = undefined;
      if (w) w.resolve(conn);
      else this.#queue.push(conn);
    });
    // no Nagle from the first byte: the TLS handshake's small flights would otherwise wait
    // for delayed ACKs (~40 ms per connection)
    this.#server.on("connection", (socket: { setNoDelay(on: boolean): void }) => {
      socket.setNoDelay(true);
    });
    this.#server.on("tlsClientError", (err: Error, socket: NodeTls.TLSSocket) => {
      onRefused?.(`${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`, err.message);
      socket.destroy();
    });
    // bind once synchronously, as Deno.listen does: an address in use throws here, and
    // port 0 becomes a real port the caller can read at once
    const probe = Deno.listen({ hostname: listen.hostname, port: listen.port });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    this.#addr = { transport: "tcp", hostname: listen.hostname, port };
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, listen.hostname, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    this.#ready.catch((err) => onRefused?.(`${listen.hostname}:${port}`, `listen: ${err}`));
  }

  /** Resolves once listening (rejects as `Deno.listen` would throw, e.g. address in use). */
  listening(): Promise<void> {
    return this.#ready;
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#addr;
  }

  /** The next accepted connection; rejects with `BadResource` once closed. */
  async accept(): Promise<Deno.Conn> {
    try {
      await this.#ready;
    } catch (err) {
      throw new Deno.errors.BadResource(`Cannot listen with TLS: ${err}`);
    }
    const queued = this.#queue.shift();
    if (queued) return queued as unknown as Deno.Conn;
    if (this.#closed) throw new Deno.errors.BadResource("listener closed");
    return await new Promise<Deno.Conn>((resolve, reject) => {
      this.#waiter = { resolve: (c) => resolve(c as unknown as Deno.Conn), reject };
    });
  }

  /** Stops listening; queued connections are closed. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const c of this.#queue.splice(0)) c.close();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(new Deno.errors.BadResource("listener closed"));
  }
}

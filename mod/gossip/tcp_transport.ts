/**
 * The real network: one outgoing framed TCP connection per peer address (with the hello
 * handshake and the cluster secret), opened on first use. Messages to a peer that cannot
 * be reached are dropped, and the address is not dialled again for a back-off period
 * (capped, jittered, growing while the address keeps failing: a `Backoff` per address);
 * the protocol's anti-entropy and failure detection take care of the rest.
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import type { Logger } from "../events/mod.ts";
import {
  Backoff,
  DEFAULT_HIGH_WATER_MARK,
  type LinkSecurity,
  type Message,
  RpcClient,
} from "../wire/mod.ts";
import type { GossipMessage } from "./messages.ts";
import type { GossipTransport } from "./transport.ts";

/** Options of {@linkcode TcpTransport}. */
export interface TcpTransportOptions {
  /** This node's name (sent in hello). */
  name: string;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame. */
  maxFrame?: number;
  /** Logs connection trouble at debug level. */
  log?: Logger;
  /** Connect + handshake time limit. @default {2000} */
  connectTimeoutMs?: number;
  /**
   * After a failed connect, drop messages to that address for this long (±25 % jitter);
   * each further failure in a row doubles it, up to `maxBackoffMs`. @default {500}
   */
  backoffMs?: number;
  /**
   * Longest such period. An address that stays down (a dead member, a partition in which
   * each connect waits out `connectTimeoutMs`) is then dialled every 2 s, not every 500 ms;
   * the failure detector's own timeouts are seconds, so a member that comes back is reached
   * as soon as it is believed alive again. @default {2000}
   */
  maxBackoffMs?: number;
  /** Messages queued per address while connecting; more are dropped. @default {256} */
  maxQueue?: number;
}

/** Counters of a {@linkcode TcpTransport}. */
export interface TcpTransportStats {
  /** Frames written to a connection. */
  sent: number;
  /** Frame bytes written. */
  bytes: number;
  /** Messages dropped (unreachable peer, full queue, backpressure, bad address). */
  dropped: number;
  /** Connections opened. */
  connects: number;
  /** Connection attempts that failed. */
  connectFailures: number;
  /** Connections closed by {@linkcode TcpTransport.reset} (a member declared dead). */
  resets: number;
}

interface Link {
  client?: RpcClient;
  connecting: boolean;
  queue: GossipMessage[];
  retryAt: number;
  backoff: Backoff;
}

/** Fire-and-forget gossip delivery over TCP. `close()` closes every connection. */
export class TcpTransport implements GossipTransport, AsyncDisposable {
  readonly #o: TcpTransportOptions;
  readonly #links = new Map<string, Link>();
  readonly #connecting = new Set<Promise<void>>();
  #closed = false;
  /** Counters. */
  readonly stats: TcpTransportStats = {
    sent: 0,
    bytes: 0,
    dropped: 0,
    connects: 0,
    connectFailures: 0,
    resets: 0,
  };

  constructor(options: TcpTransportOptions) {
    this.#o = options;
  }

  /** Open connections. */
  get connections(): number {
    let n = 0;
    for (const link of this.#links.values()) if (link.client) n++;
    return n;
  }

  send(addr: string, msg: GossipMessage): void {
    if (this.#closed) return;
    let link = this.#links.get(addr);
    if (!link) {
      const initialMs = this.#o.backoffMs ?? 500;
      const maxMs = Math.max(initialMs, this.#o.maxBackoffMs ?? 2_000);
      link = {
        connecting: false,
        queue: [],
        retryAt: 0,
        backoff: new Backoff({ initialMs, maxMs }),
      };
      this.#links.set(addr, link);
    }
    if (link.client) {
      this.#write(link.client, msg);
      return;
    }
    if (link.connecting) {
      if (link.queue.length < (this.#o.maxQueue ?? 256)) link.queue.push(msg);
      else this.stats.dropped++;
      return;
    }
    if (performance.now() < link.retryAt) {
      this.stats.dropped++;
      return;
    }
    link.queue.push(msg);
    link.connecting = true;
    const task = this.#connect(addr, link).finally(() => this.#connecting.delete(task));
    this.#connecting.add(task);
  }

  /**
   * Closes the connection to `addr`, if any, so the next `send` dials again (a connection
   * that outlived a partition may be stuck in TCP retransmission back-off for minutes).
   */
  reset(addr: string): void {
    const link = this.#links.get(addr);
    if (!link?.client) return;
    const client = link.client;
    link.client = undefined;
    this.stats.resets++;
    const closing: Promise<void> = client.close().catch(() => {}).finally(() =>
      this.#connecting.delete(closing)
    );
    this.#connecting.add(closing);
  }

  /** Closes every connection (waits for connects in progress). Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#connecting]);
    const clients = [...this.#links.values()].flatMap((l) => (l.client ? [l.client] : []));
    this.#links.clear();
    await Promise.allSettled(clients.map(async (c) => {
      // give queued frames (the leave notice) a moment to go out, then close
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([c.conn.flush(), new Promise((r) => (timer = setTimeout(r, 300)))]);
      clearTimeout(timer);
      await c.close();
    }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #connect(addr: string, link: Link): Promise<void> {
    let client: RpcClient;
    try {
      const hp = parseHostPort(addr, "gossip peer");
      client = await RpcClient.connect(hp, {
        role: "gossip",
        name: this.#o.name,
        ...this.#o.security,
        maxFrame: this.#o.maxFrame,
        timeoutMs: this.#o.connectTimeoutMs ?? 2_000,
      });
    } catch (err) {
      this.stats.connectFailures++;
      this.stats.dropped += link.queue.length;
      link.queue = [];
      link.connecting = false;
      link.retryAt = performance.now() + link.backoff.next();
      this.#o.log?.debug(
        `cannot reach ${addr}: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    link.connecting = false;
    link.backoff.reset();
    if (this.#closed) {
      await client.close();
      return;
    }
    this.stats.connects++;
    link.client = client;
    client.onMessage = (m: Message) => {
      if (m.t === "error") {
        this.#o.log?.warn(
          `${addr} refused a gossip frame: ${String(m.code)}: ${String(m.message)}`,
        );
      }
    };
    client.onClose = () => {
      if (link.client === client) link.client = undefined;
    };
    const queued = link.queue;
    link.queue = [];
    for (const msg of queued) this.#write(client, msg);
  }

  #write(client: RpcClient, msg: GossipMessage): void {
    if (client.conn.pendingBytes >= DEFAULT_HIGH_WATER_MARK) {
      // a slow peer: gossip tolerates loss, memory must not grow
      this.stats.dropped++;
      return;
    }
    try {
      const before = client.conn.pendingBytes;
      const ok = client.conn.send(msg as unknown as Message);
      this.stats.sent++;
      this.stats.bytes += client.conn.pendingBytes - before;
      if (!ok) this.#o.log?.debug("gossip connection reached its high-water mark");
    } catch {
      this.stats.dropped++;
    }
  }
}

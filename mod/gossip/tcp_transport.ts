/**
 * The real network: one outgoing framed TCP connection per peer address (with the hello
 * handshake and the cluster secret), opened on first use: an on-demand wire `PeerLink` per
 * address. Messages to a peer that cannot be reached are dropped, and the address is not
 * dialled again for the link's back-off period (capped, jittered, growing while the address
 * keeps failing); the protocol's anti-entropy and failure detection take care of the rest.
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import type { Logger } from "../events/mod.ts";
import { DEFAULT_HIGH_WATER_MARK, type LinkSecurity, type Message, PeerLink } from "../wire/mod.ts";
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
  link: PeerLink;
  /** Messages waiting for the dial in progress. */
  queue: GossipMessage[];
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
    for (const l of this.#links.values()) if (l.link.up) n++;
    return n;
  }

  send(addr: string, msg: GossipMessage): void {
    if (this.#closed) return;
    const l = this.#links.get(addr) ?? this.#open(addr);
    if (!l) {
      this.stats.dropped++;
      return;
    }
    if (l.link.up) {
      this.#write(l.link, msg);
      return;
    }
    if (l.link.connecting) {
      if (l.queue.length < (this.#o.maxQueue ?? 256)) l.queue.push(msg);
      else this.stats.dropped++;
      return;
    }
    if (l.link.retryInMs > 0) {
      this.stats.dropped++;
      return;
    }
    l.queue.push(msg);
    const task = this.#connect(addr, l).finally(() => this.#connecting.delete(task));
    this.#connecting.add(task);
  }

  /**
   * Closes the connection to `addr`, if any, so the next `send` dials again (a connection
   * that outlived a partition may be stuck in TCP retransmission back-off for minutes).
   */
  reset(addr: string): void {
    const l = this.#links.get(addr);
    if (!l?.link.up) return;
    this.stats.resets++;
    l.link.reset();
  }

  /** Closes every connection (waits for connects in progress). Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#connecting]);
    const links = [...this.#links.values()].map((l) => l.link);
    this.#links.clear();
    // queued frames (the leave notice) get a moment to go out (flushOnCloseMs), then close
    await Promise.allSettled(links.map((link) => link.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The link to `addr` (undefined for an address that cannot be parsed). */
  #open(addr: string): Link | undefined {
    let hp;
    try {
      hp = parseHostPort(addr, "gossip peer");
    } catch (err) {
      this.#o.log?.debug(`cannot send to ${addr}: ${(err as Error).message}`);
      return undefined;
    }
    const initialMs = this.#o.backoffMs ?? 500;
    const maxMs = Math.max(initialMs, this.#o.maxBackoffMs ?? 2_000);
    const link = new PeerLink(hp, {
      role: "gossip",
      name: this.#o.name,
      peer: addr,
      security: this.#o.security,
      maxFrame: this.#o.maxFrame,
      connectTimeoutMs: this.#o.connectTimeoutMs ?? 2_000,
      backoff: { initialMs, maxMs },
      flushOnCloseMs: 300,
      onMessage: (_, m: Message) => {
        if (m.t === "error") {
          this.#o.log?.warn(
            `${addr} refused a gossip frame: ${String(m.code)}: ${String(m.message)}`,
          );
        }
      },
    });
    const l: Link = { link, queue: [] };
    this.#links.set(addr, l);
    return l;
  }

  async #connect(addr: string, l: Link): Promise<void> {
    try {
      await l.link.connect();
    } catch (err) {
      this.stats.connectFailures++;
      this.stats.dropped += l.queue.length;
      l.queue = [];
      this.#o.log?.debug(
        `cannot reach ${addr}: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    this.stats.connects++;
    const queued = l.queue;
    l.queue = [];
    for (const msg of queued) this.#write(l.link, msg);
  }

  #write(link: PeerLink, msg: GossipMessage): void {
    if (link.pendingBytes >= DEFAULT_HIGH_WATER_MARK) {
      // a slow peer: gossip tolerates loss, memory must not grow
      this.stats.dropped++;
      return;
    }
    const before = link.pendingBytes;
    if (link.send(msg as unknown as Message)) {
      this.stats.sent++;
      this.stats.bytes += link.pendingBytes - before;
    } else {
      this.stats.dropped++;
    }
  }
}

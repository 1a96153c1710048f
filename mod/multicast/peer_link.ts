/**
 * The outgoing connection from this node to one other member: every frame this node sends
 * to that member goes over it, so the pair's traffic is FIFO. It redials with capped,
 * jittered backoff while the node runs.
 *
 * @module
 */
import type { NodeEntry } from "../config/mod.ts";
import { Backoff, type LinkSecurity, type Message, RpcClient, sleep } from "../wire/mod.ts";
import type { MulticastTransport } from "./transport.ts";

/** Options of {@linkcode PeerLink}. */
export interface PeerLinkOptions {
  /** This node's name (sent in hello). */
  self: string;
  /** This node's role. */
  role: string;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame. */
  maxFrame: number;
  /** Called (synchronously, before any other frame) each time the link (re)connects. */
  onConnect?: (link: PeerLink) => void;
  /** Frames the peer sends back (error frames for refused traffic). */
  onMessage?: (link: PeerLink, msg: Message) => void;
  /** Stops redialing. */
  signal: AbortSignal;
}

const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 1_000;

/**
 * A self-healing outgoing link. `send()` drops the frame (returns false) while the link is
 * down; the caller resends what matters in `onConnect`. `close()` is safe to call twice.
 */
export class PeerLink {
  /** The peer's entry in the peers file. */
  readonly peer: NodeEntry;
  readonly #options: PeerLinkOptions;
  #client: RpcClient | undefined;
  #closed = false;
  #loop: Promise<void>;
  #wake: (() => void) | undefined;

  constructor(peer: NodeEntry, options: PeerLinkOptions) {
    this.peer = peer;
    this.#options = options;
    this.#loop = this.#run();
  }

  /** The peer's name. */
  get name(): string {
    return this.peer.name;
  }

  /** Whether the link is up. */
  get connected(): boolean {
    return this.#client !== undefined && !this.#client.conn.closed;
  }

  /** Bytes waiting to be written on the link. */
  get pendingBytes(): number {
    return this.#client?.conn.pendingBytes ?? 0;
  }

  /** Sends `msg` if the link is up; false when it is down (the frame is dropped). */
  send(msg: Message): boolean {
    const client = this.#client;
    if (!client || client.conn.closed) return false;
    try {
      client.send(msg);
      return true;
    } catch {
      return false;
    }
  }

  /** Drops the current connection (frames queued on it are lost) and redials at once. */
  reset(): void {
    const client = this.#client;
    if (!client) return;
    this.#client = undefined;
    client.close().catch(() => {});
  }

  /** Ends a redial backoff now (the peer was just heard from, so it is probably up). */
  nudge(): void {
    this.#wake?.();
  }

  /** Resolves once queued bytes are below the connection's high-water mark. */
  async drained(): Promise<void> {
    await this.#client?.conn.drained();
  }

  /** Stops redialing and closes the connection after flushing (bounded). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    const client = this.#client;
    if (client) {
      await client.conn.end(300);
      await client.close();
    }
    await this.#loop;
  }

  async #run(): Promise<void> {
    const o = this.#options;
    const backoff = new Backoff({ initialMs: BACKOFF_MIN_MS, maxMs: BACKOFF_MAX_MS, jitter: 0.25 });
    while (!this.#closed && !o.signal.aborted) {
      let client: RpcClient | undefined;
      try {
        client = await RpcClient.connect(
          { hostname: this.peer.hostname, port: this.peer.port },
          {
            role: o.role,
            name: o.self,
            ...o.security,
            maxFrame: o.maxFrame,
            highWaterMark: 8 * 1024 * 1024,
            timeoutMs: 2_000,
            signal: o.signal,
          },
        );
      } catch {
        client = undefined;
      }
      if (client && !this.#closed) {
        backoff.reset();
        const closed = new Promise<void>((resolve) => {
          client!.onClose = () => resolve();
          if (client!.conn.closed) resolve();
        });
        client.onMessage = (msg) => o.onMessage?.(this, msg);
        this.#client = client;
        try {
          o.onConnect?.(this);
        } catch {
          // a failing callback must not kill the link
        }
        await closed;
        if (this.#client === client) this.#client = undefined;
        await client.close();
        continue;
      }
      if (client) await client.close();
      // a reset or close wakes the wait early
      const wake = new AbortController();
      this.#wake = () => wake.abort();
      await sleep(backoff.next(), AbortSignal.any([o.signal, wake.signal]));
      this.#wake = undefined;
    }
  }
}

/** Options of {@linkcode PeerLinks}. */
export interface PeerLinksOptions extends Omit<PeerLinkOptions, "onConnect" | "onMessage"> {
  /** Called (synchronously) each time the link to `name` (re)connects. */
  onConnect?: (name: string) => void;
  /** Frames a peer sends back on its link (error replies). */
  onMessage?: (name: string, msg: Message) => void;
}

/**
 * The TCP {@linkcode MulticastTransport}: one {@linkcode PeerLink} per other member.
 * `close()` closes every link (safe to call twice).
 */
export class PeerLinks implements MulticastTransport {
  readonly #links = new Map<string, PeerLink>();

  constructor(peers: NodeEntry[], options: PeerLinksOptions) {
    for (const peer of peers) {
      this.#links.set(
        peer.name,
        new PeerLink(peer, {
          ...options,
          onConnect: (link) => options.onConnect?.(link.name),
          onMessage: (link, msg) => options.onMessage?.(link.name, msg),
        }),
      );
    }
  }

  send(to: string, frame: Message): boolean {
    return this.#links.get(to)?.send(frame) ?? false;
  }

  connected(to: string): boolean {
    return this.#links.get(to)?.connected ?? false;
  }

  pendingBytes(to: string): number {
    return this.#links.get(to)?.pendingBytes ?? 0;
  }

  reset(to: string): void {
    this.#links.get(to)?.reset();
  }

  /** Ends `to`'s redial backoff (it was just heard from). */
  nudge(to: string): void {
    const link = this.#links.get(to);
    if (link && !link.connected) link.nudge();
  }

  /** Closes every link. */
  async close(): Promise<void> {
    await Promise.all([...this.#links.values()].map((l) => l.close()));
  }
}

/**
 * The outgoing connection from this node to one other member: every frame this node sends
 * to that member goes over it, so the pair's traffic is FIFO. It redials with capped,
 * jittered backoff while the node runs.
 *
 * @module
 */
import type { NodeEntry } from "../config/mod.ts";
import { type LinkSecurity, type Message, RpcClient } from "../wire/mod.ts";

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
    let backoff = BACKOFF_MIN_MS;
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
        backoff = BACKOFF_MIN_MS;
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
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, backoff * (0.5 + Math.random() / 2));
        function done() {
          clearTimeout(timer);
          o.signal.removeEventListener("abort", done);
          resolve();
        }
        this.#wake = done;
        o.signal.addEventListener("abort", done, { once: true });
      });
      this.#wake = undefined;
      backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    }
  }
}

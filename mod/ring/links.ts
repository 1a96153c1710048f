/**
 * Links from one ring node to every other member: one framed connection each, reconnected
 * with capped backoff, and a heartbeat that declares a member down after missed pongs.
 *
 * @module
 */
import type { HostPort } from "../config/mod.ts";
import { type LinkSecurity, type Message, RpcClient } from "../wire/mod.ts";

/** Options of {@linkcode PeerLinks}. */
export interface PeerLinksOptions {
  /** This node's name (sent in hello). */
  self: string;
  /** The other members and their addresses, in ring order. */
  peers: ReadonlyArray<{ name: string; address: HostPort }>;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame accepted. */
  maxFrame: number;
  /** Heartbeat period per link. @default {1000} */
  heartbeatMs?: number;
  /** Missed heartbeats before a member is declared down. @default {3} */
  failAfter?: number;
  /** Called when a member becomes reachable. */
  onUp(name: string): void;
  /** Called when a reachable member is lost. */
  onDown(name: string): void;
}

/** The link was not connected, so the frame was certainly not sent. */
export class LinkDownError extends Error {
  /** The member. */
  readonly peer: string;

  constructor(peer: string) {
    super(`Cannot send to ${peer}: not connected`);
    this.name = "LinkDownError";
    this.peer = peer;
  }
}

interface Link {
  name: string;
  address: HostPort;
  client: RpcClient | undefined;
  up: boolean;
  connecting: boolean;
  missed: number;
  pinging: boolean;
  backoffMs: number;
  retry: ReturnType<typeof setTimeout> | undefined;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1_000;

/**
 * Keeps one connection to each other member. A member is up from a completed handshake
 * until its connection closes or misses `failAfter` heartbeats; down members are redialled
 * with backoff (100 ms doubling to 1 s). `close()` stops everything; safe to call twice.
 */
export class PeerLinks {
  readonly #options: PeerLinksOptions;
  readonly #links = new Map<string, Link>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: PeerLinksOptions) {
    this.#options = options;
    for (const p of options.peers) {
      this.#links.set(p.name, {
        name: p.name,
        address: p.address,
        client: undefined,
        up: false,
        connecting: false,
        missed: 0,
        pinging: false,
        backoffMs: MIN_BACKOFF_MS,
        retry: undefined,
      });
    }
  }

  /** Dials every member and starts the heartbeat. */
  start(): void {
    for (const link of this.#links.values()) void this.#connect(link);
    this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatMs ?? 1_000);
  }

  /** Whether `name` is connected. */
  isUp(name: string): boolean {
    return this.#links.get(name)?.up ?? false;
  }

  /** Names of the connected members. */
  upNames(): string[] {
    return [...this.#links.values()].filter((l) => l.up).map((l) => l.name);
  }

  /**
   * Sends `msg` to `name` and waits for the reply. Rejects with {@linkcode LinkDownError}
   * when the link is down (nothing was sent); other rejections mean it may have arrived.
   */
  request(name: string, msg: Message, timeoutMs: number): Promise<Message> {
    const link = this.#links.get(name);
    const client = link?.up ? link.client : undefined;
    if (!client || client.conn.closed) return Promise.reject(new LinkDownError(name));
    return client.request(msg, { timeoutMs });
  }

  /** Sends `msg` to `name` without waiting; false when down. */
  send(name: string, msg: Message): boolean {
    const link = this.#links.get(name);
    if (!link?.up || !link.client) return false;
    try {
      return link.client.send(msg);
    } catch {
      return false;
    }
  }

  /** Sends `msg` to every connected member. */
  broadcast(msg: Message): void {
    for (const link of this.#links.values()) if (link.up) this.send(link.name, msg);
  }

  /** Redials `name` now if it is down (it just talked to us, so it is probably back). */
  kick(name: string): void {
    const link = this.#links.get(name);
    if (!link || link.up || link.connecting || this.#closed) return;
    clearTimeout(link.retry);
    link.retry = undefined;
    link.backoffMs = MIN_BACKOFF_MS;
    void this.#connect(link);
  }

  /** Declares `name` down now (closing its connection); it is redialled later. */
  drop(name: string): void {
    const link = this.#links.get(name);
    if (link?.client) void link.client.close();
  }

  /** Closes every link and stops redialling. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    const closing: Promise<void>[] = [];
    for (const link of this.#links.values()) {
      clearTimeout(link.retry);
      if (link.client) closing.push(link.client.close());
    }
    await Promise.allSettled(closing);
  }

  async #connect(link: Link): Promise<void> {
    if (this.#closed || link.connecting || link.client) return;
    link.connecting = true;
    link.retry = undefined;
    let client: RpcClient;
    try {
      client = await RpcClient.connect(link.address, {
        role: "ring",
        name: this.#options.self,
        ...this.#options.security,
        maxFrame: this.#options.maxFrame,
        timeoutMs: 1_000,
      });
    } catch {
      link.connecting = false;
      this.#scheduleRetry(link);
      return;
    }
    link.connecting = false;
    if (this.#closed) {
      await client.close();
      return;
    }
    link.client = client;
    link.up = true;
    link.missed = 0;
    link.backoffMs = MIN_BACKOFF_MS;
    const onClose = () => {
      if (link.client !== client) return;
      link.client = undefined;
      const wasUp = link.up;
      link.up = false;
      if (this.#closed) return;
      if (wasUp) this.#options.onDown(link.name);
      this.#scheduleRetry(link);
    };
    client.onClose = onClose;
    this.#options.onUp(link.name);
    if (client.conn.closed) onClose();
  }

  #scheduleRetry(link: Link): void {
    if (this.#closed || link.retry) return;
    const delay = link.backoffMs * (0.75 + Math.random() * 0.5);
    link.backoffMs = Math.min(link.backoffMs * 2, MAX_BACKOFF_MS);
    link.retry = setTimeout(() => void this.#connect(link), delay);
  }

  #beat(): void {
    const timeoutMs = this.#options.heartbeatMs ?? 1_000;
    const failAfter = this.#options.failAfter ?? 3;
    for (const link of this.#links.values()) {
      const client = link.client;
      if (!link.up || !client || link.pinging) continue;
      link.pinging = true;
      client.request({ t: "ring.ping" }, { timeoutMs }).then(
        () => {
          link.missed = 0;
        },
        () => {
          link.missed++;
          if (link.missed >= failAfter && link.client === client) void client.close();
        },
      ).finally(() => {
        link.pinging = false;
      });
    }
  }
}

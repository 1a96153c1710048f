/**
 * The one link from a node to another node: an {@linkcode RpcClient} (request/reply matched
 * by `rid`, pushes to `onMessage`) that reconnects by itself. One dial attempt at a time,
 * capped and jittered {@linkcode Backoff} after failures, an optional {@linkcode heartbeat}
 * that closes a connection whose peer stopped answering, and an injectable
 * {@linkcode Clock} for the waits. {@linkcode PeerLinks} holds one per member, by name.
 *
 * ```ts
 * const link = new PeerLink({ hostname: "127.0.0.1", port: 7701 }, {
 *   role: "frontend",
 *   name: "fe1",
 * });
 * const reply = await link.request({ t: "rm.ping" }, { timeoutMs: 1_000 });
 * await link.close();
 * ```
 *
 * @module
 */
import type { Message } from "./codec.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { type DialOptions, type LinkSecurity, type RequestOptions, RpcClient } from "./client.ts";
import { ErrorCode } from "./constants.ts";
import { ConnectionClosedError, ProtocolError, RemoteError } from "./errors.ts";
import { heartbeat, type HeartbeatOptions } from "./heartbeat.ts";
import { type Clock, systemClock } from "./retry.ts";

/** Where a peer listens. */
export interface PeerAddress {
  /** Host name or IP. */
  hostname: string;
  /** TCP port. */
  port: number;
}

/** Options of {@linkcode PeerLink}. */
export interface PeerLinkOptions {
  /** Our role in the hello. */
  role: string;
  /** Our name in the hello. */
  name: string;
  /** The peer's name, for error messages. @default {"host:port"} */
  peer?: string;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame. */
  maxFrame?: number;
  /** Queued bytes above which the connection reports backpressure. */
  highWaterMark?: number;
  /** How long connecting plus the handshake may take. @default {2000} */
  connectTimeoutMs?: number;
  /** Redial pacing after a failed dial or a lost connection. @default {{initialMs: 100, maxMs: 2000, jitter: 0.25}} */
  backoff?: BackoffOptions;
  /**
   * Keep the link up: from `start()` on, dial and redial whenever it is down (requests while down fail
   * with {@linkcode LinkDownError} unless patient). Otherwise the link dials on demand: on a
   * request, or on a send while down (that frame is dropped). @default {false}
   */
  persistent?: boolean;
  /** Probe the peer while connected; a probe unanswered for `silenceMs` closes the connection. */
  heartbeat?: Omit<HeartbeatOptions, "signal">;
  /** Default request timeout. @default {5000} */
  timeoutMs?: number;
  /** On close, how long queued frames may take to go out before the socket closes. @default {0} */
  flushOnCloseMs?: number;
  /** Called synchronously once a connection is up, before any other frame goes on it. */
  onUp?: (link: PeerLink) => void;
  /** Called when a connection that was up is lost (not on `close()`). */
  onDown?: (link: PeerLink) => void;
  /** Frames the peer sends that are not replies (pushes, error frames for refused sends). */
  onMessage?: (link: PeerLink, msg: Message) => void;
  /** The clock of the backoff waits. @default {systemClock} */
  clock?: Clock;
  /** Opens a connection (tests inject failures). @default {RpcClient.connect} */
  connect?: (address: PeerAddress, options: DialOptions) => Promise<RpcClient>;
}

/** Options of {@linkcode PeerLink.request}. */
export interface LinkRequestOptions extends RequestOptions {
  /**
   * While the link is down, wait for it (at most the timeout) instead of failing at once: a
   * persistent link waits until it is up, an on-demand one waits out its backoff and dials.
   */
  patient?: boolean;
  /**
   * A timeout closes the connection (a partition leaves TCP silent, not broken: every other
   * request on it fails over at once and the next one dials afresh).
   */
  resetOnTimeout?: boolean;
}

/** The link was down, so the frame was certainly not sent. */
export class LinkDownError extends ConnectionClosedError {
  /** The peer. */
  readonly peer: string;

  constructor(peer: string, detail = "not connected", options?: { cause?: unknown }) {
    super(`Cannot send to ${peer}: ${detail}`, options);
    this.name = "LinkDownError";
    this.peer = peer;
  }
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2_000, jitter: 0.25 };

/**
 * A self-healing link to one peer. Frames sent on it arrive in order while one connection
 * lasts; when it breaks, pending requests reject with `ConnectionClosedError` and the link
 * redials no sooner than the backoff allows (at once after {@linkcode PeerLink.reset} or
 * {@linkcode PeerLink.nudge}). `close()` stops redialing, rejects what is pending and is
 * safe to call twice.
 */
export class PeerLink implements AsyncDisposable {
  /** Where the peer listens. */
  readonly address: PeerAddress;
  /** The peer's name (or address). */
  readonly peer: string;
  readonly #o: PeerLinkOptions;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #upWaiters = new Set<() => void>();
  #client: RpcClient | undefined;
  #connecting: Promise<RpcClient> | undefined;
  /** No dial starts before this time (clock ms). */
  #retryAt = 0;
  #wake: (() => void) | undefined;
  #closed = false;
  #started = false;

  constructor(address: PeerAddress, options: PeerLinkOptions) {
    this.address = address;
    this.peer = options.peer ?? `${address.hostname}:${address.port}`;
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff });
  }

  /** Starts a persistent link's redial loop (dials now). Idempotent; no-op on demand links. */
  start(): void {
    if (!this.#o.persistent || this.#started || this.#closed) return;
    this.#started = true;
    this.#track(this.#keepUp());
  }

  /** Whether a connection is up. */
  get up(): boolean {
    return this.#client !== undefined && !this.#client.conn.closed;
  }

  /** Whether a dial is under way. */
  get connecting(): boolean {
    return this.#connecting !== undefined;
  }

  /** How long until the backoff allows the next dial (0: now). */
  get retryInMs(): number {
    return Math.max(0, this.#retryAt - this.#clock.now());
  }

  /** Requests waiting for a reply. */
  get inFlight(): number {
    return this.#client?.pending ?? 0;
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.#client?.conn.pendingBytes ?? 0;
  }

  /** Dial failures in a row (0 while up). */
  get failures(): number {
    return this.#backoff.failures;
  }

  /**
   * Sends `msg` with a fresh `rid` and resolves with the reply; an error frame rejects with
   * `RemoteError`, a link that is down with {@linkcode LinkDownError}, a timeout with a
   * `ProtocolError` of code `timeout`.
   */
  request(msg: Message, options: LinkRequestOptions = {}): Promise<Message> {
    const client = this.#client;
    const timeoutMs = options.timeoutMs ?? this.#o.timeoutMs ?? 5_000;
    if (client && !client.conn.closed && !options.resetOnTimeout) {
      return client.request(msg, { timeoutMs, signal: options.signal });
    }
    return this.#requestSlow(msg, timeoutMs, options);
  }

  /**
   * Sends a frame that expects no reply. True when it was queued; false when the link is
   * down (the frame is dropped; an on-demand link starts dialing).
   */
  send(msg: Message): boolean {
    const client = this.#client;
    if (!client || client.conn.closed) {
      if (!this.#o.persistent && !this.#closed && this.#clock.now() >= this.#retryAt) {
        this.#connect().catch(() => {});
      }
      return false;
    }
    try {
      client.send(msg);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves with an up connection: the current one, or a fresh dial (one shared attempt). */
  connect(): Promise<RpcClient> {
    return this.#connect();
  }

  /**
   * Drops the current connection (pending requests reject, queued frames are lost) and
   * redials at once: a connection that outlived a partition may sit in TCP retransmission
   * back-off long after the heal, a fresh one is up at once.
   */
  reset(): void {
    const client = this.#client;
    if (!client) return;
    this.#down(client, true);
    this.#track(client.close());
  }

  /** Ends a redial backoff now (the peer was just heard from, so it is probably up). */
  nudge(): void {
    if (this.up || this.#connecting || this.#closed) return;
    this.#backoff.reset();
    this.#retryAt = 0;
    this.#wake?.();
  }

  /** Resolves once queued bytes are below the connection's high-water mark. */
  async drained(): Promise<void> {
    await this.#client?.conn.drained();
  }

  /** Stops redialing and closes the connection (after flushing, bounded). Safe to call twice. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#stop.abort();
      this.#wake?.();
      for (const resolve of this.#upWaiters) resolve();
      await this.#connecting?.catch(() => {});
      const client = this.#client;
      this.#client = undefined;
      if (client) {
        if (this.#o.flushOnCloseMs) await client.conn.end(this.#o.flushOnCloseMs);
        await client.close();
      }
    }
    await Promise.allSettled([...this.#tasks]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #requestSlow(
    msg: Message,
    timeoutMs: number,
    options: LinkRequestOptions,
  ): Promise<Message> {
    let client = this.#client;
    if (!client || client.conn.closed) client = await this.#whenUp(timeoutMs, options);
    try {
      return await client.request(msg, { timeoutMs, signal: options.signal });
    } catch (err) {
      if (
        options.resetOnTimeout && err instanceof ProtocolError &&
        err.code === ErrorCode.Timeout && this.#client === client
      ) this.reset();
      throw err;
    }
  }

  /** The connection for a request made while the link is down. */
  async #whenUp(timeoutMs: number, options: LinkRequestOptions): Promise<RpcClient> {
    if (this.#closed) throw new LinkDownError(this.peer, "link closed");
    if (this.#o.persistent) {
      if (options.patient) await this.#waitUp(timeoutMs);
      const client = this.#client;
      if (!client || client.conn.closed) throw new LinkDownError(this.peer);
      return client;
    }
    const wait = this.#retryAt - this.#clock.now();
    // (a timer may fire a fraction of a millisecond early: wait one more)
    if (options.patient && wait > 0 && wait < timeoutMs) {
      await this.#clock.sleep(Math.ceil(wait) + 1, this.#stop.signal);
    }
    try {
      return await this.#connect();
    } catch (err) {
      if (err instanceof LinkDownError || err instanceof RemoteError) throw err;
      if (err instanceof ProtocolError && err.code !== ErrorCode.Timeout) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new LinkDownError(this.peer, `cannot connect: ${detail}`, { cause: err });
    }
  }

  /** Resolves when the link is up, closed, or after `ms`. */
  async #waitUp(ms: number): Promise<void> {
    if (this.up) return;
    const done = new AbortController();
    let resolveUp!: () => void;
    const up = new Promise<void>((resolve) => resolveUp = resolve);
    this.#upWaiters.add(resolveUp);
    try {
      await Promise.race([
        up,
        this.#clock.sleep(ms, AbortSignal.any([done.signal, this.#stop.signal])),
      ]);
    } finally {
      this.#upWaiters.delete(resolveUp);
      done.abort();
    }
  }

  #connect(): Promise<RpcClient> {
    if (this.#closed) return Promise.reject(new LinkDownError(this.peer, "link closed"));
    const client = this.#client;
    if (client && !client.conn.closed) return Promise.resolve(client);
    if (this.#connecting) return this.#connecting;
    const wait = this.#retryAt - this.#clock.now();
    if (wait > 0) {
      return Promise.reject(
        new LinkDownError(this.peer, `unreachable, retrying in ${Math.ceil(wait)} ms`),
      );
    }
    const connecting = (async () => {
      try {
        const dialer = this.#o.connect ?? RpcClient.connect;
        const fresh = await dialer(this.address, {
          role: this.#o.role,
          name: this.#o.name,
          ...this.#o.security,
          maxFrame: this.#o.maxFrame,
          highWaterMark: this.#o.highWaterMark,
          timeoutMs: this.#o.connectTimeoutMs ?? 2_000,
          signal: this.#stop.signal,
        });
        if (this.#closed) {
          await fresh.close();
          throw new LinkDownError(this.peer, "link closed");
        }
        this.#attach(fresh);
        return fresh;
      } catch (err) {
        if (!this.#closed) this.#retryAt = this.#clock.now() + this.#backoff.next();
        throw err;
      } finally {
        this.#connecting = undefined;
      }
    })();
    this.#connecting = connecting;
    return connecting;
  }

  #attach(client: RpcClient): void {
    this.#client = client;
    this.#backoff.reset();
    client.onMessage = (msg) => this.#o.onMessage?.(this, msg);
    client.onClose = () => {
      if (this.#client === client) this.#down(client, false);
    };
    if (this.#o.heartbeat) {
      this.#track(heartbeat(client, { ...this.#o.heartbeat, signal: this.#stop.signal }));
    }
    try {
      this.#o.onUp?.(this);
    } catch {
      // a failing callback must not kill the link
    }
    for (const resolve of this.#upWaiters) resolve();
    if (client.conn.closed && this.#client === client) this.#down(client, false);
  }

  /** `client` is gone: redial after the backoff, or at once after a reset. */
  #down(client: RpcClient, now: boolean): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    if (this.#closed) return;
    this.#retryAt = now ? 0 : this.#clock.now() + this.#backoff.next();
    try {
      this.#o.onDown?.(this);
    } catch {
      // a failing callback must not kill the link
    }
    this.#wake?.();
  }

  /** A persistent link's redial loop: each turn waits, dials, or waits for the close. */
  async #keepUp(): Promise<void> {
    while (!this.#closed) {
      const wait = this.#retryAt - this.#clock.now();
      const wake = new AbortController();
      this.#wake = () => wake.abort();
      const signal = AbortSignal.any([wake.signal, this.#stop.signal]);
      if (wait > 0) {
        await this.#clock.sleep(wait, signal);
      } else if (this.up) {
        // the next turn comes when the connection goes down (or the link closes)
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          else signal.addEventListener("abort", () => resolve(), { once: true });
        });
      } else {
        this.#wake = undefined;
        await this.#connect().catch(() => {});
      }
      this.#wake = undefined;
    }
  }

  #track(p: Promise<unknown>): void {
    const task = p.catch(() => {});
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }
}

/** Options of {@linkcode PeerLinks}: those of every link, with callbacks by peer name. */
export interface PeerLinksOptions
  extends Omit<PeerLinkOptions, "peer" | "onUp" | "onDown" | "onMessage"> {
  /** Called (synchronously, before any other frame) each time the link to `name` comes up. */
  onUp?: (name: string) => void;
  /** Called when the link to `name`, which was up, is lost. */
  onDown?: (name: string) => void;
  /** Frames a peer sends on its link that are not replies. */
  onMessage?: (name: string, msg: Message) => void;
}

/**
 * One {@linkcode PeerLink} per member, by name: what a node uses to talk to the rest of its
 * cluster. Calls naming an unknown member act as on a link that is down. `close()` closes
 * every link (safe to call twice).
 */
export class PeerLinks implements AsyncDisposable {
  readonly #links = new Map<string, PeerLink>();
  readonly #options: PeerLinksOptions;
  #started = false;
  #closed = false;

  constructor(peers: Iterable<PeerAddress & { name: string }>, options: PeerLinksOptions) {
    this.#options = options;
    for (const p of peers) this.add(p.name, p);
  }

  /**
   * Adds a link to member `name` at `address` (a member that joined); a known name keeps its
   * link. After `start()` a persistent link starts at once. Returns the member's link.
   */
  add(name: string, address: PeerAddress): PeerLink {
    const known = this.#links.get(name);
    if (known) return known;
    const { onUp, onDown, onMessage } = this.#options;
    const link = new PeerLink({ hostname: address.hostname, port: address.port }, {
      ...this.#options,
      peer: name,
      onUp: onUp && (() => onUp(name)),
      onDown: onDown && (() => onDown(name)),
      onMessage: onMessage && ((_, msg) => onMessage(name, msg)),
    });
    this.#links.set(name, link);
    if (this.#closed) void link.close();
    else if (this.#started) link.start();
    return link;
  }

  /** Starts every persistent link (see {@linkcode PeerLink.start}). */
  start(): void {
    this.#started = true;
    for (const link of this.#links.values()) link.start();
  }

  /** The link to `name`. */
  get(name: string): PeerLink | undefined {
    return this.#links.get(name);
  }

  /** Sends `frame` to `to`; false when that link is down (the frame is dropped). */
  send(to: string, frame: Message): boolean {
    return this.#links.get(to)?.send(frame) ?? false;
  }

  /** Sends `frame` to every member whose link is up. */
  broadcast(frame: Message): void {
    for (const link of this.#links.values()) if (link.up) link.send(frame);
  }

  /** Sends `msg` to `to` and resolves with the reply (see {@linkcode PeerLink.request}). */
  request(to: string, msg: Message, options?: LinkRequestOptions): Promise<Message> {
    const link = this.#links.get(to);
    if (!link) return Promise.reject(new LinkDownError(to, "not a member"));
    return link.request(msg, options);
  }

  /** Whether the link to `to` is up. */
  connected(to: string): boolean {
    return this.#links.get(to)?.up ?? false;
  }

  /** Names of the members whose link is up. */
  upNames(): string[] {
    return [...this.#links.values()].filter((l) => l.up).map((l) => l.peer);
  }

  /** Bytes queued but not yet written to `to`. */
  pendingBytes(to: string): number {
    return this.#links.get(to)?.pendingBytes ?? 0;
  }

  /** Drops the connection to `to` and redials at once (see {@linkcode PeerLink.reset}). */
  reset(to: string): void {
    this.#links.get(to)?.reset();
  }

  /** Ends `to`'s redial backoff (it was just heard from). */
  nudge(to: string): void {
    this.#links.get(to)?.nudge();
  }

  /** Closes every link. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#links.values()].map((l) => l.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

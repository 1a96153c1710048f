/**
 * The daemon's link to its broker: connect, attach, heartbeat, reconnect. Transport only:
 * what the attach says and what the frames mean is the daemon's (its {@linkcode
 * BrokerLinkHooks}).
 *
 * Semantics: one attempt at a time; failed attempts and dropped links are retried with
 * capped, jittered backoff until `close()`. Frames that arrive before the attach completed
 * are held and handed to `onMessage` right after it, in order. While the link is up, a
 * `stream.state` heartbeat every LINK_HEARTBEAT_MS that stays unanswered for
 * LINK_SILENCE_MS closes it (a partition leaves TCP silent, not broken).
 *
 * @module
 */
import type { HostPort } from "../config/mod.ts";
import { aborted, linkSecurity, type RoleContext } from "../process/mod.ts";
import {
  Backoff,
  heartbeat,
  type Message,
  ProtocolError,
  RemoteError,
  retryConnect,
  RpcClient,
  sleep,
} from "../wire/mod.ts";
import { MomErrorCode } from "./protocol.ts";

/** Gap between two heartbeats (`stream.state` requests) on the broker link. */
export const LINK_HEARTBEAT_MS = 1_000;
/** A broker link with no answer to a heartbeat for this long is closed and reconnected. */
export const LINK_SILENCE_MS = 3_000;
/**
 * Pacing of broker-link reconnects: 50 ms doubling to 500 ms, each delay drawn from ±50 %
 * of its step (the cap holds after the jitter too).
 */
const LINK_BACKOFF = { initialMs: 50, maxMs: 500, jitter: 0.5 } as const;

/** What the daemon does on the link. */
export interface BrokerLinkHooks {
  /**
   * Carries out the attach on a new connection (request and state updates); throwing
   * fails the attempt (the connection is closed and retried).
   */
  attach(client: RpcClient, signal: AbortSignal): Promise<void>;
  /** Runs once the link is up, after the frames held during the attach were handed over. */
  up(client: RpcClient): void;
  /** A frame from the broker that is no reply to a request. */
  onMessage(msg: Message): void;
}

/** The reconnecting broker link of a daemon. `close()` is safe to call twice. */
export class BrokerLink {
  readonly #ctx: RoleContext;
  readonly #address: HostPort;
  readonly #hooks: BrokerLinkHooks;
  readonly #abort = new AbortController();
  #client: RpcClient | undefined;
  #task: Promise<void> | undefined;

  constructor(ctx: RoleContext, address: HostPort, hooks: BrokerLinkHooks) {
    this.#ctx = ctx;
    this.#address = address;
    this.#hooks = hooks;
  }

  /** The broker's address as `host:port`. */
  get where(): string {
    return `${this.#address.hostname}:${this.#address.port}`;
  }

  /** The attached connection, undefined while the link is down. */
  get client(): RpcClient | undefined {
    return this.#client;
  }

  /** Aborts when the link is closed (for waits that must end with it). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Starts connecting (and reconnecting until closed). */
  start(): void {
    this.#task ??= this.#loop();
  }

  /** Sends a frame on the attached link; false when down or congested. */
  send(msg: Message): boolean {
    try {
      return this.#client?.send(msg) ?? false;
    } catch {
      return false;
    }
  }

  /**
   * Asks the broker; `broker_unavailable` when the link is down or the request fails in
   * transport, the broker's own error code otherwise.
   */
  async request(msg: Message): Promise<Message> {
    const link = this.#client;
    if (!link) {
      throw new ProtocolError(
        MomErrorCode.BrokerUnavailable,
        `Cannot ${msg.t}: the broker link is down (publishing still works); try again`,
      );
    }
    try {
      return await link.request(msg, { timeoutMs: 10_000 });
    } catch (err) {
      if (err instanceof RemoteError) {
        throw new ProtocolError(err.code, String(err.frame.message ?? err.message));
      }
      throw new ProtocolError(
        MomErrorCode.BrokerUnavailable,
        `Cannot ${msg.t}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** Stops the link and waits for its loop to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#client?.close();
    await this.#task;
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    const ctx = this.#ctx;
    const where = this.where;
    const backoff = new Backoff(LINK_BACKOFF);
    for (let link = 0; !signal.aborted; link++) {
      if (link > 0) await sleep(backoff.next(), signal); // a link that was up dropped
      let attached: { client: RpcClient; closed: Promise<void> };
      try {
        attached = await retryConnect(() => this.#attach(signal), {
          backoff,
          signal,
          onFailure: ({ error, failures }) => {
            if (failures === 1 || failures % 20 === 0) {
              ctx.log.warn(
                `Cannot attach to broker ${where}: ${
                  error instanceof Error ? error.message : String(error)
                }; retrying`,
              );
            }
          },
        });
      } catch (err) {
        if (signal.aborted) return; // nothing else ends retrying (no fatal error, no give-up)
        throw err;
      }
      const { client, closed } = attached;
      const beat = this.#heartbeat(client, closed, signal);
      await Promise.race([closed, aborted(signal)]);
      this.#client = undefined;
      await client.close();
      const reason = await beat;
      ctx.events.emit("link.down", { broker: where, ...(reason ? { reason } : {}) });
    }
  }

  /** One attempt: connects and attaches; the connection is closed when any of it fails. */
  async #attach(signal: AbortSignal): Promise<{ client: RpcClient; closed: Promise<void> }> {
    const ctx = this.#ctx;
    let client: RpcClient | undefined;
    try {
      client = await RpcClient.connect(this.#address, {
        role: "daemon",
        name: ctx.name,
        ...linkSecurity(ctx),
        maxFrame: ctx.maxFrame,
        signal,
        timeoutMs: 3_000,
      });
      const c = client;
      const early: Message[] = [];
      const closed = new Promise<void>((resolve) => {
        c.onClose = () => resolve();
      });
      c.onMessage = (m) => {
        if (this.#client !== c) early.push(m);
        else this.#safeMessage(m);
      };
      await this.#hooks.attach(c, signal);
      this.#client = c;
      ctx.events.emit("link.up", { broker: this.where });
      ctx.log.info(`attached to broker ${this.where}`);
      for (const m of early.splice(0)) this.#safeMessage(m);
      this.#hooks.up(c);
      return { client: c, closed };
    } catch (err) {
      await client?.close();
      throw err;
    }
  }

  /** Heartbeats `client` while it is open; resolves `"heartbeat"` when it closed it. */
  async #heartbeat(
    client: RpcClient,
    closed: Promise<void>,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const stop = new AbortController();
    closed.then(() => stop.abort());
    try {
      const how = await heartbeat(client, {
        probe: { t: "stream.state" },
        intervalMs: LINK_HEARTBEAT_MS,
        silenceMs: LINK_SILENCE_MS,
        signal: AbortSignal.any([signal, stop.signal]),
      });
      if (how !== "silent") return undefined;
      this.#ctx.log.warn(`broker ${this.where} silent for ${LINK_SILENCE_MS} ms: reconnecting`);
      return "heartbeat";
    } finally {
      stop.abort();
    }
  }

  #safeMessage(m: Message): void {
    try {
      this.#hooks.onMessage(m);
    } catch (err) {
      this.#ctx.log.warn(`bad frame from broker: ${String(err)}`);
    }
  }
}

/**
 * The application API: connect to the local daemon, create (or attach to) a user, then
 * subscribe, publish and receive.
 *
 * ```ts
 * await using mom = await MomClient.connect({ hostname: "127.0.0.1", port: 7411 });
 * const me = await mom.create();
 * await me.subscribe("Museum/Doors/+");
 * await me.publish("Museum/Doors/Door0", "open");
 * const msg = await me.receive({ timeout: 5_000 });
 * ```
 *
 * Delivery is exactly once per application as long as it keeps its connection: a message
 * returned by `receive()` is acknowledged to the daemon (deleted from the inbox) by the
 * next receive, or by `ack()`. A process that dies between the two gets the message again.
 *
 * @module
 */
import {
  Backoff,
  type DialAddress,
  ErrorCode,
  type Message,
  ProtocolError,
  RemoteError,
  RpcClient,
  sleep,
  type TlsConfig,
} from "../wire/mod.ts";
import { MAX_RECEIVE_BATCH } from "./protocol.ts";

/**
 * Pacing of retried requests across a lost daemon connection: 50 ms doubling to 500 ms, as
 * before `Backoff`; now jittered by ±25 % so clients that lost the same daemon do not all
 * redial it at the same instant.
 */
const RETRY_BACKOFF = { initialMs: 50, maxMs: 500, jitter: 0.25 } as const;

/** A received publication. */
export interface MomMessage {
  /** Message id, `<publisher daemon>:<seq>`: unique, stable across resends. */
  id: string;
  /** The topic it was published on. */
  topic: string;
  /** The payload bytes. */
  payload: Uint8Array;
  /** The publishing user. */
  from: number;
  /** Position in this user's inbox. */
  seq: number;
}

/** A decoded message of a `messages` reply as a MomMessage (as is when it has that shape). */
function asMomMessage(m: Record<string, unknown>): MomMessage {
  if (
    typeof m.id === "string" && typeof m.topic === "string" && m.payload instanceof Uint8Array &&
    typeof m.from === "number" && typeof m.seq === "number"
  ) return m as unknown as MomMessage;
  return {
    id: String(m.id),
    topic: String(m.topic),
    payload: m.payload instanceof Uint8Array ? m.payload : toBytes(String(m.payload)),
    from: Number(m.from),
    seq: Number(m.seq),
  };
}

/** An error reply from the daemon or broker (`code` as in `MomErrorCode` or `ErrorCode`). */
export class MomError extends Error {
  /** The error code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MomError";
    this.code = code;
  }
}

const encoder = new TextEncoder();

function toBytes(payload: Uint8Array | string): Uint8Array {
  return typeof payload === "string" ? encoder.encode(payload) : payload;
}

function asMomError(msg: Message, err: unknown): MomError {
  if (err instanceof MomError) return err;
  if (err instanceof RemoteError) {
    return new MomError(err.code, String(err.frame.message ?? err.message), { cause: err });
  }
  if (err instanceof ProtocolError) return new MomError(err.code, err.message, { cause: err });
  return new MomError(
    ErrorCode.Unavailable,
    `Cannot ${msg.t}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

/** Options of {@linkcode MomClient.connect}. */
export interface MomClientOptions {
  /** Name sent in the hello. @default {"app"} */
  name?: string;
  /** Cluster secret, when the daemon has one. */
  secret?: string;
  /** TLS, when the daemon serves it. */
  tls?: TlsConfig;
  /** Cancels connecting. */
  signal?: AbortSignal;
}

/**
 * One connection to a daemon; any number of users can be used over it. When the daemon
 * goes away the client reconnects on the next call; `receive` (idempotent) retries across
 * a daemon restart, other calls fail with code `unavailable` (a failed `publish` may or
 * may not have been stored: only an acknowledged one is guaranteed).
 */
export class MomClient implements AsyncDisposable {
  readonly #address: DialAddress;
  readonly #options: MomClientOptions;
  #rpc: RpcClient;
  #reconnecting: Promise<RpcClient> | undefined;
  #closed = false;

  private constructor(rpc: RpcClient, address: DialAddress, options: MomClientOptions) {
    this.#rpc = rpc;
    this.#address = address;
    this.#options = options;
  }

  /** Connects to the daemon at `address` (TCP or Unix socket path). */
  static async connect(address: DialAddress, options: MomClientOptions = {}): Promise<MomClient> {
    return new MomClient(await MomClient.#dial(address, options), address, options);
  }

  static async #dial(address: DialAddress, options: MomClientOptions): Promise<RpcClient> {
    try {
      return await RpcClient.connect(address, {
        role: "client",
        name: options.name ?? "app",
        secret: options.secret,
        tls: options.tls,
        signal: options.signal,
        timeoutMs: 3_000,
      });
    } catch (err) {
      if (err instanceof RemoteError) throw new MomError(err.code, err.message, { cause: err });
      const where = "path" in address ? address.path : `${address.hostname}:${address.port}`;
      throw new MomError(
        ErrorCode.Unavailable,
        `Cannot connect to daemon ${where}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  /** The current request/reply client. */
  get rpc(): RpcClient {
    return this.#rpc;
  }

  /**
   * Sends one request and returns the reply. With `retry`, a lost connection is re-dialled
   * and the request sent again until `timeoutMs` passes (only for idempotent requests).
   */
  async request(
    msg: Message,
    options: { timeoutMs?: number; retry?: boolean; signal?: AbortSignal } = {},
  ): Promise<Message> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    const deadline = performance.now() + timeoutMs;
    const backoff = new Backoff(RETRY_BACKOFF);
    for (let attempt = 0;; attempt++) {
      if (this.#closed) throw new MomError(ErrorCode.Unavailable, `Cannot ${msg.t}: client closed`);
      try {
        const rpc = this.#rpc.conn.closed ? await this.#reconnect() : this.#rpc;
        return await rpc.request(msg, {
          timeoutMs: Math.max(1, deadline - performance.now()),
          signal: options.signal,
        });
      } catch (err) {
        const e = asMomError(msg, err);
        const transient = e.code === ErrorCode.Unavailable;
        const delay = backoff.next();
        if (!options.retry || !transient || performance.now() + delay >= deadline) throw e;
        options.signal?.throwIfAborted();
        await sleep(delay, options.signal);
        options.signal?.throwIfAborted();
      }
    }
  }

  /** Sends a frame without a reply (reconnects first when needed). */
  send(msg: Message): boolean {
    if (this.#rpc.conn.closed) {
      void this.#reconnect().catch(() => {});
      return false;
    }
    return this.#rpc.send(msg);
  }

  #reconnect(): Promise<RpcClient> {
    this.#reconnecting ??= (async () => {
      try {
        await this.#rpc.close();
        const rpc = await MomClient.#dial(this.#address, this.#options);
        if (this.#closed) {
          await rpc.close();
          throw new MomError(ErrorCode.Unavailable, "Cannot reconnect: client closed");
        }
        this.#rpc = rpc;
        return rpc;
      } finally {
        this.#reconnecting = undefined;
      }
    })();
    return this.#reconnecting;
  }

  /** Creates a new user (a global id from the broker, never reused). */
  async create(): Promise<MomUser> {
    const reply = await this.request({ t: "create" });
    return new MomUser(this, Number(reply.user));
  }

  /** Attaches to an existing user of this daemon. */
  async attach(user: number): Promise<MomUser> {
    await this.request({ t: "attach", user });
    return new MomUser(this, user);
  }

  /** A handle for `user` without asking the daemon (its calls fail if the user is unknown). */
  user(user: number): MomUser {
    return new MomUser(this, user);
  }

  /** Closes the connection. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#reconnecting?.catch(() => {});
    await this.#rpc.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** One user: subscribe, publish, receive, destroy. */
export class MomUser {
  readonly #client: MomClient;
  /** The user's global id. */
  readonly id: number;
  #buffer: MomMessage[] = [];
  #after = 0;

  constructor(client: MomClient, id: number) {
    this.#client = client;
    this.id = id;
  }

  /**
   * Subscribes to `topic` (a pattern: `+` one level, `#` the rest). `own: true` also
   * delivers this user's own publications on it. Subscribing twice is an error.
   */
  async subscribe(topic: string, options: { own?: boolean } = {}): Promise<void> {
    await this.#client.request({ t: "subscribe", user: this.id, topic, own: options.own ?? false });
  }

  /** Unsubscribes from `topic`; an error when not subscribed to it. */
  async unsubscribe(topic: string): Promise<void> {
    await this.#client.request({ t: "unsubscribe", user: this.id, topic });
  }

  /** Publishes; resolves with the message id once the daemon has stored it on disk. */
  async publish(topic: string, payload: Uint8Array | string): Promise<string> {
    const reply = await this.#client.request({
      t: "publish",
      user: this.id,
      topic,
      payload: toBytes(payload),
    });
    return String(reply.id);
  }

  /**
   * Publishes without waiting for the daemon's acknowledgement (the frame is queued on
   * the connection; returns false under backpressure). Use `flush()` to know it was stored.
   */
  publishNoWait(topic: string, payload: Uint8Array | string): boolean {
    return this.#client.send({ t: "publish", user: this.id, topic, payload: toBytes(payload) });
  }

  /** Resolves once everything published on this connection so far is stored by the daemon. */
  async flush(): Promise<void> {
    await this.#client.request({ t: "flush" });
  }

  /**
   * The next message, waiting up to `timeout` ms (default: forever in 30 s polls);
   * `undefined` on timeout. Messages before it are acknowledged to the daemon.
   */
  async receive(
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<MomMessage | undefined> {
    const batch = await this.receiveBatch({ ...options, max: 1 });
    return batch[0];
  }

  /**
   * Up to `max` messages: what is buffered, else what the daemon has, waiting up to
   * `timeout` ms for the first (0 = do not wait). Earlier messages are acknowledged.
   */
  async receiveBatch(
    options: { timeout?: number; max?: number; signal?: AbortSignal } = {},
  ): Promise<MomMessage[]> {
    const max = Math.max(1, options.max ?? MAX_RECEIVE_BATCH);
    if (this.#buffer.length > 0) return this.#take(max);
    const deadline = options.timeout === undefined
      ? Infinity
      : performance.now() + Math.max(0, options.timeout);
    for (let i = 0; i < 1_000_000; i++) {
      if (options.signal?.aborted) throw options.signal.reason;
      const left = deadline - performance.now();
      const wait = Math.max(0, Math.min(left, 30_000));
      const reply = await this.#client.request({
        t: "receive",
        user: this.id,
        after: this.#after,
        max: MAX_RECEIVE_BATCH,
        wait: Math.round(wait),
      }, { timeoutMs: wait + 15_000, retry: true, signal: options.signal });
      const messages = Array.isArray(reply.messages) ? reply.messages as Message[] : [];
      for (const m of messages) this.#buffer.push(asMomMessage(m));
      if (this.#buffer.length > 0) return this.#take(max);
      if (performance.now() >= deadline) return [];
    }
    return [];
  }

  /** Acknowledges everything received so far (deletes it from the daemon's inbox). */
  async ack(): Promise<void> {
    if (this.#after === 0) return;
    await this.#client.request(
      { t: "receive", user: this.id, after: this.#after, max: 0, wait: 0 },
      {
        retry: true,
      },
    );
  }

  /** Unsubscribes from everything and deletes the user (its id is never reused). */
  async destroy(): Promise<void> {
    await this.#client.request({ t: "destroy", user: this.id });
  }

  #take(max: number): MomMessage[] {
    const out = this.#buffer.splice(0, max);
    if (out.length > 0) this.#after = out[out.length - 1].seq;
    return out;
  }
}

/**
 * The queue client, shaped like the channel API RabbitMQ users know (amqplib): one TCP
 * connection is one channel. Declarations and `get` are request/reply; `publish`, `ack`
 * and `nack` are one-way (their errors arrive through `onError`); after
 * {@linkcode QueueClient.confirmSelect}, publishes are confirmed in order once the server
 * has committed them.
 *
 * ```ts
 * await using ch = await QueueClient.connect("127.0.0.1:7501");
 * await ch.assertQueue("jobs", { durable: true });
 * await ch.confirmSelect();
 * await ch.publishConfirmed("", "jobs", "hello", { persistent: true });
 * await ch.consume("jobs", (m) => ch.ack(m));
 * ```
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import {
  ConnectionClosedError,
  dial,
  type DialAddress,
  type DialOptions,
  type FrameConnection,
  type Message,
  RemoteError,
} from "../wire/mod.ts";
import type { ExchangeOptions, PublishOptions, QueueOptions } from "./engine.ts";
import { HEARTBEAT_MAX_MS, HEARTBEAT_MIN_MS, HEARTBEAT_MISSES, QueueFrame } from "./protocol.ts";

const encoder = new TextEncoder();

/** A message delivered to a consumer or fetched with `get`. */
export interface QueueMessage {
  /** The body. */
  body: Uint8Array;
  /** Delivery tag to ack/nack (0 when auto-acked). */
  deliveryTag: number;
  /** The consumer's tag (`""` for `get`). */
  consumerTag: string;
  /** Queue it came from. */
  queue: string;
  /** Exchange it was published to. */
  exchange: string;
  /** Routing key. */
  routingKey: string;
  /** Whether it was delivered before. */
  redelivered: boolean;
  /** Application properties. */
  props: Record<string, unknown>;
}

/** A mandatory message that no queue took. */
export interface ReturnedMessage {
  exchange: string;
  routingKey: string;
  body: Uint8Array;
  props: Record<string, unknown>;
  reason: string;
}

interface SeqWaiter {
  seq: number;
  from: number;
  single: boolean;
  done: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body;
}

function toMessage(m: Message, consumerTag: string): QueueMessage {
  return {
    body: m.body instanceof Uint8Array ? m.body : encoder.encode(String(m.body ?? "")),
    deliveryTag: Number(m.dt ?? 0),
    consumerTag,
    queue: String(m.queue ?? ""),
    exchange: String(m.ex ?? ""),
    routingKey: String(m.key ?? ""),
    redelivered: m.re === true,
    props: (m.props ?? {}) as Record<string, unknown>,
  };
}

/**
 * One connection to a queue server (one channel). Closing it makes the server put every
 * unacknowledged delivery back in its queue, marked redelivered, and rejects pending
 * requests and confirms with `ConnectionClosedError`.
 */
export class QueueClient implements AsyncDisposable {
  readonly #conn: FrameConnection;
  readonly #pending = new Map<number, { resolve(m: Message): void; reject(e: unknown): void }>();
  readonly #consumers = new Map<string, (m: QueueMessage) => void>();
  #nextRid = 1;
  #confirming = false;
  #publishSeq = 0;
  #confirmedUpTo = 0;
  #lastWait = 0;
  #failures: number[] = [];
  #waiters: SeqWaiter[] = [];
  #waitHead = 0;
  #reader: Promise<void>;
  #closeError: unknown;
  /** Unroutable mandatory messages. */
  onReturn: (m: ReturnedMessage) => void = () => {};
  /** Errors of one-way frames (publish, ack, nack) that the server reported. */
  onError: (err: RemoteError) => void = () => {};
  /** A consumer cancelled by the server (its queue was deleted). */
  onCancel: (tag: string) => void = () => {};
  /** Called once when the connection is gone. */
  onClose: (err?: unknown) => void = () => {};

  private constructor(conn: FrameConnection) {
    this.#conn = conn;
    this.#reader = this.#readLoop();
  }

  /**
   * Connects to a queue server (`"host:port"` or an address). With `heartbeatMs`, the
   * client announces and sends a `q.heartbeat` every interval: the server closes the
   * connection after HEARTBEAT_MISSES silent intervals (a partitioned or paused client; its
   * unacked deliveries go back to their queues), and the client closes it when its
   * heartbeats stay unanswered as long (a partitioned or paused server), so `onClose` fires
   * and the application can reconnect instead of waiting on a silent socket.
   */
  static async connect(
    address: string | DialAddress,
    options: DialOptions & { heartbeatMs?: number } = {},
  ): Promise<QueueClient> {
    const addr = typeof address === "string" ? parseHostPort(address, "queue address") : address;
    const { heartbeatMs, ...dialOptions } = options;
    const { conn } = await dial(addr, { role: "client", ...dialOptions });
    const client = new QueueClient(conn);
    if (heartbeatMs !== undefined) client.#startHeartbeat(heartbeatMs);
    return client;
  }

  #startHeartbeat(intervalMs: number): void {
    if (!(intervalMs >= HEARTBEAT_MIN_MS && intervalMs <= HEARTBEAT_MAX_MS)) {
      throw new RangeError(
        `Cannot use a heartbeat of ${intervalMs} ms: ${HEARTBEAT_MIN_MS}..${HEARTBEAT_MAX_MS}`,
      );
    }
    let answered = performance.now();
    const beat = () => {
      if (this.#conn.closed) return;
      if (performance.now() - answered > intervalMs * HEARTBEAT_MISSES) {
        this.#conn.close(); // the reader ends: pending requests fail, onClose fires
        return;
      }
      this.request({ t: QueueFrame.Heartbeat, interval_ms: intervalMs }).then(
        () => answered = performance.now(),
        (err) => {
          // an error reply (a server without heartbeats) is an answer; a close the reader reports
          if (err instanceof RemoteError) answered = performance.now();
        },
      );
    };
    beat();
    const timer = setInterval(beat, intervalMs);
    this.#stopHeartbeat = () => clearInterval(timer);
  }

  #stopHeartbeat: () => void = () => {};

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#conn.closed;
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const msg = this.#conn.readBuffered() ?? await this.#conn.read();
        if (msg === null) break;
        this.#handle(msg);
      }
    } catch (err) {
      this.#closeError = err;
    } finally {
      this.#conn.close();
      const err = new ConnectionClosedError("Cannot complete: queue connection closed", {
        cause: this.#closeError,
      });
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      for (let i = this.#waitHead; i < this.#waiters.length; i++) this.#waiters[i].reject(err);
      this.#waiters = [];
      this.#waitHead = 0;
      this.#stopHeartbeat();
      this.onClose(this.#closeError);
    }
  }

  #handle(msg: Message): void {
    if (msg.rid !== undefined) {
      const p = this.#pending.get(Number(msg.rid));
      if (p) {
        this.#pending.delete(Number(msg.rid));
        if (msg.t === "error") p.reject(new RemoteError(msg));
        else p.resolve(msg);
        return;
      }
    }
    switch (msg.t) {
      case QueueFrame.Deliver: {
        const tag = String(msg.tag);
        this.#consumers.get(tag)?.(toMessage(msg, tag));
        return;
      }
      case QueueFrame.ConfirmOk:
        this.#confirmOk(Number(msg.seq));
        return;
      case QueueFrame.ConfirmFail:
        this.#confirmFail(Number(msg.seq), new RemoteError({ ...msg, t: "error" }));
        return;
      case QueueFrame.Return:
        this.onReturn({
          exchange: String(msg.ex),
          routingKey: String(msg.key),
          body: msg.body as Uint8Array,
          props: (msg.props ?? {}) as Record<string, unknown>,
          reason: String(msg.reason),
        });
        return;
      case QueueFrame.Cancelled:
        this.#consumers.delete(String(msg.tag));
        this.onCancel(String(msg.tag));
        return;
      case "error":
        this.onError(new RemoteError(msg));
        return;
    }
  }

  #confirmOk(seq: number): void {
    if (seq > this.#confirmedUpTo) this.#confirmedUpTo = seq;
    while (this.#waitHead < this.#waiters.length) {
      const w = this.#waiters[this.#waitHead];
      if (w.seq > seq) break;
      this.#waitHead++;
      if (w.done) continue;
      w.done = true;
      const failed = w.single ? undefined : this.#failures.find((f) => f > w.from && f <= w.seq);
      if (failed !== undefined) {
        w.reject(new Error(`Cannot confirm every publish: publish ${failed} failed`));
      } else w.resolve();
    }
    if (this.#waitHead > 4096) {
      this.#waiters = this.#waiters.slice(this.#waitHead);
      this.#waitHead = 0;
    }
    if (this.#failures.length > 1000) this.#failures = this.#failures.slice(-1000);
  }

  #confirmFail(seq: number, err: RemoteError): void {
    this.#failures.push(seq);
    let told = false;
    for (let i = this.#waitHead; i < this.#waiters.length; i++) {
      const w = this.#waiters[i];
      if (w.single && w.seq === seq && !w.done) {
        w.done = true;
        w.reject(err);
        told = true;
      }
      if (w.seq >= seq) break;
    }
    if (!told) this.onError(err);
  }

  /** Sends a request and waits for its `q.ok`; an error frame rejects with `RemoteError`. */
  request(msg: Message): Promise<Message> {
    const rid = this.#nextRid++;
    return new Promise((resolve, reject) => {
      if (this.#conn.closed) {
        reject(new ConnectionClosedError(`Cannot send ${msg.t}: queue connection closed`));
        return;
      }
      this.#pending.set(rid, { resolve, reject });
      msg.rid = rid;
      this.#conn.send(msg);
    });
  }

  /** Declares an exchange (`direct`, `fanout`, `topic`). */
  async assertExchange(
    exchange: string,
    type: "direct" | "fanout" | "topic",
    options: Omit<ExchangeOptions, "passive"> = {},
  ): Promise<{ exchange: string }> {
    await this.request({ t: QueueFrame.ExchangeDeclare, exchange, type, ...options });
    return { exchange };
  }

  /** Checks that an exchange exists (rejects with `not_found`). */
  async checkExchange(exchange: string): Promise<void> {
    await this.request({ t: QueueFrame.ExchangeDeclare, exchange, passive: true });
  }

  /** Deletes an exchange. */
  async deleteExchange(exchange: string): Promise<void> {
    await this.request({ t: QueueFrame.ExchangeDelete, exchange });
  }

  /** Declares a queue (`""` for a server-named one). */
  async assertQueue(
    queue: string,
    options: Omit<QueueOptions, "passive"> = {},
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    const r = await this.request({ t: QueueFrame.QueueDeclare, queue, ...options });
    return {
      queue: String(r.queue),
      messageCount: Number(r.messages),
      consumerCount: Number(r.consumers),
    };
  }

  /** Checks a queue (rejects with `not_found`); resolves with its depth. */
  async checkQueue(
    queue: string,
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    const r = await this.request({ t: QueueFrame.QueueDeclare, queue, passive: true });
    return {
      queue: String(r.queue),
      messageCount: Number(r.messages),
      consumerCount: Number(r.consumers),
    };
  }

  /** Deletes a queue; resolves with the ready messages it held. */
  async deleteQueue(queue: string): Promise<{ messageCount: number }> {
    const r = await this.request({ t: QueueFrame.QueueDelete, queue });
    return { messageCount: Number(r.messages) };
  }

  /** Drops a queue's ready messages. */
  async purgeQueue(queue: string): Promise<{ messageCount: number }> {
    const r = await this.request({ t: QueueFrame.QueuePurge, queue });
    return { messageCount: Number(r.messages) };
  }

  /** Binds `queue` to `exchange` with `key`. */
  async bindQueue(queue: string, exchange: string, key = ""): Promise<void> {
    await this.request({ t: QueueFrame.QueueBind, queue, exchange, key });
  }

  /** Removes a binding. */
  async unbindQueue(queue: string, exchange: string, key = ""): Promise<void> {
    await this.request({ t: QueueFrame.QueueUnbind, queue, exchange, key });
  }

  /** Sets the prefetch (most unacked deliveries per consumer; 0 = unbounded). */
  async prefetch(count: number): Promise<void> {
    await this.request({ t: QueueFrame.Qos, prefetch: count });
  }

  /** Turns on publisher confirms for this connection. */
  async confirmSelect(): Promise<void> {
    // publishes sent after this frame are numbered by the server: count them from now
    this.#confirming = true;
    try {
      await this.request({ t: QueueFrame.ConfirmSelect });
    } catch (err) {
      this.#confirming = false;
      throw err;
    }
  }

  /**
   * Publishes (one-way). Returns false when the socket buffer is above its high-water
   * mark: wait for {@linkcode drained} before publishing more.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    options: PublishOptions = {},
  ): boolean {
    if (this.#conn.closed) {
      throw new ConnectionClosedError("Cannot publish: queue connection closed");
    }
    if (this.#confirming) this.#publishSeq++;
    const msg: Message = {
      t: QueueFrame.Publish,
      ex: exchange,
      key: routingKey,
      body: toBytes(body),
    };
    if (options.persistent) msg.persistent = true;
    if (options.mandatory) msg.mandatory = true;
    if (options.props) msg.props = options.props;
    if (options.expiration !== undefined) msg.expiration = options.expiration;
    return this.#conn.send(msg);
  }

  /** Publishes to the default exchange, straight to `queue`. */
  sendToQueue(queue: string, body: Uint8Array | string, options: PublishOptions = {}): boolean {
    return this.publish("", queue, body, options);
  }

  /** Publishes and resolves when the server confirmed it (needs {@linkcode confirmSelect}). */
  publishConfirmed(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    options: PublishOptions = {},
  ): Promise<void> {
    if (!this.#confirming) {
      return Promise.reject(new Error("Cannot wait for a confirm: call confirmSelect() first"));
    }
    try {
      this.publish(exchange, routingKey, body, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const seq = this.#publishSeq;
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, from: seq - 1, single: true, done: false, resolve, reject });
    });
  }

  /** Resolves when every publish so far is confirmed; rejects if one since the last call failed. */
  waitForConfirms(): Promise<void> {
    if (!this.#confirming) {
      return Promise.reject(new Error("Cannot wait for confirms: call confirmSelect() first"));
    }
    const seq = this.#publishSeq;
    const from = this.#lastWait;
    this.#lastWait = seq;
    if (seq <= this.#confirmedUpTo) {
      const failed = this.#failures.find((f) => f > from && f <= seq);
      return failed !== undefined
        ? Promise.reject(new Error(`Cannot confirm every publish: publish ${failed} failed`))
        : Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, from, single: false, done: false, resolve, reject });
    });
  }

  /** Starts a consumer; `onMessage` gets each delivery (ack it unless `noAck`). */
  async consume(
    queue: string,
    onMessage: (m: QueueMessage) => void,
    options: { noAck?: boolean; prefetch?: number; consumerTag?: string } = {},
  ): Promise<{ consumerTag: string }> {
    const rid = this.#nextRid;
    const tag = options.consumerTag ?? `c${rid}`;
    // register before the request: deliveries may follow the reply in the same read
    this.#consumers.set(tag, onMessage);
    try {
      await this.request({
        t: QueueFrame.Consume,
        queue,
        noAck: options.noAck ?? false,
        prefetch: options.prefetch,
        tag,
      });
    } catch (err) {
      this.#consumers.delete(tag);
      throw err;
    }
    return { consumerTag: tag };
  }

  /** Cancels a consumer. */
  async cancel(consumerTag: string): Promise<void> {
    await this.request({ t: QueueFrame.Cancel, tag: consumerTag });
    this.#consumers.delete(consumerTag);
  }

  /** Acknowledges a delivery (and every earlier one when `allUpTo`). */
  ack(message: QueueMessage | number, allUpTo = false): void {
    const dt = typeof message === "number" ? message : message.deliveryTag;
    this.#conn.send(
      allUpTo ? { t: QueueFrame.Ack, dt, multiple: true } : { t: QueueFrame.Ack, dt },
    );
  }

  /** Rejects a delivery: back to its queue (`requeue`, default) or dropped. */
  nack(message: QueueMessage | number, allUpTo = false, requeue = true): void {
    const dt = typeof message === "number" ? message : message.deliveryTag;
    this.#conn.send({ t: QueueFrame.Nack, dt, multiple: allUpTo, requeue });
  }

  /** Pulls one message; `false` when the queue is empty. */
  async get(queue: string, options: { noAck?: boolean } = {}): Promise<QueueMessage | false> {
    const r = await this.request({ t: QueueFrame.Get, queue, noAck: options.noAck ?? false });
    if (r.empty) return false;
    return toMessage(r, "");
  }

  /** Lists queues (with depths) and exchanges. */
  async list(): Promise<{ queues: Array<Record<string, unknown>>; exchanges: unknown[] }> {
    const r = await this.request({ t: QueueFrame.List });
    return {
      queues: r.queues as Array<Record<string, unknown>>,
      exchanges: r.exchanges as unknown[],
    };
  }

  /** A round trip: resolves once the server handled everything sent before it. */
  async sync(): Promise<void> {
    await this.request({ t: QueueFrame.Sync });
  }

  /** Resolves when the socket buffer is below its high-water mark. */
  drained(): Promise<void> {
    return this.#conn.drained();
  }

  /** Closes the connection (safe twice). */
  async close(): Promise<void> {
    if (!this.#conn.closed) await this.#conn.end(1_000);
    this.#conn.close();
    await this.#reader;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

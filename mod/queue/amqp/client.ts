/**
 * A small AMQP 0-9-1 client on the same codec: one connection, one channel, PLAIN login,
 * the operations the leader/follower job needs (declare, bind, purge, consume, publish
 * with `mandatory`, a round-trip `sync`). It speaks to any 0-9-1 broker: peerd's
 * `--amqp` listener or RabbitMQ. Synchronous methods are sent one at a time and matched
 * to their reply; a channel or connection exception rejects what waits and closes it.
 *
 * ```ts
 * const ch = await AmqpClient.connect("amqp://guest:guest@127.0.0.1:5672/");
 * await ch.assertQueue("jobs", { durable: true });
 * ch.publish("", "jobs", new TextEncoder().encode("hello"));
 * await ch.sync();
 * await ch.close();
 * ```
 *
 * @module
 */
import type { QueueMessage, ReturnedMessage } from "../client.ts";
import {
  AmqpError,
  AmqpFrameDecoder,
  AmqpWriter,
  decodeContentHeader,
  decodeMethod,
  decodeProperties,
  encodeProperties,
  writeContent,
  writeMethodFrame,
} from "./codec.ts";
import { DEFAULT_FRAME_MAX, FrameType, PROTOCOL_HEADER, ReplyCode } from "./constants.ts";
import { plainValue } from "./message.ts";

/** A parsed `amqp://user:password@host:port/vhost` URL. */
export interface AmqpUrl {
  hostname: string;
  port: number;
  user: string;
  password: string;
  vhost: string;
}

/** Parses an AMQP URL (`amqp://` only; defaults guest/guest, port 5672, vhost `/`). */
export function parseAmqpUrl(text: string): AmqpUrl {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`Cannot use AMQP URL "${text}": not a URL`);
  }
  if (u.protocol !== "amqp:") {
    throw new Error(`Cannot use AMQP URL "${text}": only amqp:// is supported (no TLS)`);
  }
  const path = decodeURIComponent(u.pathname.replace(/^\//, ""));
  return {
    hostname: u.hostname.replace(/^\[|\]$/g, ""),
    port: u.port ? Number(u.port) : 5672,
    user: u.username ? decodeURIComponent(u.username) : "guest",
    password: u.password ? decodeURIComponent(u.password) : "guest",
    vhost: path === "" ? "/" : path,
  };
}

interface Waiter {
  expect: number;
  resolve(args: Record<string, unknown>): void;
  reject(err: unknown): void;
}

interface Incoming {
  kind: "deliver" | "return";
  // deno-lint-ignore no-explicit-any
  args: Record<string, any>;
  size: number;
  props?: Record<string, unknown>;
  parts: Uint8Array[];
  got: number;
}

const CH = 1;

/** One AMQP connection with one channel; see the module doc. `close()` is safe twice. */
export class AmqpClient {
  readonly #conn: Deno.Conn;
  readonly #decoder = new AmqpFrameDecoder(DEFAULT_FRAME_MAX);
  #out = new AmqpWriter(8192);
  #writing = false;
  #frameMax = DEFAULT_FRAME_MAX;
  #waiters: Waiter[] = [];
  #chain: Promise<unknown> = Promise.resolve();
  #consumers = new Map<string, { queue: string; fn: (m: QueueMessage) => void }>();
  #incoming?: Incoming;
  #closed = false;
  #closing = false;
  #closeError?: Error;
  #reading: Promise<void> = Promise.resolve();
  #heartbeat?: ReturnType<typeof setInterval>;
  /** Called once when the connection ends (with the reason when it was not `close()`). */
  onClose?: (err?: Error) => void;
  /** Called for a channel or connection exception nobody was waiting for. */
  onError?: (err: Error) => void;
  /** Called for a mandatory message no queue took. */
  onReturn?: (r: ReturnedMessage) => void;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Connects, logs in (PLAIN), opens the vhost and channel 1. */
  static async connect(
    url: string,
    options: { signal?: AbortSignal; timeoutMs?: number; name?: string } = {},
  ): Promise<AmqpClient> {
    const u = parseAmqpUrl(url);
    const conn = await Deno.connect({ hostname: u.hostname, port: u.port });
    const c = new AmqpClient(conn);
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const onAbort = () =>
      c.#fail(new Error(`Cannot connect to ${u.hostname}:${u.port}: timed out`));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const start = c.#expect((10 << 16) | 10);
      c.#reading = c.#readLoop();
      await c.#writeRaw(PROTOCOL_HEADER);
      await start;
      const tune = c.#expect((10 << 16) | 30);
      c.#send(0, 10, 11, {
        clientProperties: {
          product: "peerd",
          connection_name: options.name ?? "peerd",
          capabilities: { consumer_cancel_notify: true, "basic.nack": true },
        },
        mechanism: "PLAIN",
        response: new TextEncoder().encode(`\u0000${u.user}\u0000${u.password}`),
        locale: "en_US",
      });
      const t = await tune;
      const serverMax = Number(t.frameMax);
      c.#frameMax = serverMax === 0 ? DEFAULT_FRAME_MAX : Math.min(serverMax, DEFAULT_FRAME_MAX);
      const heartbeat = Math.min(Number(t.heartbeat), 30);
      c.#send(0, 10, 31, { channelMax: 1, frameMax: c.#frameMax, heartbeat });
      if (heartbeat > 0) {
        c.#heartbeat = setInterval(() => {
          c.#out.u8(FrameType.Heartbeat);
          c.#out.u16(0);
          c.#out.u32(0);
          c.#out.u8(0xce);
          c.#flush();
        }, heartbeat * 500);
      }
      const open = c.#expect((10 << 16) | 41);
      c.#send(0, 10, 40, { virtualHost: u.vhost });
      await open;
      const ch = c.#expect((20 << 16) | 11);
      c.#send(CH, 20, 10);
      await ch;
      return c;
    } catch (err) {
      await c.close();
      throw err instanceof AmqpError
        ? new Error(`Cannot connect to ${u.hostname}:${u.port}: ${err.message}`)
        : err;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  #expect(expect: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.#waiters.push({ expect, resolve, reject }));
  }

  #send(channel: number, classId: number, methodId: number, args?: Record<string, unknown>): void {
    if (this.#closed) return;
    writeMethodFrame(this.#out, channel, classId, methodId, args);
    this.#flush();
  }

  /** A synchronous method: sent after the previous one is answered. */
  #rpc(
    classId: number,
    methodId: number,
    args: Record<string, unknown>,
    replyId: number,
  ): Promise<Record<string, unknown>> {
    const run = () => {
      if (this.#closed) {
        return Promise.reject(this.#closeError ?? new Error("Cannot send: connection closed"));
      }
      const reply = this.#expect((classId << 16) | replyId);
      this.#send(CH, classId, methodId, args);
      return reply;
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => {});
    return p;
  }

  #flush(): void {
    if (this.#writing || this.#closed || this.#out.length === 0) return;
    this.#writing = true;
    queueMicrotask(async () => {
      try {
        while (this.#out.length > 0 && !this.#closed) {
          const bytes = this.#out.toBytes();
          this.#out.reset();
          await this.#writeRaw(bytes);
        }
      } catch (err) {
        this.#fail(err instanceof Error ? err : new Error(String(err)));
      } finally {
        this.#writing = false;
      }
    });
  }

  async #writeRaw(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#decoder.push(buf.slice(0, n));
        for (let f = this.#decoder.next(); f; f = this.#decoder.next()) {
          this.#frame(f.type, f.channel, f.payload);
        }
      }
      this.#fail(this.#closeError ?? new Error("Connection closed by the server"));
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #frame(type: number, channel: number, payload: Uint8Array): void {
    if (type === FrameType.Heartbeat) return;
    if (type === FrameType.Method) {
      const m = decodeMethod(payload);
      const id = (m.classId << 16) | m.methodId;
      if (id === ((10 << 16) | 50) || id === ((20 << 16) | 40)) {
        const err = new AmqpError(Number(m.args.replyCode), String(m.args.replyText));
        if (id === ((20 << 16) | 40)) this.#send(channel, 20, 41);
        else this.#send(0, 10, 51);
        this.#closeError = new Error(`${m.args.replyCode} ${m.args.replyText}`);
        if (this.#waiters.length === 0) this.onError?.(this.#closeError);
        this.#fail(this.#closeError, err);
        return;
      }
      if (id === ((60 << 16) | 60) || id === ((60 << 16) | 50)) {
        this.#incoming = {
          kind: m.methodId === 60 ? "deliver" : "return",
          args: m.args,
          size: 0,
          parts: [],
          got: 0,
        };
        return;
      }
      if (id === ((60 << 16) | 30)) {
        // the server cancelled a consumer (its queue was deleted)
        this.#consumers.delete(String(m.args.consumerTag));
        return;
      }
      if (id === ((60 << 16) | 80) || id === ((60 << 16) | 120)) return;
      const w = this.#waiters[0];
      if (w && w.expect === id) {
        this.#waiters.shift();
        w.resolve(m.args);
      }
      return;
    }
    const inc = this.#incoming;
    if (!inc) return;
    if (type === FrameType.Header) {
      const h = decodeContentHeader(payload);
      inc.size = h.bodySize;
      const p = decodeProperties(h.rawProperties);
      inc.props = { ...p, headers: p.headers ? plainValue(p.headers) : undefined };
      if (h.bodySize === 0) this.#complete(inc);
      return;
    }
    inc.parts.push(payload.slice());
    inc.got += payload.length;
    if (inc.got >= inc.size) this.#complete(inc);
  }

  #complete(inc: Incoming): void {
    this.#incoming = undefined;
    const body = inc.parts.length === 1 ? inc.parts[0] : new Uint8Array(inc.got);
    if (inc.parts.length > 1) {
      let at = 0;
      for (const p of inc.parts) {
        body.set(p, at);
        at += p.length;
      }
    }
    const a = inc.args;
    if (inc.kind === "return") {
      this.onReturn?.({
        exchange: String(a.exchange),
        routingKey: String(a.routingKey),
        body,
        props: inc.props ?? {},
        reason: String(a.replyText),
      });
      return;
    }
    const c = this.#consumers.get(String(a.consumerTag));
    c?.fn({
      body,
      deliveryTag: Number(a.deliveryTag),
      consumerTag: String(a.consumerTag),
      queue: c.queue,
      exchange: String(a.exchange),
      routingKey: String(a.routingKey),
      redelivered: a.redelivered === true,
      props: inc.props ?? {},
    });
  }

  #fail(err: Error, cause?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    for (const w of this.#waiters.splice(0)) w.reject(cause ?? err);
    try {
      this.#conn.close();
    } catch {
      // closed
    }
    this.onClose?.(this.#closing ? undefined : err);
  }

  /** Declares an exchange. */
  async assertExchange(
    exchange: string,
    type: "direct" | "fanout" | "topic" | "headers",
    options: { durable?: boolean; autoDelete?: boolean } = {},
  ): Promise<{ exchange: string }> {
    await this.#rpc(40, 10, {
      exchange,
      type,
      durable: options.durable ?? true,
      autoDelete: options.autoDelete ?? false,
      arguments: {},
    }, 11);
    return { exchange };
  }

  /** Declares a queue (`""`: the server names it). */
  async assertQueue(
    queue: string,
    options: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean } = {},
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    const r = await this.#rpc(50, 10, {
      queue,
      durable: options.durable ?? true,
      exclusive: options.exclusive ?? false,
      autoDelete: options.autoDelete ?? false,
      arguments: {},
    }, 11);
    return {
      queue: String(r.queue),
      messageCount: Number(r.messageCount),
      consumerCount: Number(r.consumerCount),
    };
  }

  /** Binds a queue to an exchange. */
  async bindQueue(queue: string, exchange: string, key = ""): Promise<void> {
    await this.#rpc(50, 20, { queue, exchange, routingKey: key, arguments: {} }, 21);
  }

  /** Drops a queue's ready messages. */
  async purgeQueue(queue: string): Promise<{ messageCount: number }> {
    const r = await this.#rpc(50, 30, { queue }, 31);
    return { messageCount: Number(r.messageCount) };
  }

  /** Starts a consumer. */
  async consume(
    queue: string,
    onMessage: (m: QueueMessage) => void,
    options: { noAck?: boolean } = {},
  ): Promise<{ consumerTag: string }> {
    const tag = `peerd.${crypto.randomUUID()}`;
    this.#consumers.set(tag, { queue, fn: onMessage });
    try {
      await this.#rpc(60, 20, {
        queue,
        consumerTag: tag,
        noAck: options.noAck ?? false,
        arguments: {},
      }, 21);
    } catch (err) {
      this.#consumers.delete(tag);
      throw err;
    }
    return { consumerTag: tag };
  }

  /** Acknowledges a delivery. */
  ack(m: QueueMessage): void {
    this.#send(CH, 60, 80, { deliveryTag: m.deliveryTag });
  }

  /** Publishes (fire and forget; errors close the channel and reach `onError`). */
  publish(
    exchange: string,
    key: string,
    body: Uint8Array,
    options: { mandatory?: boolean; persistent?: boolean } = {},
  ): boolean {
    if (this.#closed) return false;
    writeMethodFrame(this.#out, CH, 60, 40, {
      exchange,
      routingKey: key,
      mandatory: options.mandatory ?? false,
    });
    writeContent(
      this.#out,
      CH,
      encodeProperties({ deliveryMode: options.persistent ? 2 : 1 }),
      body,
      this.#frameMax,
    );
    this.#flush();
    return true;
  }

  /** Resolves once the broker has handled everything sent before (a synchronous round trip). */
  async sync(): Promise<void> {
    await this.#rpc(40, 10, {
      exchange: "amq.direct",
      type: "direct",
      passive: true,
      arguments: {},
    }, 11);
  }

  /** Closes the channel and connection politely (bounded), then the socket. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closing = true;
      const done = this.#expect((10 << 16) | 51).catch(() => {});
      this.#send(0, 10, 50, { replyCode: ReplyCode.ReplySuccess, replyText: "bye" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([done, new Promise((r) => timer = setTimeout(r, 2_000))]);
      clearTimeout(timer);
      this.#fail(new Error("closed"));
    }
    await this.#reading;
  }
}

/**
 * An in-process channel on an embedded {@linkcode QueueEngine}, with the same shape as
 * {@linkcode QueueClient} (assertExchange, assertQueue, bindQueue, publish, consume, ack,
 * nack, get), so code can run against an embedded engine or a remote server alike.
 *
 * @module
 */
import type { QueueMessage } from "./client.ts";
import type {
  EngineConnection,
  ExchangeOptions,
  PublishOptions,
  QueueEngine,
  QueueOptions,
} from "./engine.ts";

const encoder = new TextEncoder();

/**
 * One engine connection used in-process. Deliveries reach consumers on a microtask (never
 * inside the engine call that caused them); closing puts unacked deliveries back.
 */
export class LocalChannel implements AsyncDisposable {
  readonly #engine: QueueEngine;
  readonly #conn: EngineConnection;
  readonly #consumers = new Map<string, (m: QueueMessage) => void>();

  constructor(engine: QueueEngine, label = "local") {
    this.#engine = engine;
    this.#conn = engine.connect(label, {
      deliver: (d) => {
        const cb = this.#consumers.get(d.consumerTag);
        if (cb) {
          queueMicrotask(() =>
            cb({
              body: d.body,
              deliveryTag: d.deliveryTag,
              consumerTag: d.consumerTag,
              queue: d.queue,
              exchange: d.exchange,
              routingKey: d.routingKey,
              redelivered: d.redelivered,
              props: d.props,
            })
          );
        }
        return true;
      },
      returned: () => {},
      confirmed: () => {},
      confirmFailed: () => {},
      cancelled: (tag) => this.#consumers.delete(tag),
    });
  }

  /** Declares an exchange. */
  assertExchange(
    exchange: string,
    type: "direct" | "fanout" | "topic",
    options: Omit<ExchangeOptions, "passive"> = {},
  ): Promise<{ exchange: string }> {
    this.#engine.declareExchange(exchange, type, options);
    return Promise.resolve({ exchange });
  }

  /** Declares a queue (`""` for a generated name). */
  assertQueue(
    queue: string,
    options: Omit<QueueOptions, "passive"> = {},
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    const info = this.#engine.declareQueue(this.#conn, queue, options);
    return Promise.resolve({
      queue: info.name,
      messageCount: info.messages,
      consumerCount: info.consumers,
    });
  }

  /** Binds a queue to an exchange. */
  bindQueue(queue: string, exchange: string, key = ""): Promise<void> {
    this.#engine.bindQueue(this.#conn, queue, exchange, key);
    return Promise.resolve();
  }

  /** Drops a queue's ready messages. */
  purgeQueue(queue: string): Promise<{ messageCount: number }> {
    return Promise.resolve({ messageCount: this.#engine.purgeQueue(this.#conn, queue) });
  }

  /** Publishes; always true (no socket to fill). */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    options: PublishOptions = {},
  ): boolean {
    const bytes = typeof body === "string" ? encoder.encode(body) : body;
    this.#engine.publish(this.#conn, exchange, routingKey, bytes, options);
    return true;
  }

  /** Starts a consumer. */
  consume(
    queue: string,
    onMessage: (m: QueueMessage) => void,
    options: { noAck?: boolean; prefetch?: number; consumerTag?: string } = {},
  ): Promise<{ consumerTag: string }> {
    const tag = options.consumerTag ?? `local-${this.#conn.id}.${this.#consumers.size + 1}`;
    this.#consumers.set(tag, onMessage);
    try {
      this.#engine.consume(this.#conn, queue, { ...options, tag });
    } catch (err) {
      this.#consumers.delete(tag);
      return Promise.reject(err);
    }
    return Promise.resolve({ consumerTag: tag });
  }

  /** Acknowledges a delivery. */
  ack(message: QueueMessage | number, allUpTo = false): void {
    this.#engine.ack(
      this.#conn,
      typeof message === "number" ? message : message.deliveryTag,
      allUpTo,
    );
  }

  /** Rejects a delivery (requeued by default). */
  nack(message: QueueMessage | number, allUpTo = false, requeue = true): void {
    this.#engine.nack(this.#conn, typeof message === "number" ? message : message.deliveryTag, {
      multiple: allUpTo,
      requeue,
    });
  }

  /** Closes the channel (safe twice). */
  close(): Promise<void> {
    this.#engine.disconnect(this.#conn);
    this.#consumers.clear();
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * peers-bench adapter for peerd's queue (`../shared/peers-bench/adapters/types.ts`),
 * with peerd's own `QueueClient` against a `peerd --role queue` at the URL
 * (`tcp://host:port`).
 *
 * - `adapter` (pub/sub): like the RabbitMQ adapter, the `amq.topic` exchange with one
 *   exclusive, transient queue per subscriber, auto-ack, transient messages; `flush()` is
 *   a round trip on the connection.
 * - `queueAdapter` (durable queue): a durable queue, persistent messages, publisher
 *   confirms (sent after the SQLite commit), manual acks with the given prefetch.
 *
 * ```sh
 * PEERS_ADAPTER_peerd=$REPO/bench/peers_queue_adapter.ts PEERS_PROJECT_CONFIG=$REPO/deno.json \
 * PEERS_URL_peerd=tcp://127.0.0.1:7501 PEERS_PID_peerd=<queue pid> \
 * BROKERS="rabbitmq peerd" QUEUE_BROKERS="rabbitmq peerd" bash run-all.sh
 * ```
 *
 * @module
 */
import { QueueClient } from "../mod/queue/client.ts";

/** One pub/sub connection (the peers-bench `PubSubConn` shape). */
interface PubSubConn {
  subscribe(topic: string, onMessage: (data: Uint8Array) => void): Promise<void>;
  publish(topic: string, data: Uint8Array): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** One durable-queue connection (the peers-bench `QueueConn` shape). */
interface QueueConn {
  prepare(queue: string): Promise<void>;
  publishConfirmed(queue: string, data: Uint8Array): Promise<void>;
  consume(
    queue: string,
    prefetch: number,
    onMessage: (data: Uint8Array, ack: () => void) => void,
  ): Promise<void>;
  depth(queue: string): Promise<number>;
  cleanup(queue: string): Promise<void>;
  close(): Promise<void>;
}

function connectUrl(url: string, label: string): Promise<QueueClient> {
  const u = new URL(url);
  return QueueClient.connect({ hostname: u.hostname, port: Number(u.port) }, { name: label });
}

/** The peers-bench `PubSubAdapter` for peerd's queue. */
export const adapter = {
  name: "peerd",
  defaultUrl: "tcp://127.0.0.1:7501",
  describe:
    "peerd queue (QueueClient): amq.topic exchange, exclusive transient queue per subscriber, auto-ack",
  async connect(url: string, label: string): Promise<PubSubConn> {
    const ch = await connectUrl(url, label);
    return {
      async subscribe(topic, onMessage) {
        const { queue } = await ch.assertQueue("", { durable: false, exclusive: true });
        await ch.bindQueue(queue, "amq.topic", topic);
        await ch.consume(queue, (m) => onMessage(m.body), { noAck: true });
      },
      publish(topic, data) {
        ch.publish("amq.topic", topic, data);
      },
      flush: () => ch.sync(),
      close: () => ch.close(),
    };
  },
};

/** The peers-bench `QueueAdapter` for peerd's queue. */
export const queueAdapter = {
  name: "peerd",
  defaultUrl: "tcp://127.0.0.1:7501",
  describe:
    "peerd queue (QueueClient): durable queue, persistent messages, confirms after the SQLite commit, manual acks",
  async connect(url: string, label: string): Promise<QueueConn> {
    const ch = await connectUrl(url, label);
    let confirmReady: Promise<void> | undefined;
    return {
      async prepare(queue) {
        await ch.assertQueue(queue, { durable: true });
        await ch.purgeQueue(queue);
      },
      async publishConfirmed(queue, data) {
        await (confirmReady ??= ch.confirmSelect());
        await ch.publishConfirmed("", queue, data, { persistent: true });
      },
      async consume(queue, prefetch, onMessage) {
        await ch.consume(queue, (m) => onMessage(m.body, () => ch.ack(m)), { prefetch });
      },
      async depth(queue) {
        return (await ch.checkQueue(queue)).messageCount;
      },
      async cleanup(queue) {
        await ch.deleteQueue(queue);
      },
      close: () => ch.close(),
    };
  },
};

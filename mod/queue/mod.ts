/**
 * The embedded AMQP-like queue: an engine any role can embed ({@linkcode QueueEngine}),
 * `peerd --role queue` serving it over framed TCP, and a channel-style client
 * ({@linkcode QueueClient}).
 *
 * ```ts
 * await using ch = await QueueClient.connect("127.0.0.1:7501");
 * await ch.assertExchange("logs", "fanout");
 * const { queue } = await ch.assertQueue("", { exclusive: true, durable: false });
 * await ch.bindQueue(queue, "logs");
 * await ch.consume(queue, (m) => console.log(new TextDecoder().decode(m.body)), { noAck: true });
 * ch.publish("logs", "", "hello");
 * ```
 *
 * @module
 */
export {
  type ConnectionSink,
  type ConsumeOptions,
  type Delivery,
  EngineConnection,
  type EngineStats,
  type ExchangeOptions,
  type ExchangeType,
  type PublishOptions,
  QueueEngine,
  type QueueEngineOptions,
  type QueueInfo,
  type QueueOptions,
  type Returned,
} from "./engine.ts";
export { QueueClient, type QueueMessage, type ReturnedMessage } from "./client.ts";
export { type QueueService, queueService } from "./server.ts";
export { queueCtlCommands, queueStatus } from "./ctl.ts";
export { openEngine, queueRole } from "./role.ts";
export {
  HEARTBEAT_MISSES,
  MAX_NAME_LENGTH,
  QUEUE_FRAMES,
  QUEUE_ROUTES,
  QueueErrorCode,
  QueueFrame,
} from "./protocol.ts";
export { topicMatches } from "./topic.ts";
export { QueueStore } from "./store.ts";
export { DEFAULT_QUEUE, queueCtlCommand } from "./cli.ts";
export { LocalChannel } from "./local.ts";
export { queueDemo } from "./demo.ts";
export { AmqpClient, AmqpListener, type AmqpUrl, parseAmqpUrl } from "./amqp/mod.ts";

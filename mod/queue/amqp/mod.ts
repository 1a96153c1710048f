/**
 * AMQP 0-9-1 for the queue role: unmodified RabbitMQ clients (amqplib, pika, …) talk to
 * the same {@linkcode QueueEngine} the native protocol serves. Three layers: the pure
 * frame codec (`codec.ts`), the pure per-connection state machine
 * ({@linkcode AmqpSession}), and the TCP adapter ({@linkcode AmqpListener}); plus a small
 * client ({@linkcode AmqpClient}) the leader/follower job uses with `--amqp-url`.
 *
 * ```ts
 * const engine = new QueueEngine();
 * await using amqp = AmqpListener.listen(engine, {
 *   hostname: "127.0.0.1",
 *   port: 5672,
 *   authenticate: (user, password) => user === "guest" && password === "guest",
 * });
 * ```
 *
 * @module
 */
export {
  type AmqpDecimal,
  AmqpError,
  AmqpFrameDecoder,
  AmqpReader,
  AmqpTimestamp,
  AmqpWriter,
  type BasicProperties,
  decodeContentHeader,
  decodeMethod,
  decodeProperties,
  encodeMethodFrame,
  encodeProperties,
  type FieldTable,
  type FieldValue,
  methodName,
  writeContent,
  writeMethodFrame,
} from "./codec.ts";
export * from "./constants.ts";
export { engineProps, plainValue, RAW_PROPS_KEY, rawProperties } from "./message.ts";
export { writeAckFrame, writeDeliver } from "./frames.ts";
export { AmqpSession, type AmqpSessionOptions, type AmqpTransport } from "./session.ts";
export { type AmqpAuthenticate, parseLogin } from "./handshake.ts";
export { AmqpListener, type AmqpListenerOptions } from "./listener.ts";
export { amqpAuthenticator } from "./auth.ts";
export { AmqpClient, type AmqpUrl, parseAmqpUrl } from "./client.ts";

/**
 * MQTT 3.1.1 and 5.0 on the MOM daemon: the packet codec (pure), the per-connection session
 * state machine (pure: packets and time in, packets and MOM operations out), and the TCP
 * gateway that carries those operations out on the daemon in process.
 *
 * ```ts
 * const reader = new PacketReader({ maxPacketSize: 1 << 20 });
 * const session = new MqttSession({ maxPacketSize: 1 << 20, receiveMaximum: 1024, receiveBatch: 1000 }, Date.now());
 * for (const raw of reader.push(bytes)) {
 *   const { packets, operations } = session.packet(decodePacket(raw, session.level), Date.now());
 * }
 * ```
 *
 * @module
 */
export * from "./packet.ts";
export {
  decodePacket,
  decodeProperties,
  encodePacket,
  encodePackets,
  encodeProperties,
  encodeVarint,
  packetName,
  PacketReader,
  type PacketReaderOptions,
  type RawPacket,
} from "./codec.ts";
export {
  deliveryPacketId,
  forwardedProperties,
  type InboxMessage,
  type MomOperation,
  MqttSession,
  type OpenedSession,
  type OperationResult,
  type SessionConfig,
  type SessionOutput,
  type SessionSubscription,
} from "./session.ts";
export {
  decodeMeta,
  encodeMeta,
  META_EXPIRES,
  META_RETAIN,
  META_RETAINED,
  type PublicationMeta,
  publicationMeta,
  publicationMetaBytes,
} from "./meta.ts";
export { checkFilter, checkTopicName, filterMatches } from "./topic.ts";
export { MqttStore, type StoredSession } from "./store.ts";
export { DaemonPort, DaemonRequestError } from "./daemon_port.ts";
export { mqttAddress, MqttGateway, type MqttGatewayOptions, mqttUsers } from "./gateway.ts";

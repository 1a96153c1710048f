/**
 * MQTT control packets as values: the vocabulary of MQTT 3.1.1 (protocol level 4) and 5.0
 * (level 5), append-only. The codec (`codec.ts`) turns them into bytes and back; the
 * session (`session.ts`) consumes and produces them.
 *
 * @module
 */

/** Protocol level of MQTT 3.1.1. */
export const MQTT_311 = 4;
/** Protocol level of MQTT 5.0. */
export const MQTT_5 = 5;
/** A protocol level this server speaks. */
export type ProtocolLevel = typeof MQTT_311 | typeof MQTT_5;

/** Control packet types (the high nibble of the first byte). */
export const PacketType = {
  Connect: 1,
  Connack: 2,
  Publish: 3,
  Puback: 4,
  Pubrec: 5,
  Pubrel: 6,
  Pubcomp: 7,
  Subscribe: 8,
  Suback: 9,
  Unsubscribe: 10,
  Unsuback: 11,
  Pingreq: 12,
  Pingresp: 13,
  Disconnect: 14,
  Auth: 15,
} as const;

/** The largest remaining length a 4-byte variable byte integer holds (256 MiB − 1). */
export const MAX_REMAINING_LENGTH = 268_435_455;

/** MQTT 5 reason codes (and, where 3.1.1 has one, the same meaning). */
export const Reason = {
  Success: 0x00,
  GrantedQos1: 0x01,
  GrantedQos2: 0x02,
  DisconnectWithWill: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  PayloadFormatInvalid: 0x99,
  QosNotSupported: 0x9b,
  SharedSubscriptionsNotSupported: 0x9e,
  SubscriptionIdentifiersNotSupported: 0xa1,
} as const;

/** MQTT 3.1.1 CONNACK return codes. */
export const ConnectReturn311 = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;

/** MQTT 5 properties (absent fields were not sent). */
export interface Properties {
  payloadFormatIndicator?: number;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Uint8Array;
  /** Subscription identifiers (one on SUBSCRIBE, several on a PUBLISH to the client). */
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  authenticationMethod?: string;
  authenticationData?: Uint8Array;
  requestProblemInformation?: number;
  willDelayInterval?: number;
  requestResponseInformation?: number;
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQos?: number;
  retainAvailable?: number;
  userProperties?: Array<[string, string]>;
  maximumPacketSize?: number;
  wildcardSubscriptionAvailable?: number;
  subscriptionIdentifierAvailable?: number;
  sharedSubscriptionAvailable?: number;
}

/** A Last Will carried by CONNECT. */
export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
  properties: Properties;
}

/** CONNECT. */
export interface ConnectPacket {
  type: typeof PacketType.Connect;
  protocolName: string;
  level: number;
  clean: boolean;
  keepAlive: number;
  clientId: string;
  will?: Will;
  username?: string;
  password?: Uint8Array;
  properties: Properties;
}

/** CONNACK. */
export interface ConnackPacket {
  type: typeof PacketType.Connack;
  sessionPresent: boolean;
  /** 3.1.1 return code or 5.0 reason code. */
  code: number;
  properties: Properties;
}

/** PUBLISH. */
export interface PublishPacket {
  type: typeof PacketType.Publish;
  dup: boolean;
  qos: 0 | 1 | 2;
  retain: boolean;
  topic: string;
  /** Present when qos > 0. */
  packetId?: number;
  properties: Properties;
  payload: Uint8Array;
}

/** PUBACK, PUBREC, PUBREL or PUBCOMP. */
export interface AckPacket {
  type:
    | typeof PacketType.Puback
    | typeof PacketType.Pubrec
    | typeof PacketType.Pubrel
    | typeof PacketType.Pubcomp;
  packetId: number;
  /** Reason code (5.0; 0 in 3.1.1). */
  code: number;
  properties: Properties;
}

/** One topic filter of a SUBSCRIBE and its options. */
export interface Subscription {
  filter: string;
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  /** 0: send retained at subscribe; 1: only if new; 2: never. */
  retainHandling: 0 | 1 | 2;
}

/** SUBSCRIBE. */
export interface SubscribePacket {
  type: typeof PacketType.Subscribe;
  packetId: number;
  properties: Properties;
  subscriptions: Subscription[];
}

/** SUBACK. */
export interface SubackPacket {
  type: typeof PacketType.Suback;
  packetId: number;
  properties: Properties;
  codes: number[];
}

/** UNSUBSCRIBE. */
export interface UnsubscribePacket {
  type: typeof PacketType.Unsubscribe;
  packetId: number;
  properties: Properties;
  filters: string[];
}

/** UNSUBACK (5.0 has reason codes; 3.1.1 only the packet id). */
export interface UnsubackPacket {
  type: typeof PacketType.Unsuback;
  packetId: number;
  properties: Properties;
  codes: number[];
}

/** PINGREQ or PINGRESP. */
export interface PingPacket {
  type: typeof PacketType.Pingreq | typeof PacketType.Pingresp;
}

/** DISCONNECT. */
export interface DisconnectPacket {
  type: typeof PacketType.Disconnect;
  code: number;
  properties: Properties;
}

/** AUTH (5.0). */
export interface AuthPacket {
  type: typeof PacketType.Auth;
  code: number;
  properties: Properties;
}

/** Any control packet. */
export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingPacket
  | DisconnectPacket
  | AuthPacket;

/**
 * A packet that breaks the specification. `code` is the MQTT 5 reason code the connection is
 * closed with (`MalformedPacket`, `ProtocolError`, `PacketTooLarge`, …).
 */
export class MqttProtocolError extends Error {
  /** MQTT 5 reason code. */
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = "MqttProtocolError";
    this.code = code;
  }
}

/**
 * What a CONNECT decides, as pure functions: the protocol level and the refusal a client
 * understands, the client's limits, the session's client id, keep alive, expiry and will;
 * the CONNACK properties of an accepted session; the CONNACK code of a failed `open`.
 * `MqttSession` applies the decision and asks the MOM for the session (`open`).
 *
 * @module
 */
import {
  type ConnectPacket,
  ConnectReturn311,
  MQTT_311,
  MQTT_5,
  MqttProtocolError,
  type Properties,
  Reason,
  type Will,
} from "./packet.ts";
import { checkTopicName } from "./topic.ts";
import { PACKET_ID_SPACE } from "./delivery_window.ts";
import type { SessionConfig } from "./session_types.ts";

/** A CONNECT the server answers with a refusing CONNACK (at `level`), then closes. */
export interface ConnectRefusal {
  refuse: true;
  /** The level the CONNACK is encoded at (the one the client can read). */
  level: number;
  code: number;
  reason: string;
  /** Whether the client accepts reason strings (v5 request problem information). */
  problemInfo: boolean;
}

/** An accepted CONNECT: what the session keeps. */
export interface ConnectSettings {
  refuse: false;
  level: number;
  problemInfo: boolean;
  /** The client's receive maximum (deliveries in flight). */
  clientReceiveMax: number;
  /** The largest packet the client accepts. */
  clientMaxPacket: number;
  clientId: string;
  /** The client id the server assigned (the CONNACK says it), if the client gave none. */
  assigned?: string;
  keepAliveMs: number;
  /** Session expiry interval in seconds (0xFFFFFFFF: never). */
  expiry: number;
  will?: Will;
  /** The will's delay (ms), when there is a will. */
  willAt?: number;
}

/**
 * Decides a CONNECT. Throws {@linkcode MqttProtocolError} where the specification closes
 * without a CONNACK (a protocol that is not MQTT; a receive maximum or maximum packet size of
 * 0). `assignId` gives a client id to a client that sent an empty one.
 */
export function checkConnect(
  p: ConnectPacket,
  assignId: () => string = () => `auto-${crypto.randomUUID()}`,
): ConnectRefusal | ConnectSettings {
  const refuse = (level: number, code: number, reason: string, problemInfo = true) => ({
    refuse: true as const,
    level,
    code,
    reason,
    problemInfo,
  });
  if (p.protocolName !== "MQTT") {
    const reason = `Unsupported protocol ${JSON.stringify(p.protocolName)} level ${p.level}`;
    // MQTT 3.1: return code 1 is the refusal it understands
    if (p.protocolName === "MQIsdp" && p.level === 3) {
      return refuse(MQTT_311, ConnectReturn311.UnacceptableProtocolVersion, reason);
    }
    if (p.level === MQTT_5) return refuse(MQTT_5, Reason.UnsupportedProtocolVersion, reason);
    // not MQTT as we know it: close without a CONNACK it could misread
    throw new MqttProtocolError(Reason.UnsupportedProtocolVersion, reason);
  }
  if (p.level !== MQTT_311 && p.level !== MQTT_5) {
    const level = p.level < MQTT_5 ? MQTT_311 : MQTT_5;
    return refuse(
      level,
      level === MQTT_5
        ? Reason.UnsupportedProtocolVersion
        : ConnectReturn311.UnacceptableProtocolVersion,
      `Unsupported protocol level ${p.level} (this server speaks 4 and 5)`,
    );
  }
  const level = p.level;
  const v5 = level === MQTT_5;
  const props = p.properties;
  const problemInfo = props.requestProblemInformation !== 0;
  if (props.authenticationMethod !== undefined) {
    return refuse(
      level,
      Reason.BadAuthenticationMethod,
      "Enhanced authentication is not supported",
      problemInfo,
    );
  }
  if (props.receiveMaximum === 0 || props.maximumPacketSize === 0) {
    throw new MqttProtocolError(
      Reason.ProtocolError,
      "Protocol error: receive maximum and maximum packet size must not be 0",
    );
  }
  let clientId = p.clientId;
  let assigned: string | undefined;
  if (clientId === "") {
    if (!v5 && !p.clean) {
      return refuse(
        level,
        ConnectReturn311.IdentifierRejected,
        "An empty client identifier needs a clean session",
        problemInfo,
      );
    }
    assigned = clientId = assignId();
  }
  if (p.will) {
    try {
      checkTopicName(p.will.topic);
    } catch (err) {
      return refuse(
        level,
        v5 ? Reason.TopicNameInvalid : ConnectReturn311.NotAuthorized,
        (err as Error).message,
        problemInfo,
      );
    }
  }
  const settings: ConnectSettings = {
    refuse: false,
    level,
    problemInfo,
    clientReceiveMax: props.receiveMaximum ?? PACKET_ID_SPACE,
    clientMaxPacket: props.maximumPacketSize ?? Infinity,
    clientId,
    keepAliveMs: p.keepAlive * 1000,
    // 3.1.1: a clean session ends with the connection, any other never expires
    expiry: v5 ? (props.sessionExpiryInterval ?? 0) : (p.clean ? 0 : 0xffffffff),
  };
  if (assigned !== undefined) settings.assigned = assigned;
  if (p.will) {
    settings.will = p.will;
    settings.willAt = (p.will.properties.willDelayInterval ?? 0) * 1000;
  }
  return settings;
}

/** The CONNACK code for an `open` that failed with MOM error `code`, at `level`. */
export function openRefusalCode(code: string, level: number): number {
  const [c5, c3] = code === "not_authorized"
    ? [Reason.BadUserNameOrPassword, ConnectReturn311.BadUserNameOrPassword]
    : code === "bad_client_id"
    ? [Reason.ClientIdentifierNotValid, ConnectReturn311.IdentifierRejected]
    : [Reason.ServerUnavailable, ConnectReturn311.ServerUnavailable];
  return level === MQTT_5 ? c5 : c3;
}

/** The CONNACK properties of an accepted session (v5; none at 3.1.1). */
export function connackProperties(
  config: SessionConfig,
  level: number,
  assigned: string | undefined,
): Properties {
  const properties: Properties = {};
  if (level !== MQTT_5) return properties;
  properties.receiveMaximum = config.receiveMaximum;
  properties.maximumPacketSize = config.maxPacketSize;
  properties.retainAvailable = 1;
  properties.wildcardSubscriptionAvailable = 1;
  properties.subscriptionIdentifierAvailable = 1;
  properties.sharedSubscriptionAvailable = 0;
  properties.topicAliasMaximum = 0;
  if (assigned) properties.assignedClientIdentifier = assigned;
  return properties;
}

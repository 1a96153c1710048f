/**
 * The PUBLISH of one delivery, as a pure function of the inbox message, the session's
 * subscriptions and a few session facts; and the properties a client's PUBLISH carries to
 * its subscribers. No state: `MqttSession` keeps the window and the counters.
 *
 * @module
 */
import { PacketType, type Properties, type PublishPacket } from "./packet.ts";
import { deliveryPacketId } from "./delivery_window.ts";
import type { SessionSubscriptions } from "./session_subscriptions.ts";
import type { InboxMessage } from "./session_types.ts";

/** What a delivery depends on besides the message and the subscriptions. */
export interface DeliveryContext {
  /** MQTT 5 (properties are sent). */
  v5: boolean;
  /** The session's MOM user (its own publications meet the no-local rule). */
  user: number;
  /** Deliveries at or before this inbox position may have been sent before (DUP). */
  dupUpTo: number;
  /** Largest packet the client accepts (v5 maximum packet size). */
  maxPacket: number;
  /** Wall-clock time (ms). */
  now: number;
}

/**
 * Why a message is not delivered: no subscription matches any more (`unsubscribed`), it
 * expired before its delivery started (`expired`), or it is larger than the client accepts
 * (`too_large`: MQTT 5 discards it as if delivered).
 */
export type NoDelivery = "unsubscribed" | "expired" | "too_large";

/** The properties of a delivery that has none (shared by all of them: never written to). */
const NO_PROPERTIES: Properties = Object.freeze({});

/**
 * The PUBLISH delivering `m`: at the highest QoS of the matching subscriptions capped by the
 * publication's, DUP when it may have been sent before, with the remaining expiry interval in
 * whole seconds (rounded up; a redelivery whose interval passed is completed with 0), the
 * subscription identifiers, the retain flag as the subscriptions ask; or why not.
 */
export function deliveryPacket(
  m: InboxMessage,
  subs: SessionSubscriptions,
  c: DeliveryContext,
): PublishPacket | NoDelivery {
  const own = m.from === c.user && !m.retained;
  const match = subs.match(m.topic, own);
  if (match.qos < 0) return "unsubscribed";
  const qos = Math.min(match.qos, m.qos) as 0 | 1 | 2;
  const dup = qos > 0 && m.seq <= c.dupUpTo;
  let expiry: number | undefined;
  if (m.expiresAt !== undefined) {
    expiry = Math.ceil((m.expiresAt - c.now) / 1000);
    if (expiry <= 0) {
      if (!dup) return "expired";
      expiry = 0; // a redelivery is completed, with nothing left of its interval
    }
  }
  const identifiers = match.identifiers;
  let properties: Properties = NO_PROPERTIES;
  if (c.v5 && (m.properties || expiry !== undefined || identifiers)) {
    properties = m.properties ? { ...m.properties } : {};
    if (expiry !== undefined) properties.messageExpiryInterval = expiry;
    if (identifiers) properties.subscriptionIdentifiers = identifiers;
  }
  const packet: PublishPacket = {
    type: PacketType.Publish,
    dup,
    qos,
    retain: m.retained === true || (match.retainAsPublished && m.retain === true),
    topic: m.topic,
    packetId: qos > 0 ? deliveryPacketId(m.seq) : undefined,
    properties,
    payload: m.payload,
  };
  return estimateSize(packet) > c.maxPacket ? "too_large" : packet;
}

/** An upper bound of the encoded size of `p`. */
export function estimateSize(p: PublishPacket): number {
  return p.payload.length + p.topic.length * 3 + 16 + (p.properties.contentType?.length ?? 0) * 3 +
    (p.properties.responseTopic?.length ?? 0) * 3 + (p.properties.correlationData?.length ?? 0) +
    (p.properties.userProperties?.reduce((n, [k, v]) => n + 4 + (k.length + v.length) * 3, 0) ?? 0);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Whether `b` is well-formed UTF-8. */
export function isUtf8(b: Uint8Array): boolean {
  try {
    strictUtf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** The properties of a PUBLISH that travel with it to the subscribers (v5 3.3.2.3). */
export function forwardedProperties(p: Properties): Properties {
  const out: Properties = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.messageExpiryInterval !== undefined) out.messageExpiryInterval = p.messageExpiryInterval;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = p.correlationData;
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  return out;
}

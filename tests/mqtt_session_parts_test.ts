/**
 * The pure pieces of an MQTT session: the delivery window, the subscriptions' match and the
 * PUBLISH of a delivery.
 */
import assert from "node:assert/strict";
import {
  deliveryPacketId,
  DeliveryWindow,
  PACKET_ID_SPACE,
} from "../mod/mom/mqtt/delivery_window.ts";
import { SessionSubscriptions } from "../mod/mom/mqtt/session_subscriptions.ts";
import { deliveryPacket, forwardedProperties, isUtf8 } from "../mod/mom/mqtt/session_delivery.ts";
import type { InboxMessage } from "../mod/mom/mqtt/session_types.ts";
import {
  type ConnectPacket,
  ConnectReturn311,
  MQTT_311,
  MQTT_5,
  MqttProtocolError,
  PacketType,
  type PublishPacket,
  Reason,
} from "../mod/mom/mqtt/packet.ts";
import {
  checkConnect,
  connackProperties,
  type ConnectRefusal,
  type ConnectSettings,
  openRefusalCode,
} from "../mod/mom/mqtt/session_connect.ts";

Deno.test("DeliveryWindow: the acknowledged position stops before the oldest unsettled delivery", () => {
  const w = new DeliveryWindow();
  assert.equal(w.next(1), true);
  w.sent(1, 1, deliveryPacketId(1));
  assert.equal(w.next(2), true);
  w.settle(2); // QoS 0
  assert.equal(w.next(3), true);
  w.sent(3, 2, deliveryPacketId(3));
  assert.equal(w.next(3), false, "not after the cursor");
  assert.equal(w.inflight, 2);
  assert.equal(w.acked, 0);
  assert.equal(w.oldest, 1);
  // PUBREC for 3 first: 1 still holds the position back
  w.release(w.get(deliveryPacketId(3))!);
  assert.equal(w.acked, 0);
  assert.equal(w.get(deliveryPacketId(3))!.state, "released");
  // PUBACK for 1: everything up to the cursor is settled
  w.finish(deliveryPacketId(1), w.get(deliveryPacketId(1))!);
  assert.equal(w.acked, 3);
  assert.equal(w.oldest, undefined);
  assert.equal(w.inflight, 1, "3 is in flight until PUBCOMP");
  w.finish(deliveryPacketId(3), w.get(deliveryPacketId(3))!);
  assert.equal(w.inflight, 0);
  assert.equal(w.get(deliveryPacketId(3)), undefined);
});

Deno.test("DeliveryWindow.resume(): a QoS 2 delivery released before a reconnect is in flight until PUBCOMP; settle() with nothing in flight moves the position", () => {
  const w = new DeliveryWindow();
  w.resume(7, 6);
  assert.equal(w.inflight, 1);
  assert.equal(w.get(7)!.state, "released");
  w.next(10);
  w.settle(10);
  assert.equal(w.acked, 10);
  w.finish(7, w.get(7)!);
  assert.equal(w.inflight, 0);
  assert.equal(deliveryPacketId(0), 1);
  assert.equal(deliveryPacketId(PACKET_ID_SPACE - 1), PACKET_ID_SPACE);
  assert.equal(deliveryPacketId(PACKET_ID_SPACE), 1, "ids wrap, never 0");
});

Deno.test("SessionSubscriptions.match(): highest QoS, no-local for own publications, identifiers; the cache follows changes", () => {
  const subs = new SessionSubscriptions();
  const base = { noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
  subs.set({ ...base, filter: "a/+", qos: 1, identifier: 4 });
  subs.set({ ...base, filter: "a/#", qos: 2, noLocal: true });
  assert.deepEqual(subs.match("a/b", false), {
    qos: 2,
    retainAsPublished: false,
    identifiers: [4],
  });
  assert.equal(subs.match("a/b", true).qos, 1, "no-local: not for its own publication");
  assert.equal(subs.match("x", false).qos, -1);
  subs.delete("a/+");
  assert.equal(subs.match("a/b", true).qos, -1, "the cache was cleared");
  subs.set({ ...base, filter: "a/b", qos: 0, retainAsPublished: true });
  assert.equal(subs.match("a/b", false).retainAsPublished, true);
  assert.deepEqual(subs.filters().sort(), ["a/#", "a/b"]);
  assert.equal(subs.has("a/#"), true);
  assert.equal(subs.get("a/b")!.qos, 0);
});

Deno.test("deliveryPacket(): QoS capped by the publication, DUP, expiry, identifiers, retain as published, the client's maximum size", () => {
  const subs = new SessionSubscriptions();
  const base = { noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
  subs.set({ ...base, filter: "a/+", qos: 2, identifier: 7 });
  subs.set({ ...base, filter: "a/r", qos: 1, retainAsPublished: true });
  subs.set({ ...base, filter: "own/#", qos: 1, noLocal: true });
  const c = { v5: true, user: 5, dupUpTo: 10, maxPacket: 1000, now: 50_000 };
  const msg = (o: Partial<InboxMessage>): InboxMessage => ({
    seq: 11,
    topic: "a/b",
    payload: new Uint8Array(3),
    from: 9,
    qos: 1,
    ...o,
  });
  const p = deliveryPacket(msg({}), subs, c) as PublishPacket;
  assert.equal(p.qos, 1, "min(subscription 2, publication 1)");
  assert.equal(p.dup, false);
  assert.equal(p.packetId, deliveryPacketId(11));
  assert.deepEqual(p.properties, { subscriptionIdentifiers: [7] });
  assert.equal((deliveryPacket(msg({ seq: 10 }), subs, c) as PublishPacket).dup, true);
  const q0 = deliveryPacket(msg({ seq: 3, qos: 0 }), subs, c) as PublishPacket;
  assert.equal(q0.dup, false, "QoS 0 is never DUP");
  assert.equal(q0.packetId, undefined);
  // expiry: the remaining interval rounded up; expired before a first delivery: dropped
  const left = deliveryPacket(msg({ expiresAt: 51_200 }), subs, c) as PublishPacket;
  assert.equal(left.properties.messageExpiryInterval, 2);
  assert.equal(deliveryPacket(msg({ expiresAt: 50_000 }), subs, c), "expired");
  const redelivery = deliveryPacket(msg({ seq: 9, expiresAt: 1 }), subs, c) as PublishPacket;
  assert.equal(redelivery.properties.messageExpiryInterval, 0, "a redelivery is completed");
  // retain as published, no-local, no match, too large, 3.1.1 without properties
  assert.equal(
    (deliveryPacket(msg({ topic: "a/r", retain: true }), subs, c) as PublishPacket)
      .retain,
    true,
  );
  assert.equal((deliveryPacket(msg({ retain: true }), subs, c) as PublishPacket).retain, false);
  assert.equal(deliveryPacket(msg({ topic: "own/x", from: 5 }), subs, c), "unsubscribed");
  assert.equal(deliveryPacket(msg({ topic: "zz" }), subs, c), "unsubscribed");
  assert.equal(deliveryPacket(msg({ payload: new Uint8Array(2000) }), subs, c), "too_large");
  const v311 = deliveryPacket(msg({ expiresAt: 51_200 }), subs, { ...c, v5: false });
  assert.deepEqual((v311 as PublishPacket).properties, {});
});

Deno.test("forwardedProperties() keeps what travels to subscribers; isUtf8() refuses bad bytes", () => {
  assert.deepEqual(
    forwardedProperties({ contentType: "t", topicAlias: 3, messageExpiryInterval: 9 }),
    { contentType: "t", messageExpiryInterval: 9 },
  );
  assert.equal(isUtf8(new TextEncoder().encode("é")), true);
  assert.equal(isUtf8(new Uint8Array([0xc3])), false);
});

Deno.test("checkConnect(): the refusal a client can read, the errors that close, the settings of an accepted session", () => {
  const connect = (o: Partial<ConnectPacket>): ConnectPacket => ({
    type: PacketType.Connect,
    protocolName: "MQTT",
    level: MQTT_5,
    clean: true,
    keepAlive: 30,
    clientId: "c",
    properties: {},
    ...o,
  });
  const r31 = checkConnect(connect({ protocolName: "MQIsdp", level: 3 })) as ConnectRefusal;
  assert.deepEqual([r31.refuse, r31.level, r31.code], [true, MQTT_311, 1], "3.1: return code 1");
  const r6 = checkConnect(connect({ level: 6 })) as ConnectRefusal;
  assert.deepEqual([r6.level, r6.code], [MQTT_5, Reason.UnsupportedProtocolVersion]);
  assert.equal((checkConnect(connect({ level: 2 })) as ConnectRefusal).level, MQTT_311);
  assert.throws(() => checkConnect(connect({ protocolName: "XMPP", level: 4 })), MqttProtocolError);
  assert.throws(
    () => checkConnect(connect({ properties: { receiveMaximum: 0 } })),
    MqttProtocolError,
  );
  const auth = checkConnect(connect({
    properties: { authenticationMethod: "SCRAM", requestProblemInformation: 0 },
  })) as ConnectRefusal;
  assert.deepEqual([auth.code, auth.problemInfo], [Reason.BadAuthenticationMethod, false]);
  const empty311 = checkConnect(connect({ level: MQTT_311, clientId: "", clean: false }));
  assert.equal((empty311 as ConnectRefusal).code, ConnectReturn311.IdentifierRejected);
  const badWill = checkConnect(connect({
    will: { topic: "a/#", payload: new Uint8Array(0), qos: 0, retain: false, properties: {} },
  }));
  assert.equal((badWill as ConnectRefusal).code, Reason.TopicNameInvalid);

  const ok = checkConnect(
    connect({
      clientId: "",
      properties: { sessionExpiryInterval: 60, receiveMaximum: 10 },
      will: {
        topic: "w",
        payload: new Uint8Array(0),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 5 },
      },
    }),
    () => "given",
  ) as ConnectSettings;
  assert.equal(ok.refuse, false);
  assert.deepEqual(
    [ok.clientId, ok.assigned, ok.expiry, ok.keepAliveMs, ok.clientReceiveMax, ok.willAt],
    ["given", "given", 60, 30_000, 10, 5_000],
  );
  assert.equal(ok.clientMaxPacket, Infinity);
  const persistent = checkConnect(connect({ level: MQTT_311, clean: false })) as ConnectSettings;
  assert.equal(persistent.expiry, 0xffffffff, "3.1.1: a persistent session never expires");
  assert.equal(persistent.assigned, undefined);
});

Deno.test("openRefusalCode() and connackProperties(): the CONNACK of a failed and of an accepted open", () => {
  assert.equal(openRefusalCode("not_authorized", MQTT_5), Reason.BadUserNameOrPassword);
  assert.equal(openRefusalCode("not_authorized", MQTT_311), ConnectReturn311.BadUserNameOrPassword);
  assert.equal(openRefusalCode("bad_client_id", MQTT_311), ConnectReturn311.IdentifierRejected);
  assert.equal(openRefusalCode("unavailable", MQTT_5), Reason.ServerUnavailable);
  const config = { maxPacketSize: 1000, receiveMaximum: 64, receiveBatch: 10 };
  assert.deepEqual(connackProperties(config, MQTT_311, "x"), {});
  const p = connackProperties(config, MQTT_5, "x");
  assert.deepEqual(
    [p.receiveMaximum, p.maximumPacketSize, p.sharedSubscriptionAvailable, p.topicAliasMaximum],
    [64, 1000, 0, 0],
  );
  assert.equal(p.assignedClientIdentifier, "x");
  assert.equal(connackProperties(config, MQTT_5, undefined).assignedClientIdentifier, undefined);
});

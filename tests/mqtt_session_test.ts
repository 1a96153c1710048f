/** The MQTT session state machine without sockets: packets and results in, packets and operations out. */
import assert from "node:assert/strict";
import {
  decodeMeta,
  deliveryPacketId,
  encodeMeta,
  type InboxMessage,
  META_EXPIRES,
  type MomOperation,
  MQTT_311,
  MQTT_5,
  MqttSession,
  type OpenedSession,
  type Packet,
  PacketType,
  publicationMeta,
  publicationMetaBytes,
  type PublishPacket,
  Reason,
  type SessionOutput,
} from "../mod/mom/mqtt/mod.ts";

const config = { maxPacketSize: 1 << 20, receiveMaximum: 4, receiveBatch: 100 };
const text = (s: string) => new TextEncoder().encode(s);

function connect(level: number, extra: Partial<Packet & { type: 1 }> = {}): Packet {
  return {
    type: PacketType.Connect,
    protocolName: "MQTT",
    level,
    clean: true,
    keepAlive: 0,
    clientId: "c",
    properties: {},
    ...extra,
  } as Packet;
}

function publish(topic: string, qos: 0 | 1 | 2, packetId?: number, dup = false): PublishPacket {
  return {
    type: PacketType.Publish,
    dup,
    qos,
    retain: false,
    topic,
    packetId,
    properties: {},
    payload: text("x"),
  };
}

const opened: OpenedSession = {
  user: 7,
  present: false,
  subscriptions: [],
  released: [],
  received: [],
  dupUpTo: 0,
};

/** Opens a session; returns it and the operations seen so far. */
function open(level = MQTT_5, session: Partial<OpenedSession> = {}, extra = {}) {
  const s = new MqttSession(config, 0);
  const out = s.packet(connect(level, extra), 0);
  assert.equal(out.packets.length, 0, "nothing before the open resolves");
  const op = out.operations[0];
  assert.equal(op.op, "open");
  const after = s.result(
    (op as { id: number }).id,
    { ok: true, value: { ...opened, ...session } },
    0,
  );
  assert.equal(after.packets[0].type, PacketType.Connack);
  return { s, after };
}

function opOf<K extends MomOperation["op"]>(out: SessionOutput, kind: K) {
  return out.operations.filter((o) => o.op === kind) as Array<Extract<MomOperation, { op: K }>>;
}

Deno.test("MqttSession: packets before CONNECT close the connection without a CONNACK", () => {
  const s = new MqttSession(config, 0);
  const out = s.packet(publish("a", 0), 0);
  assert.deepEqual(out.packets, []);
  assert.equal(out.close, true);
});

Deno.test("MqttSession: an unsupported level is refused with the code the client's version reads", () => {
  const v3 = new MqttSession(config, 0).packet(connect(3), 0);
  assert.deepEqual(v3.packets.map((p) => "code" in p && p.code), [1]);
  assert.equal(v3.close, true);
  const v6 = new MqttSession(config, 0).packet(connect(6), 0);
  assert.deepEqual(v6.packets.map((p) => "code" in p && p.code), [
    Reason.UnsupportedProtocolVersion,
  ]);
  // 3.1.1 with an empty client id needs a clean session
  const empty = new MqttSession(config, 0).packet(
    connect(MQTT_311, { clientId: "", clean: false }),
    0,
  );
  assert.deepEqual(empty.packets.map((p) => "code" in p && p.code), [2]);
});

Deno.test("MqttSession: the open's refusal becomes CONNACK bad user name or password", () => {
  const s = new MqttSession(config, 0);
  const op = s.packet(connect(MQTT_5), 0).operations[0] as { id: number };
  const out = s.result(op.id, { ok: false, code: "not_authorized", message: "no" }, 0);
  assert.deepEqual(out.packets.map((p) => "code" in p && p.code), [Reason.BadUserNameOrPassword]);
  assert.equal(out.close, true);
});

Deno.test("MqttSession: packets that arrive while CONNECT is being opened wait for the CONNACK", () => {
  const s = new MqttSession(config, 0);
  const op = s.packet(connect(MQTT_5), 0).operations[0] as { id: number };
  assert.deepEqual(s.packet(publish("a/b", 0), 0).operations, []);
  const out = s.result(op.id, { ok: true, value: opened }, 0);
  assert.equal(out.packets[0].type, PacketType.Connack);
  assert.equal(opOf(out, "publish").length, 1);
});

Deno.test("MqttSession: QoS 1 is acknowledged only when its publish resolved; a second CONNECT is a protocol error", () => {
  const { s } = open(MQTT_5);
  const out = s.packet(publish("a/b", 1, 5), 0);
  assert.deepEqual(out.packets, []);
  const [op] = opOf(out, "publish");
  assert.equal(op.qos, 1);
  const acked = s.result(op.id!, { ok: true, value: "d1:1" }, 0);
  assert.deepEqual(acked.packets, [{
    type: PacketType.Puback,
    packetId: 5,
    code: 0,
    properties: {},
  }]);
  const again = s.packet(connect(MQTT_5), 0);
  assert.deepEqual(again.packets.map((p) => [p.type, "code" in p && p.code]), [
    [PacketType.Disconnect, Reason.ProtocolError],
  ]);
  assert.equal(again.close, true);
});

Deno.test("MqttSession: QoS 2 from the client is published once however often it is resent", () => {
  const { s } = open(MQTT_5);
  const first = s.packet(publish("a/b", 2, 9), 0);
  const [op] = opOf(first, "publish");
  assert.equal(op.received, 9, "the packet id is remembered in the publication's commit");
  // a resend before it is stored: nothing more
  assert.deepEqual(s.packet(publish("a/b", 2, 9, true), 0).operations, []);
  const rec = s.result(op.id!, { ok: true }, 0);
  assert.deepEqual(rec.packets.map((p) => p.type), [PacketType.Pubrec]);
  // a resend after PUBREC: PUBREC again, no publish
  const dup = s.packet(publish("a/b", 2, 9, true), 0);
  assert.deepEqual(dup.operations, []);
  assert.deepEqual(dup.packets.map((p) => p.type), [PacketType.Pubrec]);
  const rel = s.packet({ type: PacketType.Pubrel, packetId: 9, code: 0, properties: {} }, 0);
  assert.deepEqual(rel.packets.map((p) => p.type), [PacketType.Pubcomp]);
  assert.deepEqual(opOf(rel, "forget").map((o) => o.packetId), [9]);
  // a resumed session knows the ids stored before a restart
  const { s: resumed } = open(MQTT_5, { received: [3] });
  const again = resumed.packet(publish("a/b", 2, 3, true), 0);
  assert.deepEqual(again.operations, []);
  assert.deepEqual(again.packets.map((p) => p.type), [PacketType.Pubrec]);
});

Deno.test("MqttSession: a wildcard topic closes the connection; a bad filter is refused in SUBACK", () => {
  const { s } = open(MQTT_5);
  const out = s.packet({
    type: PacketType.Subscribe,
    packetId: 1,
    properties: {},
    subscriptions: [
      { filter: "a/#/b", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ],
  }, 0);
  assert.deepEqual(
    out.packets.map((p) => p.type === PacketType.Suback && p.codes),
    [[Reason.TopicFilterInvalid]],
  );
  const bad = s.packet(publish("a/+", 0), 0);
  assert.deepEqual(bad.packets.map((p) => [p.type, "code" in p && p.code]), [
    [PacketType.Disconnect, Reason.TopicNameInvalid],
  ]);
});

Deno.test("MqttSession: deliveries at min QoS, packet ids from inbox positions, the receive maximum, acknowledgement in order", () => {
  const { s, after } = open(MQTT_5, {}, { properties: { receiveMaximum: 2 } });
  // subscribe QoS 1 (the MOM subscription resolves, then the retained messages)
  const sub = s.packet({
    type: PacketType.Subscribe,
    packetId: 1,
    properties: {},
    subscriptions: [{
      filter: "t/#",
      qos: 1,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
    }],
  }, 0);
  const [sop] = opOf(sub, "subscribe");
  const [rop] = opOf(s.result(sop.id, { ok: true }, 0), "retained");
  const subacked = s.result(rop.id, { ok: true }, 0);
  assert.deepEqual(subacked.packets.map((p) => p.type), [PacketType.Suback]);
  // the session asks for deliveries once open; at most the client's receive maximum (2)
  const [recv] = opOf(after, "receive");
  assert.deepEqual([recv.after, recv.from, recv.max], [0, 0, 2]);
  const msg = (seq: number, qos: 0 | 1 | 2) => ({
    seq,
    topic: "t/x",
    payload: text(`${seq}`),
    from: 1,
    qos,
  });
  const delivered = s.result(recv.id, { ok: true, value: [msg(10, 2), msg(11, 0)] }, 0);
  const pubs = delivered.packets as PublishPacket[];
  assert.deepEqual(pubs.map((p) => [p.qos, p.packetId]), [[1, deliveryPacketId(10)], [
    0,
    undefined,
  ]]);
  // one in flight (the QoS 0 one is done): the next receive asks for one more, after 11, acking nothing
  const [next] = opOf(delivered, "receive");
  assert.deepEqual([next.after, next.from, next.max], [0, 11, 1]);
  const more = s.result(next.id, { ok: true, value: [msg(12, 1)] }, 0);
  assert.equal(opOf(more, "receive").length, 0, "the window is full");
  // PUBACK of the later one first: nothing acknowledged yet; then the first: up to 12
  const a12 = s.packet({
    type: PacketType.Puback,
    packetId: deliveryPacketId(12),
    code: 0,
    properties: {},
  }, 0);
  const [r12] = opOf(a12, "receive");
  assert.deepEqual([r12.after, r12.from], [0, 12]);
  // (a receive that comes back empty is asked again: one is always waiting)
  const [waiting] = opOf(s.result(r12.id, { ok: true, value: [] }, 0), "receive");
  const a10 = s.packet({
    type: PacketType.Puback,
    packetId: deliveryPacketId(10),
    code: 0,
    properties: {},
  }, 0);
  assert.equal(opOf(a10, "receive").length, 0, "one receive at a time");
  // the acknowledgement rides on the next receive
  const [r10] = opOf(s.result(waiting.id, { ok: true, value: [] }, 0), "receive");
  assert.deepEqual([r10.after, r10.from, r10.max], [12, 12, 2]);
});

Deno.test("MqttSession: after a reconnect deliveries that may have been sent carry DUP; released QoS 2 ones get PUBREL, not PUBLISH", () => {
  const { s, after } = open(MQTT_311, {
    present: true,
    subscriptions: [{
      filter: "t",
      qos: 2,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
    }],
    released: [{ packetId: deliveryPacketId(20), seq: 20, complete: false }],
    dupUpTo: 21,
  });
  assert.deepEqual(after.packets.map((p) => p.type), [PacketType.Connack, PacketType.Pubrel]);
  assert.equal((after.packets[0] as { sessionPresent: boolean }).sessionPresent, true);
  const [recv] = opOf(after, "receive");
  const msg = (seq: number) => ({
    seq,
    topic: "t",
    payload: text(`${seq}`),
    from: 1,
    qos: 2 as const,
  });
  const out = s.result(recv.id, { ok: true, value: [msg(20), msg(21), msg(22)] }, 0);
  const pubs = out.packets as PublishPacket[];
  assert.deepEqual(pubs.map((p) => [new TextDecoder().decode(p.payload), p.dup]), [
    ["21", true],
    ["22", false],
  ]);
  // PUBREC → PUBREL and a "released" record; PUBCOMP → "completed"
  const rec = s.packet({
    type: PacketType.Pubrec,
    packetId: deliveryPacketId(21),
    code: 0,
    properties: {},
  }, 0);
  assert.deepEqual(rec.packets.map((p) => p.type), [PacketType.Pubrel]);
  assert.deepEqual(opOf(rec, "released").map((o) => o.seq), [21]);
  const comp = s.packet({
    type: PacketType.Pubcomp,
    packetId: deliveryPacketId(21),
    code: 0,
    properties: {},
  }, 0);
  assert.deepEqual(opOf(comp, "completed").map((o) => o.packetId), [deliveryPacketId(21)]);
});

Deno.test("MqttSession: a silent client is dropped after 1.5 × its keep alive and its will is due", () => {
  const will = { topic: "w", payload: text("bye"), qos: 1 as const, retain: false, properties: {} };
  const { s } = open(MQTT_5, {}, { keepAlive: 10, will });
  assert.equal(s.tick(14_000).close, false);
  const out = s.tick(15_001);
  assert.equal(out.close, true);
  assert.deepEqual(out.packets.map((p) => [p.type, "code" in p && p.code]), [
    [PacketType.Disconnect, Reason.KeepAliveTimeout],
  ]);
  assert.equal(s.will?.will.topic, "w");
  assert.deepEqual(opOf(out, "end").map((o) => o.expiry), [0]);
  // a DISCONNECT drops the will
  const { s: polite } = open(MQTT_5, {}, { will });
  polite.packet({ type: PacketType.Disconnect, code: 0, properties: {} }, 0);
  assert.equal(polite.will, undefined);
});

Deno.test("MqttSession: an expired message is not delivered (and is acknowledged); others go with the remaining interval; a redelivery is completed", () => {
  const sub = {
    filter: "t/#",
    qos: 1 as const,
    noLocal: false,
    retainAsPublished: false,
    retainHandling: 0 as const,
  };
  const { s, after } = open(MQTT_5, { present: true, subscriptions: [sub], dupUpTo: 3 });
  const [recv] = opOf(after, "receive");
  const now = 1_000_000;
  const msg = (seq: number, expiresAt?: number) => ({
    seq,
    topic: "t/x",
    payload: text(`${seq}`),
    from: 1,
    qos: 1 as const,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  });
  const out = s.result(recv.id, {
    ok: true,
    value: [
      msg(3, now - 1), // expired, but may have been sent before the reconnect: completed
      msg(4, now - 5_000), // expired: dropped
      msg(5, now + 59_001), // 59.001 s left: 60
      msg(6), // no expiry
      msg(7, now), // expires now: dropped
    ],
  }, now);
  const pubs = out.packets as PublishPacket[];
  assert.deepEqual(pubs.map((p) => p.payload).map((b) => new TextDecoder().decode(b)), [
    "3",
    "5",
    "6",
  ]);
  assert.equal(pubs[0].dup, true);
  assert.equal(pubs[0].properties.messageExpiryInterval, 0);
  assert.equal(pubs[1].properties.messageExpiryInterval, 60);
  assert.equal(pubs[2].properties.messageExpiryInterval, undefined);
  assert.equal(s.status().expired, 2);
  // the dropped ones count as done: acknowledging 3, 5 and 6 acknowledges through 7
  for (const p of pubs) {
    s.packet({ type: PacketType.Puback, packetId: p.packetId!, code: 0, properties: {} }, now);
  }
  assert.equal(s.status().acked, 7);
});

Deno.test("encodeMeta() / decodeMeta(): an expiry interval travels as an absolute time beside qos, retain and the other properties", () => {
  const meta = encodeMeta(publicationMeta(1, true, {
    messageExpiryInterval: 30,
    contentType: "text/plain",
  }, 5_000))!;
  const m: InboxMessage = { seq: 1, topic: "t", payload: text("x"), from: 1, qos: 2 };
  decodeMeta(meta, m);
  assert.equal(m.qos, 1);
  assert.equal(m.retain, true);
  assert.equal(m.expiresAt, 35_000);
  assert.deepEqual(m.properties, { contentType: "text/plain" });
  // no expiry: as before (byte 0, then the properties)
  const plain = encodeMeta(publicationMeta(0, false, { contentType: "a" }, 0))!;
  const p: InboxMessage = { seq: 1, topic: "t", payload: text("x"), from: 1, qos: 2 };
  decodeMeta(plain, p);
  assert.equal(p.expiresAt, undefined);
  assert.deepEqual(p.properties, { contentType: "a" });
  assert.equal(encodeMeta(publicationMeta(2, false, {}, 0)), undefined);
  // publicationMetaBytes(): the same bytes, shared when there are no properties
  for (const qos of [0, 1, 2] as const) {
    for (const retain of [false, true]) {
      for (const props of [{}, { contentType: "a" }, { messageExpiryInterval: 9 }]) {
        assert.deepEqual(
          publicationMetaBytes(qos, retain, props, 1_000),
          encodeMeta(publicationMeta(qos, retain, props, 1_000)),
        );
      }
    }
  }
  assert.equal(publicationMetaBytes(1, true, {}, 0), publicationMetaBytes(1, true, {}, 5));
  // truncated: the expiry bit without its time is ignored, nothing thrown
  const bad: InboxMessage = { seq: 1, topic: "t", payload: text("x"), from: 1, qos: 2 };
  decodeMeta(Uint8Array.of(1 | META_EXPIRES, 0, 0), bad);
  assert.equal(bad.qos, 1);
  assert.equal(bad.expiresAt, undefined);
});

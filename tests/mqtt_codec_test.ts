import assert from "node:assert/strict";
import {
  decodePacket,
  encodePacket,
  encodePackets,
  encodeVarint,
  MQTT_311,
  MQTT_5,
  MqttProtocolError,
  type Packet,
  PacketReader,
  PacketType,
  Reason,
} from "../mod/mom/mqtt/mod.ts";

const text = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((h) => parseInt(h, 16)));

/** Decodes one whole packet from `bytes` (it must be exactly one). */
function decodeOne(bytes: Uint8Array, level: number = MQTT_5): Packet {
  const raws = new PacketReader().push(bytes);
  assert.equal(raws.length, 1);
  return decodePacket(raws[0], level);
}

function reasonOf(f: () => unknown): number {
  try {
    f();
  } catch (err) {
    assert(err instanceof MqttProtocolError, `expected MqttProtocolError, got ${String(err)}`);
    return err.code;
  }
  throw new Error("expected a protocol error");
}

Deno.test("encodeVarint() gives the specification's boundary encodings", () => {
  const cases: Array<[number, string]> = [
    [0, "00"],
    [127, "7f"],
    [128, "80 01"],
    [16_383, "ff 7f"],
    [16_384, "80 80 01"],
    [2_097_151, "ff ff 7f"],
    [2_097_152, "80 80 80 01"],
    [268_435_455, "ff ff ff 7f"],
  ];
  for (const [n, bytes] of cases) assert.deepEqual(encodeVarint(n), hex(bytes), `${n}`);
  assert.throws(() => encodeVarint(268_435_456), RangeError);
});

Deno.test("PacketReader.push() cuts packets given a byte at a time and several at once", () => {
  // CONNECT 3.1.1, client "c1", clean session, keep alive 60 (remaining length 14)
  const connect = hex("10 0e 00 04 4d 51 54 54 04 02 00 3c 00 02 63 31");
  const ping = hex("c0 00");
  const reader = new PacketReader();
  const got = [];
  for (const b of [...connect, ...ping]) got.push(...reader.push(Uint8Array.of(b)));
  assert.equal(got.length, 2);
  assert.equal(reader.buffered, 0);
  const c = decodePacket(got[0], MQTT_311);
  assert.equal(c.type, PacketType.Connect);
  if (c.type === PacketType.Connect) {
    assert.equal(c.protocolName, "MQTT");
    assert.equal(c.level, 4);
    assert.equal(c.clean, true);
    assert.equal(c.keepAlive, 60);
    assert.equal(c.clientId, "c1");
  }
  assert.equal(decodePacket(got[1], MQTT_311).type, PacketType.Pingreq);
  // both in one chunk, and a third one cut in the middle of its length
  const three = new Uint8Array([...connect, ...ping, 0x30, 0x80]);
  const r2 = new PacketReader();
  assert.equal(r2.push(three).length, 2);
  assert.equal(r2.buffered, 2);
});

Deno.test("PacketReader.push() refuses a five-byte remaining length and a packet over the maximum", () => {
  assert.equal(
    reasonOf(() => new PacketReader().push(hex("30 ff ff ff ff 01"))),
    Reason.MalformedPacket,
  );
  // packets before bad framing in the same chunk come out first; the error follows
  const r = new PacketReader();
  assert.equal(r.push(hex("c0 00 30 ff ff ff ff 01")).length, 1);
  assert.equal(r.error?.code, Reason.MalformedPacket);
  assert.equal(reasonOf(() => r.push(new Uint8Array(0))), Reason.MalformedPacket);
  // the length alone says it is too large: refused before its body arrives
  const reader = new PacketReader({ maxPacketSize: 1024 });
  assert.equal(reasonOf(() => reader.push(hex("30 80 10"))), Reason.PacketTooLarge);
});

Deno.test("encodePacket() writes PUBLISH, PUBACK and SUBACK as the specification shows", () => {
  const publish: Packet = {
    type: PacketType.Publish,
    dup: false,
    qos: 1,
    retain: false,
    topic: "a/b",
    packetId: 10,
    properties: {},
    payload: text("hi"),
  };
  assert.deepEqual(encodePacket(publish, MQTT_311), hex("32 09 00 03 61 2f 62 00 0a 68 69"));
  // 5.0 adds a property length (0 here)
  assert.deepEqual(encodePacket(publish, MQTT_5), hex("32 0a 00 03 61 2f 62 00 0a 00 68 69"));
  const puback: Packet = { type: PacketType.Puback, packetId: 10, code: 0, properties: {} };
  assert.deepEqual(encodePacket(puback, MQTT_5), hex("40 02 00 0a"));
  const refused: Packet = { type: PacketType.Puback, packetId: 10, code: 0x80, properties: {} };
  assert.deepEqual(encodePacket(refused, MQTT_5), hex("40 03 00 0a 80"));
  const suback: Packet = {
    type: PacketType.Suback,
    packetId: 1,
    properties: {},
    codes: [0, 1, 0x80],
  };
  assert.deepEqual(encodePacket(suback, MQTT_311), hex("90 05 00 01 00 01 80"));
  assert.deepEqual(encodePacket({ type: PacketType.Pingresp }, MQTT_5), hex("d0 00"));
});

Deno.test("encodePackets() writes what encodePacket() writes for each packet, one after the other", () => {
  const publish = (qos: 0 | 1 | 2, size: number, properties = {}): Packet => ({
    type: PacketType.Publish,
    dup: qos > 0,
    qos,
    retain: qos === 2,
    topic: `t/${size}/é`,
    packetId: qos > 0 ? 300 + size : undefined,
    properties,
    payload: Uint8Array.from({ length: size }, (_, i) => i & 0xff),
  });
  const packets: Packet[] = [
    publish(0, 0),
    publish(1, 100),
    { type: PacketType.Puback, packetId: 7, code: 0, properties: {} },
    { type: PacketType.Pubrec, packetId: 65535, code: 0, properties: {} },
    { type: PacketType.Pubrel, packetId: 1, code: 0, properties: {} },
    { type: PacketType.Pubcomp, packetId: 258, code: 0x92, properties: {} },
    { type: PacketType.Puback, packetId: 9, code: 0x80, properties: { reasonString: "no" } },
    publish(2, 20_000, { contentType: "text/plain", messageExpiryInterval: 9 }),
    { type: PacketType.Suback, packetId: 1, properties: {}, codes: [0, 1] },
    publish(0, 127),
    { type: PacketType.Pingresp },
    publish(1, 2_200_000),
  ];
  for (const level of [MQTT_311, MQTT_5]) {
    const each = packets.map((p) => encodePacket(p, level));
    const joined = new Uint8Array(each.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of each) {
      joined.set(b, at);
      at += b.length;
    }
    assert.deepEqual(encodePackets(packets, level), joined, `level ${level}`);
    for (const p of packets) assert.deepEqual(encodePackets([p], level), encodePacket(p, level));
  }
  assert.deepEqual(encodePackets([], MQTT_5), new Uint8Array(0));
});

Deno.test("decodePacket(): PUBLISH topics repeated, changed, then bad bytes of the same length", () => {
  const publish = (topic: string): Packet => ({
    type: PacketType.Publish,
    dup: false,
    qos: 0,
    retain: false,
    topic,
    properties: {},
    payload: text("x"),
  });
  for (const topic of ["a/b", "a/b", "a/c", "é/b", "a/c", "a/c"]) {
    const p = decodeOne(encodePacket(publish(topic), MQTT_311), MQTT_311);
    assert.equal((p as { topic: string }).topic, topic);
  }
  // the last topic read was a/c: three bytes that are not UTF-8 are still refused
  const bad = encodePacket(publish("a/c"), MQTT_311);
  bad.set([0xff, 0xfe, 0xfd], 4);
  assert.equal(reasonOf(() => decodeOne(bad, MQTT_311)), Reason.MalformedPacket);
  const nul = encodePacket(publish("a/c"), MQTT_311);
  nul[5] = 0;
  assert.equal(reasonOf(() => decodeOne(nul, MQTT_311)), Reason.MalformedPacket);
});

Deno.test("decodePacket() reads back every packet type it encodes, 3.1.1 and 5.0", () => {
  const props = {
    contentType: "text/plain",
    userProperties: [["k", "v"], ["k", "w"]] as Array<[string, string]>,
    correlationData: Uint8Array.of(1, 2, 3),
    messageExpiryInterval: 60,
    subscriptionIdentifiers: [7, 300],
  };
  const packets: Packet[] = [
    {
      type: PacketType.Connect,
      protocolName: "MQTT",
      level: 5,
      clean: false,
      keepAlive: 30,
      clientId: "dev-1",
      will: {
        topic: "w/t",
        payload: text("bye"),
        qos: 1,
        retain: true,
        properties: { willDelayInterval: 5 },
      },
      username: "u",
      password: text("p"),
      properties: { sessionExpiryInterval: 3600, receiveMaximum: 10 },
    },
    {
      type: PacketType.Connack,
      sessionPresent: true,
      code: 0,
      properties: { receiveMaximum: 1024, retainAvailable: 1 },
    },
    {
      type: PacketType.Publish,
      dup: true,
      qos: 2,
      retain: true,
      topic: "x/y",
      packetId: 65535,
      properties: props,
      payload: text("payload"),
    },
    { type: PacketType.Pubrec, packetId: 3, code: 0x10, properties: { reasonString: "none" } },
    { type: PacketType.Pubrel, packetId: 3, code: 0, properties: {} },
    { type: PacketType.Pubcomp, packetId: 3, code: 0, properties: {} },
    {
      type: PacketType.Subscribe,
      packetId: 9,
      properties: { subscriptionIdentifiers: [4] },
      subscriptions: [
        { filter: "a/#", qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 },
        { filter: "+/b", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
    { type: PacketType.Suback, packetId: 9, properties: {}, codes: [2, 0x8f] },
    { type: PacketType.Unsubscribe, packetId: 10, properties: {}, filters: ["a/#", "+/b"] },
    { type: PacketType.Unsuback, packetId: 10, properties: {}, codes: [0, 0x11] },
    { type: PacketType.Pingreq },
    { type: PacketType.Disconnect, code: 0x04, properties: { sessionExpiryInterval: 0 } },
    { type: PacketType.Auth, code: 0x18, properties: { authenticationMethod: "x" } },
  ];
  for (const p of packets) {
    assert.deepEqual(decodeOne(encodePacket(p, MQTT_5), MQTT_5), p, `5.0 ${p.type}`);
  }
  // 3.1.1: no properties, no reason codes
  const p311: Packet = {
    type: PacketType.Publish,
    dup: false,
    qos: 0,
    retain: false,
    topic: "t",
    properties: {},
    payload: new Uint8Array(0),
  };
  assert.deepEqual(decodeOne(encodePacket(p311, MQTT_311), MQTT_311), {
    ...p311,
    packetId: undefined,
  });
});

Deno.test("decodePacket() refuses what the specifications call malformed", () => {
  const cases: Array<[string, string, number]> = [
    ["SUBSCRIBE without its fixed flags 0010", "80 06 00 01 00 01 61 00", Reason.MalformedPacket],
    ["PUBLISH at QoS 3", "36 05 00 01 61 00 01", Reason.MalformedPacket],
    ["PUBLISH at QoS 0 with DUP", "38 03 00 01 61", Reason.MalformedPacket],
    ["PUBLISH with packet identifier 0", "32 05 00 01 61 00 00", Reason.MalformedPacket],
    ["PUBREL with flags 0000", "60 02 00 01", Reason.MalformedPacket],
    ["PINGREQ with a body", "c0 01 00", Reason.MalformedPacket],
    ["a topic that is not UTF-8", "30 04 00 02 c3 28", Reason.MalformedPacket],
    ["a topic with U+0000", "30 04 00 02 61 00", Reason.MalformedPacket],
    ["a topic longer than the packet", "30 03 00 05 61", Reason.MalformedPacket],
    ["a property given twice", "30 0a 00 01 61 06 01 01 01 01 00 00", Reason.ProtocolError],
    ["an unknown property", "30 06 00 01 61 02 7f 00", Reason.MalformedPacket],
    ["a property length past the end", "30 05 00 01 61 09 01", Reason.MalformedPacket],
    ["SUBSCRIBE with reserved option bits", "82 07 00 01 00 00 01 61 c0", Reason.MalformedPacket],
    ["SUBSCRIBE with retain handling 3", "82 07 00 01 00 00 01 61 30", Reason.MalformedPacket],
    ["SUBSCRIBE with no topic filter", "82 03 00 01 00", Reason.ProtocolError],
    ["UNSUBSCRIBE with no topic filter", "a2 03 00 01 00", Reason.ProtocolError],
    ["reserved packet type 0", "00 00", Reason.MalformedPacket],
    ["DISCONNECT with bytes after its properties", "e0 03 00 00 00", Reason.MalformedPacket],
  ];
  for (const [what, bytes, code] of cases) {
    assert.equal(reasonOf(() => decodeOne(hex(bytes), MQTT_5)), code, what);
  }
  // 3.1.1 subscription options: only the QoS bits
  assert.equal(
    reasonOf(() => decodeOne(hex("82 06 00 01 00 01 61 04"), MQTT_311)),
    Reason.MalformedPacket,
  );
  // CONNECT: the reserved flag, will QoS without the will flag, a password without a user
  const connect = (flags: number) =>
    new Uint8Array([0x10, 0x0c, 0, 4, ...text("MQTT"), 4, flags, 0, 60, 0, 0]);
  assert.equal(reasonOf(() => decodeOne(connect(0x03), MQTT_311)), Reason.MalformedPacket);
  assert.equal(reasonOf(() => decodeOne(connect(0x0a), MQTT_311)), Reason.MalformedPacket);
  assert.equal(reasonOf(() => decodeOne(connect(0x42), MQTT_311)), Reason.MalformedPacket);
  // a wrong protocol name or level is read (for the CONNACK), not refused here
  const old = new Uint8Array([0x10, 0x0e, 0, 6, ...text("MQIsdp"), 3, 2, 0, 60, 0, 0]);
  const c = decodeOne(old, MQTT_311);
  assert(c.type === PacketType.Connect && c.protocolName === "MQIsdp" && c.level === 3);
});

import assert from "node:assert/strict";
import {
  type AmqpError,
  AmqpFrameDecoder,
  AmqpReader,
  AmqpTimestamp,
  AmqpWriter,
  decodeContentHeader,
  decodeMethod,
  decodeProperties,
  encodeMethodFrame,
  encodeProperties,
  engineProps,
  type FieldTable,
  parseLogin,
  rawProperties,
  writeContent,
} from "../mod/queue/amqp/mod.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("encodeMethodFrame() writes type, channel, size, ids, packed bits and the frame end", () => {
  // basic.ack(delivery-tag 5, multiple) on channel 1
  assert.equal(
    hex(encodeMethodFrame(1, 60, 80, { deliveryTag: 5, multiple: true })),
    "01 00 01 00 00 00 0d 00 3c 00 50 00 00 00 00 00 00 00 05 01 ce",
  );
  // queue.declare: ticket, shortstr, five bits in one octet (passive, durable, exclusive, auto-delete, no-wait), empty table
  assert.equal(
    hex(
      encodeMethodFrame(2, 50, 10, { queue: "q", durable: true, autoDelete: true, arguments: {} }),
    ),
    "01 00 02 00 00 00 0d 00 32 00 0a 00 00 01 71 0a 00 00 00 00 ce",
  );
});

Deno.test("decodeMethod() reads back what encodeMethodFrame() wrote, bits and tables included", () => {
  const args = {
    ticket: 0,
    queue: "jobs",
    consumerTag: "ctag-ü",
    noLocal: false,
    noAck: true,
    exclusive: true,
    noWait: false,
    arguments: { "x-priority": 3, nested: { a: [1, "two", true, null] } },
  };
  const frame = encodeMethodFrame(7, 60, 20, args);
  const m = decodeMethod(frame.subarray(7, frame.length - 1));
  assert.equal(m.name, "basic.consume");
  assert.deepEqual(m.args, args);
});

Deno.test("decodeMethod() refuses an unknown method (540) and truncated arguments (502)", () => {
  const unknown = new Uint8Array([0, 60, 0, 99]);
  assert.throws(() => decodeMethod(unknown), (e: AmqpError) => e.code === 540 && e.classId === 60);
  const frame = encodeMethodFrame(1, 50, 10, { queue: "abc", arguments: {} });
  const cut = frame.subarray(7, frame.length - 4);
  assert.throws(() => decodeMethod(cut), (e: AmqpError) => e.code === 502);
});

Deno.test("field tables round-trip every RabbitMQ value type", () => {
  const w = new AmqpWriter(8);
  const table: FieldTable = {
    bool: true,
    int: -5,
    big: 2 ** 40,
    huge: 2n ** 62n,
    float: 1.5,
    str: "héllo",
    bytes: new Uint8Array([0, 255]),
    nil: null,
    ts: new AmqpTimestamp(1_700_000_000),
    dec: { scale: 2, value: 12345 },
    arr: [1, "a", [false]],
    tab: { inner: "x" },
  };
  w.table(table);
  const back = new AmqpReader(w.toBytes()).table();
  assert.deepEqual(back, table);
  // types written by other clients: b B s u i f
  const other = new Uint8Array([
    ...[0, 0, 0, 0x20],
    1,
    0x61,
    0x62,
    0xff, // a: b -1
    1,
    0x62,
    0x42,
    0xff, // b: B 255
    1,
    0x63,
    0x73,
    0xff,
    0xfe, // c: s -2
    1,
    0x64,
    0x75,
    0xff,
    0xfe, // d: u 65534
    1,
    0x65,
    0x69,
    0xff,
    0xff,
    0xff,
    0xff, // e: i 4294967295
    1,
    0x66,
    0x66,
    0x3f,
    0xc0,
    0,
    0, // f: f 1.5
  ]);
  assert.deepEqual(new AmqpReader(other).table(), {
    a: -1,
    b: 255,
    c: -2,
    d: 65534,
    e: 4294967295,
    f: 1.5,
  });
  assert.throws(
    () => new AmqpReader(new Uint8Array([0, 0, 0, 3, 1, 0x61, 0x51])).table(),
    (e: AmqpError) => e.code === 502 && /value type 0x51/.test(e.message),
  );
});

Deno.test("properties round-trip and keep their raw bytes in the engine props", () => {
  const p = {
    contentType: "application/json",
    headers: { retry: 2, ts: new AmqpTimestamp(5) },
    deliveryMode: 2,
    correlationId: "c-1",
    replyTo: "amq.gen-x",
    expiration: "60000",
    messageId: "m-1",
    timestamp: 1_700_000_000,
    type: "t",
    appId: "app",
  };
  const raw = encodeProperties(p);
  assert.deepEqual(decodeProperties(raw), p);
  const { props, persistent } = engineProps(raw);
  assert.equal(persistent, true);
  assert.equal(props.contentType, "application/json");
  assert.deepEqual(props.headers, { retry: 2, ts: 5 });
  assert.deepEqual(rawProperties(props, true), raw, "the raw bytes go out as they came");
  // a natively published message gets properties built from its plain props
  const built = decodeProperties(
    rawProperties({ contentType: "text/plain", headers: { a: "b" } }, true),
  );
  assert.deepEqual(built, { contentType: "text/plain", headers: { a: "b" }, deliveryMode: 2 });
  // the one-octet fast path
  assert.deepEqual(engineProps(new Uint8Array([0x10, 0, 1])).persistent, false);
});

Deno.test("writeContent() splits a body into frames of frame_max and decodeContentHeader() reads the header", () => {
  const w = new AmqpWriter();
  const body = new Uint8Array(10_000).map((_, i) => i & 0xff);
  writeContent(w, 3, encodeProperties({ deliveryMode: 1 }), body, 4096);
  const d = new AmqpFrameDecoder(4096);
  d.push(w.toBytes());
  const header = d.next()!;
  assert.equal(header.type, 2);
  assert.equal(header.channel, 3);
  const h = decodeContentHeader(header.payload);
  assert.equal(h.classId, 60);
  assert.equal(h.bodySize, 10_000);
  assert.deepEqual(decodeProperties(h.rawProperties), { deliveryMode: 1 });
  const sizes: number[] = [];
  for (let f = d.next(); f; f = d.next()) sizes.push(f.payload.length);
  assert.deepEqual(sizes, [4088, 4088, 1824]);
});

Deno.test("AmqpFrameDecoder returns frames only when whole, fed a byte at a time or in one chunk", () => {
  const a = encodeMethodFrame(1, 60, 80, { deliveryTag: 1 });
  const b = encodeMethodFrame(2, 20, 40, { replyCode: 200, replyText: "bye" });
  const hb = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0xce]);
  const all = new Uint8Array([...a, ...hb, ...b]);
  // one byte at a time: each frame appears on its last byte, never before
  const d = new AmqpFrameDecoder(4096);
  const seen: Array<[number, number]> = [];
  for (let i = 0; i < all.length; i++) {
    d.push(all.subarray(i, i + 1));
    for (let f = d.next(); f; f = d.next()) seen.push([i, f.type]);
  }
  assert.deepEqual(seen, [[a.length - 1, 1], [a.length + 7, 8], [all.length - 1, 1]]);
  // everything in one chunk
  const d2 = new AmqpFrameDecoder(4096);
  d2.push(all);
  assert.deepEqual([d2.next()?.channel, d2.next()?.type, d2.next()?.channel, d2.next()], [
    1,
    8,
    2,
    undefined,
  ]);
});

Deno.test("AmqpFrameDecoder refuses a wrong frame-end octet, a frame over frame_max and an unknown type (501)", () => {
  const bad = encodeMethodFrame(1, 60, 80, { deliveryTag: 1 });
  bad[bad.length - 1] = 0x00;
  const d = new AmqpFrameDecoder(4096);
  d.push(bad);
  assert.throws(() => d.next(), (e: AmqpError) => e.code === 501 && /frame end/.test(e.message));
  // the size alone is enough to refuse: no buffer is waited for
  const big = new AmqpFrameDecoder(4096);
  big.push(new Uint8Array([3, 0, 1, 0, 0, 0x10, 0]));
  assert.throws(() => big.next(), (e: AmqpError) => e.code === 501 && /frame_max/.test(e.message));
  const type = new AmqpFrameDecoder(4096);
  type.push(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  assert.throws(
    () => type.next(),
    (e: AmqpError) => e.code === 501 && /frame type 65/.test(e.message),
  );
});

Deno.test("parseLogin() reads PLAIN and AMQPLAIN responses", () => {
  const enc = new TextEncoder();
  assert.deepEqual(parseLogin("PLAIN", enc.encode("\u0000alice\u0000s3cret")), {
    user: "alice",
    password: "s3cret",
  });
  assert.equal(parseLogin("PLAIN", enc.encode("alice:s3cret")), undefined);
  const w = new AmqpWriter();
  w.table({ LOGIN: "bob", PASSWORD: "pw" });
  assert.deepEqual(parseLogin("AMQPLAIN", w.toBytes().subarray(4)), {
    user: "bob",
    password: "pw",
  });
  assert.equal(parseLogin("EXTERNAL", new Uint8Array()), undefined);
});

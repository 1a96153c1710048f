import assert from "node:assert/strict";
import {
  AmqpWriter,
  rawProperties,
  writeAckFrame,
  writeContent,
  writeDeliver,
  writeMethodFrame,
} from "../mod/queue/amqp/mod.ts";
import type { Delivery } from "../mod/queue/mod.ts";

/** The general writer's `basic.deliver` + content: what the hand-laid frames must equal. */
function generic(channel: number, d: Delivery, frameMax: number): Uint8Array {
  const w = new AmqpWriter(16);
  writeMethodFrame(w, channel, 60, 60, {
    consumerTag: d.consumerTag,
    deliveryTag: d.deliveryTag,
    redelivered: d.redelivered,
    exchange: d.exchange,
    routingKey: d.routingKey,
  });
  writeContent(w, channel, rawProperties(d.props, d.persistent), d.body, frameMax);
  return w.toBytes();
}

function delivery(over: Partial<Delivery>): Delivery {
  return {
    consumerTag: "amq.ctag-0123456789abcdef",
    deliveryTag: 1,
    queue: "q",
    exchange: "",
    routingKey: "q",
    body: new Uint8Array(100).fill(0x61),
    redelivered: false,
    persistent: false,
    props: {},
    ...over,
  };
}

Deno.test("writeDeliver() writes the same bytes as the general method and content writers", () => {
  const cases: Array<[string, number, Delivery, number]> = [
    ["plain", 1, delivery({}), 131072],
    [
      "persistent, redelivered, high channel and tag",
      2047,
      delivery({
        persistent: true,
        redelivered: true,
        deliveryTag: 2 ** 40 + 7,
      }),
      131072,
    ],
    [
      "props",
      3,
      delivery({
        props: { contentType: "text/plain", headers: { a: 1 }, correlationId: "c-1" },
      }),
      131072,
    ],
    ["empty body", 4, delivery({ body: new Uint8Array(0), exchange: "amq.topic" }), 131072],
    ["body over frame_max", 5, delivery({ body: new Uint8Array(10_000).fill(7) }), 4096],
    ["body exactly one frame", 6, delivery({ body: new Uint8Array(4096 - 8).fill(9) }), 4096],
    ["non-ASCII tag", 7, delivery({ consumerTag: "étiquette" }), 131072],
    ["non-ASCII routing key", 8, delivery({ routingKey: "clé.ü", exchange: "x" }), 131072],
    ["empty consumer tag (get)", 9, delivery({ consumerTag: "" }), 131072],
  ];
  for (const [name, channel, d, frameMax] of cases) {
    // a small writer first holding other output: the frames must grow it and append
    const w = new AmqpWriter(8);
    w.u8(0xee);
    writeDeliver(w, channel, d, frameMax);
    const want = generic(channel, d, frameMax);
    assert.deepEqual(w.toBytes(), new Uint8Array([0xee, ...want]), name);
  }
});

Deno.test("writeDeliver() refuses a consumer tag over 255 bytes as the general writer does", () => {
  const w = new AmqpWriter();
  assert.throws(() => writeDeliver(w, 1, delivery({ consumerTag: "t".repeat(256) }), 131072), {
    name: "AmqpError",
  });
});

Deno.test("writeAckFrame() writes basic.ack / basic.nack as the general writer does", () => {
  for (const [methodId, tag, bits] of [[80, 1, 0], [80, 2 ** 33 + 5, 1], [120, 99, 3]]) {
    const w = new AmqpWriter(4);
    writeAckFrame(w, 300, methodId, tag, bits);
    const g = new AmqpWriter();
    writeMethodFrame(
      g,
      300,
      60,
      methodId,
      methodId === 80
        ? { deliveryTag: tag, multiple: (bits & 1) !== 0 }
        : { deliveryTag: tag, multiple: (bits & 1) !== 0, requeue: (bits & 2) !== 0 },
    );
    assert.deepEqual(w.toBytes(), g.toBytes(), `method ${methodId} tag ${tag}`);
  }
});

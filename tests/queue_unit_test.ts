import assert from "node:assert/strict";
import {
  type ConnectionSink,
  type Delivery,
  LocalChannel,
  QueueEngine,
  type QueueMessage,
  topicMatches,
} from "../mod/queue/mod.ts";
import { ProtocolError } from "../mod/wire/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function sink(out: Delivery[] = []): ConnectionSink {
  return {
    deliver: (d) => (out.push(d), true),
    returned: () => {},
    confirmed: () => {},
    confirmFailed: () => {},
    cancelled: () => {},
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert(err instanceof ProtocolError);
    return String(err.code);
  }
  return "no error";
}

Deno.test("topicMatches() follows AMQP topic rules for * and #", () => {
  const cases: Array<[string, string, boolean]> = [
    ["stock.*.ibm", "stock.nyse.ibm", true],
    ["stock.*.ibm", "stock.ibm", false],
    ["stock.#", "stock", true],
    ["stock.#", "stock.a.b.c", true],
    ["#", "", true],
    ["#", "a.b", true],
    ["#.error", "error", true],
    ["#.error", "a.b.error", true],
    ["#.error", "a.error.b", false],
    ["a.#.z", "a.z", true],
    ["a.#.z", "a.b.c.z", true],
    ["a.#.#.z", "a.b.z", true],
    ["*", "a", true],
    ["*", "a.b", false],
    ["a.b", "a.b", true],
    ["a.b", "a.bc", false],
  ];
  for (const [pattern, key, want] of cases) {
    assert.equal(topicMatches(pattern, key), want, `${pattern} vs ${key}`);
  }
});

Deno.test("QueueEngine exclusive queues are locked to their connection and deleted with it", () => {
  const engine = new QueueEngine();
  try {
    const a = engine.connect("a", sink());
    const b = engine.connect("b", sink());
    const { name } = engine.declareQueue(a, "", { exclusive: true, durable: false });
    assert.match(name, /^amq\.gen-/);
    assert.equal(code(() => engine.consume(b, name)), "resource_locked");
    assert.equal(code(() => engine.declareQueue(b, name, { exclusive: true })), "resource_locked");
    engine.disconnect(a);
    assert.equal(engine.queues().length, 0);
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine auto-delete queue goes with its last consumer; reserved names are refused", () => {
  const engine = new QueueEngine();
  try {
    const a = engine.connect("a", sink());
    engine.declareQueue(a, "tmp", { autoDelete: true, durable: false });
    const t1 = engine.consume(a, "tmp");
    const t2 = engine.consume(a, "tmp");
    engine.cancel(a, t1);
    assert.equal(engine.queues().length, 1);
    engine.cancel(a, t2);
    assert.equal(engine.queues().length, 0);
    assert.equal(code(() => engine.declareQueue(a, "amq.mine")), "access_refused");
    assert.equal(code(() => engine.declareExchange("amq.x", "direct")), "access_refused");
    assert.equal(code(() => engine.declareExchange("x", "x-delayed")), "command_invalid");
    assert.equal(code(() => engine.cancel(a, "nope")), "not_found");
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine keeps durable declarations and persistent messages across a reopen, not transient ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/q.db`;
    let engine = new QueueEngine({ path });
    const c = engine.connect("c", sink());
    engine.declareExchange("ex", "topic");
    engine.declareQueue(c, "keep", { durable: true });
    engine.declareQueue(c, "gone", { durable: false });
    engine.bindQueue(c, "keep", "ex", "a.#");
    engine.publish(c, "ex", "a.b", encoder.encode("persistent"), { persistent: true });
    engine.publish(c, "ex", "a.c", encoder.encode("transient"));
    engine.publish(c, "", "gone", encoder.encode("x"), { persistent: true });
    await engine.committed();
    engine.close();
    engine = new QueueEngine({ path });
    try {
      assert.deepEqual(engine.queues().map((q) => [q.name, q.messages]), [["keep", 1]]);
      const d = engine.connect("d", sink());
      engine.publish(d, "ex", "a.z", encoder.encode("routed after restart"), { persistent: true });
      const first = engine.get(d, "keep", { noAck: true });
      assert.equal(decoder.decode(first!.body), "persistent");
      assert.equal(first!.routingKey, "a.b");
      assert.equal(
        decoder.decode(engine.get(d, "keep", { noAck: true })!.body),
        "routed after restart",
      );
      assert.equal(engine.get(d, "keep"), null);
    } finally {
      engine.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalChannel runs the channel API in-process; a closed channel's unacked go back redelivered", async () => {
  const engine = new QueueEngine();
  try {
    const a = new LocalChannel(engine, "a");
    await a.assertExchange("fan", "fanout", { durable: false });
    const { queue } = await a.assertQueue("work", { durable: false });
    await a.bindQueue(queue, "fan");
    const got: QueueMessage[] = [];
    await a.consume(queue, (m) => got.push(m));
    a.publish("fan", "", "one");
    a.publish("fan", "", "two");
    await Promise.resolve();
    assert.deepEqual(got.map((m) => decoder.decode(m.body)), ["one", "two"]);
    a.ack(got[0]);
    await a.close();
    const b = new LocalChannel(engine, "b");
    const again: QueueMessage[] = [];
    await b.consume(queue, (m) => again.push(m));
    await Promise.resolve();
    assert.deepEqual(again.map((m) => [decoder.decode(m.body), m.redelivered]), [["two", true]]);
    await b.close();
  } finally {
    engine.close();
  }
});

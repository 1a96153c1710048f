/**
 * The engine features the AMQP surface needs: message TTL (per queue and per message),
 * dead-lettering, queue expiry, headers exchanges, per-channel (shared) prefetch,
 * exclusive consumers, exclusive queues shared by an owner, internal exchanges.
 */
import assert from "node:assert/strict";
import { type ConnectionSink, type Delivery, QueueEngine } from "../mod/queue/mod.ts";
import { ProtocolError } from "../mod/wire/mod.ts";
import { waitUntil } from "./harness/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function sink(out: Delivery[] = [], cancelled: string[] = []): ConnectionSink {
  return {
    deliver: (d) => (out.push(d), true),
    returned: () => {},
    confirmed: () => {},
    confirmFailed: () => {},
    cancelled: (t) => cancelled.push(t),
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

function drain(engine: QueueEngine, conn: ReturnType<QueueEngine["connect"]>, q: string): string[] {
  const out: string[] = [];
  for (let d = engine.get(conn, q, { noAck: true }); d; d = engine.get(conn, q, { noAck: true })) {
    out.push(dec.decode(d.body));
  }
  return out;
}

Deno.test("QueueEngine expires messages after the queue's TTL or their own, at the head, into the dead-letter exchange", () => {
  let now = 1_000;
  const engine = new QueueEngine({ now: () => now });
  try {
    const c = engine.connect("t", sink());
    engine.declareExchange("dlx", "direct", { durable: false });
    engine.declareQueue(c, "dead", { durable: false });
    engine.bindQueue(c, "dead", "dlx", "late");
    engine.declareQueue(c, "work", {
      durable: false,
      messageTtl: 100,
      deadLetterExchange: "dlx",
      deadLetterRoutingKey: "late",
    });
    engine.publish(c, "", "work", enc.encode("a"));
    now += 50;
    engine.publish(c, "", "work", enc.encode("b"));
    engine.publish(c, "", "work", enc.encode("c"), { expiration: 10 });
    now += 60; // a: 110 ms old, expired; b: 60 ms; c: its own 10 ms passed, but not at the head
    assert.equal(engine.queueInfo(c, "work").messages, 2);
    assert.deepEqual(drain(engine, c, "dead"), ["a"]);
    // c's own expiry is checked when it reaches the head
    assert.deepEqual(drain(engine, c, "work"), ["b"]);
    assert.deepEqual(drain(engine, c, "dead"), ["c"]);
    assert.equal(engine.stats.expired, 2);
    assert.equal(engine.stats.deadLettered, 2);
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine dead-letters rejected and max-length-dropped messages with their own key; without a DLX they are dropped", () => {
  const engine = new QueueEngine();
  try {
    const got: Delivery[] = [];
    const c = engine.connect("t", sink(got));
    engine.declareQueue(c, "retry", { durable: false });
    engine.declareQueue(c, "jobs", {
      durable: false,
      maxLength: 2,
      deadLetterExchange: "",
      deadLetterRoutingKey: "retry",
    });
    engine.declareQueue(c, "plain", { durable: false });
    for (const s of ["1", "2", "3"]) engine.publish(c, "", "jobs", enc.encode(s));
    assert.deepEqual(drain(engine, c, "retry"), ["1"], "the dropped head went to the DLX");
    engine.consume(c, "jobs", { tag: "w" });
    assert.equal(got.length, 2);
    engine.nack(c, got[0].deliveryTag, { requeue: false });
    engine.nack(c, got[1].deliveryTag, { requeue: true });
    assert.deepEqual(drain(engine, c, "retry"), ["2"]);
    engine.publish(c, "", "plain", enc.encode("x"));
    const p = engine.get(c, "plain")!;
    engine.nack(c, p.deliveryTag, { requeue: false });
    assert.equal(engine.queueInfo(c, "plain").messages, 0);
    // a dead-letter exchange that does not exist drops the message, as RabbitMQ does
    engine.declareQueue(c, "lost", { durable: false, deadLetterExchange: "nope" });
    engine.publish(c, "", "lost", enc.encode("y"));
    const l = engine.get(c, "lost")!;
    engine.nack(c, l.deliveryTag, { requeue: false });
    assert.equal(
      code(() => engine.declareQueue(c, "jobs", { durable: false, maxLength: 2 })),
      "precondition_failed",
    );
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine deletes a queue unused for its expires time; a consumer keeps it", async () => {
  const events: string[] = [];
  const engine = new QueueEngine({ onEvent: (ev, f) => events.push(`${ev}:${f.queue}`) });
  try {
    const c = engine.connect("t", sink());
    engine.declareQueue(c, "idle", { durable: false, expires: 30 });
    engine.declareQueue(c, "busy", { durable: false, expires: 30 });
    const tag = engine.consume(c, "busy");
    await waitUntil(() => events.includes("q.expired:idle"), { what: "idle queue expired" });
    assert.deepEqual(engine.queues().map((q) => q.name), ["busy"]);
    engine.cancel(c, tag);
    await waitUntil(() => engine.queues().length === 0, {
      what: "busy queue expired after its consumer",
    });
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine keeps queue TTL and dead-letter settings and message expiry across a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-amqp-engine-" });
  try {
    let now = 10_000;
    const path = `${dir}/q.db`;
    const a = new QueueEngine({ path, now: () => now });
    const c = a.connect("t", sink());
    a.declareQueue(c, "dlq", {});
    a.declareQueue(c, "ttl", {
      messageTtl: 500,
      deadLetterExchange: "",
      deadLetterRoutingKey: "dlq",
    });
    a.publish(c, "", "ttl", enc.encode("keep"), {
      persistent: true,
      props: { bin: new Uint8Array([1, 2]) },
    });
    await a.committed();
    a.close();
    now += 1_000;
    const b = new QueueEngine({ path, now: () => now });
    try {
      const c2 = b.connect("t", sink());
      assert.equal(code(() => b.declareQueue(c2, "ttl", {})), "precondition_failed");
      b.declareQueue(c2, "ttl", {
        messageTtl: 500,
        deadLetterExchange: "",
        deadLetterRoutingKey: "dlq",
      });
      assert.equal(b.queueInfo(c2, "ttl").messages, 0, "expired while the server was down");
      const d = b.get(c2, "dlq", { noAck: true })!;
      assert.equal(dec.decode(d.body), "keep");
      assert.deepEqual(d.props.bin, new Uint8Array([1, 2]), "byte props survive the store");
    } finally {
      b.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("QueueEngine routes a headers exchange by x-match all or any", () => {
  const engine = new QueueEngine();
  try {
    const c = engine.connect("t", sink());
    engine.declareExchange("h", "headers", { durable: false });
    engine.declareQueue(c, "all", { durable: false });
    engine.declareQueue(c, "any", { durable: false });
    engine.bindQueue(c, "all", "h", JSON.stringify({ "x-match": "all", a: 1, b: "x" }));
    engine.bindQueue(c, "any", "h", JSON.stringify({ "x-match": "any", a: 1, c: true }));
    const send = (headers: Record<string, unknown>) =>
      engine.publish(c, "h", "", enc.encode(JSON.stringify(headers)), { props: { headers } });
    assert.equal(send({ a: 1, b: "x" }), 2);
    assert.equal(send({ b: "x" }), 0);
    assert.equal(send({ c: true }), 1);
    assert.equal(send({ a: 2, b: "x", c: false }), 0);
    engine.unbindQueue(c, "any", "h", JSON.stringify({ c: true, a: 1, "x-match": "any" }));
    assert.equal(send({ c: true }), 0, "unbind matches the arguments in any key order");
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine: shared prefetch limits a connection's consumers together; an exclusive consumer is alone", () => {
  const engine = new QueueEngine();
  try {
    const got: Delivery[] = [];
    const c = engine.connect("t", sink(got));
    for (const q of ["q1", "q2"]) {
      engine.declareQueue(c, q, { durable: false });
      for (let i = 0; i < 5; i++) engine.publish(c, "", q, enc.encode(q));
    }
    engine.qos(c, 3, { shared: true });
    engine.consume(c, "q1");
    engine.consume(c, "q2");
    assert.equal(got.length, 3);
    engine.ack(c, got[0].deliveryTag);
    assert.equal(got.length, 4);
    const o = engine.connect("o", sink());
    engine.declareQueue(o, "solo", { durable: false });
    engine.consume(o, "solo", { exclusive: true });
    assert.equal(code(() => engine.consume(c, "solo")), "access_refused");
    assert.equal(code(() => engine.consume(o, "q1", { exclusive: true })), "access_refused");
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine: connections with one owner share exclusive queues, deleted when the owner is released; internal exchanges refuse publishes", () => {
  const engine = new QueueEngine();
  try {
    const owner = {};
    const ch1 = engine.connect("c#1", sink(), { owner });
    const ch2 = engine.connect("c#2", sink(), { owner });
    const other = engine.connect("x", sink());
    engine.declareQueue(ch1, "mine", { exclusive: true, durable: false });
    engine.publish(ch2, "", "mine", enc.encode("ok"));
    assert.equal(engine.get(ch2, "mine", { noAck: true }) !== null, true);
    assert.equal(code(() => engine.get(other, "mine")), "resource_locked");
    engine.disconnect(ch1);
    assert.equal(engine.queues().length, 1, "one channel closing keeps it");
    engine.releaseOwner(owner);
    assert.equal(engine.queues().length, 0);
    engine.declareExchange("inner", "fanout", { durable: false, internal: true });
    assert.equal(code(() => engine.assertPublishable("inner")), "access_refused");
    assert.equal(code(() => engine.assertPublishable("absent")), "not_found");
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine writes x-death as RabbitMQ does: one entry per queue and reason, counted, most recent first", () => {
  let now = 1_700_000_000_000;
  const engine = new QueueEngine({ now: () => now });
  try {
    const c = engine.connect("c", sink());
    engine.declareExchange("dlx", "fanout", { durable: false });
    // work → (reject) → retry; retry's TTL sends it back to work; rejected again; then dead
    engine.declareQueue(c, "work", { durable: false, deadLetterExchange: "dlx" });
    engine.declareQueue(c, "retry", {
      durable: false,
      messageTtl: 10,
      deadLetterExchange: "",
      deadLetterRoutingKey: "work",
    });
    engine.bindQueue(c, "retry", "dlx", "");
    engine.publish(c, "", "work", enc.encode("job"), {
      props: { headers: { app: "x" }, expiration: "60000" },
      expiration: 60_000,
    });
    const first = engine.get(c, "work")!;
    engine.nack(c, first.deliveryTag, { requeue: false });
    now += 20;
    assert.equal(engine.get(c, "retry"), null); // expired at the head, back to work
    const second = engine.get(c, "work")!;
    const h = second.props.headers as Record<string, unknown>;
    const deaths = h["x-death"] as Array<Record<string, unknown>>;
    assert.deepEqual(deaths.map((d) => [d.queue, d.reason, d.count]), [
      ["retry", "expired", 1],
      ["work", "rejected", 1],
    ]);
    assert.deepEqual(deaths[1]["routing-keys"], ["work"]);
    assert.equal(deaths[1].exchange, "");
    assert.equal(deaths[1]["original-expiration"], "60000");
    assert.equal(second.props.expiration, undefined);
    assert.equal(h.app, "x");
    assert.equal(h["x-first-death-queue"], "work");
    assert.equal(h["x-first-death-reason"], "rejected");
    assert.equal(h["x-last-death-queue"], "retry");
    assert.ok(deaths[0].time instanceof Date);
    assert.equal((deaths[0].time as Date).getTime(), now);
    engine.nack(c, second.deliveryTag, { requeue: false });
    now += 20;
    engine.get(c, "retry");
    const third = engine.get(c, "work")!;
    const again = (third.props.headers as Record<string, unknown>)["x-death"] as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(again.map((d) => [d.queue, d.reason, d.count]), [
      ["retry", "expired", 2],
      ["work", "rejected", 2],
    ]);
    // max length drops the oldest: reason maxlen
    engine.declareQueue(c, "short", { durable: false, maxLength: 1, deadLetterExchange: "dlx" });
    engine.publish(c, "", "short", enc.encode("a"));
    engine.publish(c, "", "short", enc.encode("b"));
    const dropped = engine.get(c, "retry")!;
    assert.equal(dec.decode(dropped.body), "a");
    const d0 = ((dropped.props.headers as Record<string, unknown>)["x-death"] as Array<
      Record<string, unknown>
    >)[0];
    assert.deepEqual([d0.queue, d0.reason, d0.count], ["short", "maxlen", 1]);
  } finally {
    engine.close();
  }
});

Deno.test("QueueEngine enters memory pressure at maxMemory and leaves it below 80 %; sinks hear both", () => {
  const engine = new QueueEngine({ maxMemory: 1000 });
  try {
    const heard: boolean[] = [];
    const c = engine.connect("c", { ...sink(), memoryPressure: (b) => heard.push(b) });
    engine.declareQueue(c, "q", { durable: false });
    const body = new Uint8Array(300);
    for (let i = 0; i < 3; i++) engine.publish(c, "", "q", body);
    assert.equal(engine.heldBytes, 900);
    assert.equal(engine.memoryBlocked, false);
    engine.publish(c, "", "q", body);
    assert.equal(engine.memoryBlocked, true);
    assert.equal(code(() => engine.assertMemory()), "overloaded");
    const d = engine.get(c, "q")!; // unacked still counts
    assert.equal(engine.heldBytes, 1200);
    engine.ack(c, d.deliveryTag);
    assert.equal(engine.heldBytes, 900);
    assert.equal(engine.memoryBlocked, true); // 900 ≥ 800
    engine.get(c, "q", { noAck: true });
    assert.equal(engine.heldBytes, 600);
    assert.equal(engine.memoryBlocked, false);
    engine.assertMemory();
    assert.deepEqual(heard, [true, false]);
    engine.purgeQueue(c, "q");
    assert.equal(engine.heldBytes, 0);
  } finally {
    engine.close();
  }
});

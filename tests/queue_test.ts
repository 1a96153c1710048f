import assert from "node:assert/strict";
import { LocalCluster, peerdCommand, runPeerd, waitUntil } from "./harness/mod.ts";
import { QueueClient, type QueueMessage, type ReturnedMessage } from "../mod/queue/mod.ts";
import { RemoteError } from "../mod/wire/mod.ts";

const decoder = new TextDecoder();
const text = (m: QueueMessage | false) => m ? decoder.decode(m.body) : "(empty)";

function queueNode() {
  return LocalCluster.start({ nodes: [{ name: "q1", role: "queue" }] });
}

async function drain(ch: QueueClient, queue: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 100; i++) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) return out;
    out.push(text(m));
  }
  throw new Error(`queue ${queue} did not drain`);
}

Deno.test("queue routes by direct, fanout and topic exchanges and the default exchange; mandatory returns", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  await using ch = await QueueClient.connect(q1.address);
  await ch.assertExchange("colors", "direct", { durable: false });
  await ch.assertExchange("all", "fanout", { durable: false });
  await ch.assertExchange("market", "topic", { durable: false });
  for (const q of ["qa", "qb", "qc"]) await ch.assertQueue(q, { durable: false });
  await ch.bindQueue("qa", "colors", "red");
  await ch.bindQueue("qb", "colors", "blue");
  await ch.bindQueue("qa", "all");
  await ch.bindQueue("qb", "all");
  await ch.bindQueue("qa", "market", "stock.*.ibm");
  await ch.bindQueue("qb", "market", "stock.#");
  await ch.bindQueue("qc", "market", "#.error");
  const returned: ReturnedMessage[] = [];
  ch.onReturn = (r) => returned.push(r);
  ch.publish("colors", "red", "d-red");
  ch.publish("colors", "blue", "d-blue");
  ch.publish("colors", "green", "d-green", { mandatory: true });
  ch.publish("all", "ignored", "f-1");
  ch.publish("market", "stock.nyse.ibm", "t-ibm");
  ch.publish("market", "stock", "t-stock");
  ch.publish("market", "app.db.error", "t-error");
  ch.publish("market", "stock.nyse.ibm.x", "t-deep");
  ch.publish("", "qc", "default-qc");
  ch.publish("", "nosuch", "lost", { mandatory: true });
  await ch.sync();
  assert.deepEqual(await drain(ch, "qa"), ["d-red", "f-1", "t-ibm"]);
  assert.deepEqual(await drain(ch, "qb"), ["d-blue", "f-1", "t-ibm", "t-stock", "t-deep"]);
  assert.deepEqual(await drain(ch, "qc"), ["t-error", "default-qc"]);
  assert.deepEqual(
    returned.map((r) => [r.exchange, r.routingKey, decoder.decode(r.body), r.reason]),
    [["colors", "green", "d-green", "NO_ROUTE"], ["", "nosuch", "lost", "NO_ROUTE"]],
  );
  const declared = q1.events().filter((e) => e.ev === "q.declared").map((e) => e.queue);
  assert.deepEqual(declared, ["qa", "qb", "qc"]);
});

Deno.test("queue honours prefetch, redelivers a nack with requeue, and drops a nack without", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  await using pub = await QueueClient.connect(q1.address);
  await using sub = await QueueClient.connect(q1.address);
  await pub.assertQueue("work", { durable: false });
  for (let i = 0; i < 10; i++) pub.sendToQueue("work", `m${i}`);
  await pub.sync();
  const got: QueueMessage[] = [];
  await sub.prefetch(3);
  await sub.consume("work", (m) => got.push(m));
  await sub.sync(); // every delivery the server would make precedes this reply
  assert.deepEqual(got.map(text), ["m0", "m1", "m2"]);
  assert.equal((await pub.checkQueue("work")).messageCount, 7);
  sub.ack(got[0]);
  await sub.sync();
  assert.deepEqual(got.map(text), ["m0", "m1", "m2", "m3"]);
  sub.nack(got[1], false, true); // back to the queue, first in line
  await sub.sync();
  assert.equal(got.length, 5);
  assert.equal(text(got[4]), "m1");
  assert.equal(got[4].redelivered, true);
  assert.equal(got[1].redelivered, false);
  sub.nack(got[2], false, false); // dropped
  await sub.sync();
  assert.equal(text(got[5]), "m4");
  sub.ack(got[5].deliveryTag, true); // multiple: everything up to m4
  await sub.sync();
  assert.deepEqual(got.slice(6).map(text), ["m5", "m6", "m7"]);
  const status = await q1.ctl("status");
  assert.equal(status.redelivered, 1);
  assert.ok(q1.events().some((e) => e.ev === "msg.redelivered" && e.reason === "nack"));
});

Deno.test("messages held unacked by a killed consumer process are redelivered to another consumer", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  await using ch = await QueueClient.connect(q1.address);
  await ch.assertQueue("jobs");
  for (let i = 0; i < 8; i++) ch.sendToQueue("jobs", `job${i}`, { persistent: true });
  await ch.sync();
  const consumer = peerdCommand(
    ["queue-ctl", "--queue", q1.address, "consume", "jobs", "--hold", "--prefetch", "5"],
    { stdin: "null", stdout: "piped", stderr: "null" },
  ).spawn();
  const lines: string[] = [];
  const reader = consumer.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let buf = "";
    for (let i = 0; i < 100 && lines.length < 5; i++) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      lines.push(...parts.filter((l) => l));
    }
  } finally {
    consumer.kill("SIGKILL");
    await consumer.status;
    await reader.cancel().catch(() => {});
  }
  assert.deepEqual(lines.map((l) => JSON.parse(l).body), ["job0", "job1", "job2", "job3", "job4"]);
  const event = await q1.waitForEvent("msg.redelivered", { timeoutMs: 10_000 });
  assert.equal(event.queue, "jobs");
  assert.equal(event.count, 5);
  assert.equal(event.reason, "disconnect");
  const got: QueueMessage[] = [];
  await ch.consume("jobs", (m) => {
    got.push(m);
    ch.ack(m);
  });
  await waitUntil(() => got.length === 8, { what: "8 deliveries" });
  assert.deepEqual(got.map(text), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `job${i}`));
  assert.deepEqual(got.map((m) => m.redelivered), [
    true,
    true,
    true,
    true,
    true,
    false,
    false,
    false,
  ]);
});

Deno.test("10,000 confirmed persistent messages survive kill -9 of the queue server, none lost or duplicated", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  const total = 10_000;
  {
    await using ch = await QueueClient.connect(q1.address);
    await ch.assertQueue("durable-jobs", { durable: true });
    await ch.confirmSelect();
    const confirms: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      confirms.push(ch.publishConfirmed("", "durable-jobs", String(i), { persistent: true }));
      if (i % 1000 === 999) await Promise.all(confirms.splice(0));
    }
    await Promise.all(confirms);
    // ack the first 2,000; sync waits for the commit of those acks
    const got: QueueMessage[] = [];
    await ch.prefetch(2_000);
    const { consumerTag } = await ch.consume("durable-jobs", (m) => got.push(m));
    await waitUntil(() => got.length === 2_000, { what: "2,000 deliveries" });
    await ch.cancel(consumerTag);
    ch.ack(got[got.length - 1], true);
    await ch.sync();
    assert.deepEqual(got.map(text), Array.from({ length: 2_000 }, (_, i) => String(i)));
  }
  await q1.kill("SIGKILL");
  await q1.start();
  await using ch = await QueueClient.connect(q1.address);
  assert.equal((await ch.checkQueue("durable-jobs")).messageCount, total - 2_000);
  const seen: string[] = [];
  await ch.prefetch(1_000);
  await ch.consume("durable-jobs", (m) => {
    seen.push(text(m));
    ch.ack(m);
  });
  await waitUntil(() => seen.length >= total - 2_000, { what: "8,000 recovered deliveries" });
  await ch.sync();
  assert.equal(seen.length, total - 2_000);
  assert.deepEqual(seen, Array.from({ length: total - 2_000 }, (_, i) => String(i + 2_000)));
});

Deno.test("queue bad input: redeclare, missing exchange, unknown delivery tag, bad fields, garbage bytes", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  await using ch = await QueueClient.connect(q1.address);
  await ch.assertQueue("orders", { durable: true, maxLength: 10 });
  const redeclare = await ch.assertQueue("orders", { durable: false }).catch((e) => e);
  assert(redeclare instanceof RemoteError);
  assert.equal(redeclare.code, "precondition_failed");
  assert.match(redeclare.message, /durable is true, asked false/);
  await ch.assertExchange("ex1", "fanout");
  const exRedeclare = await ch.assertExchange("ex1", "topic").catch((e) => e);
  assert.equal((exRedeclare as RemoteError).code, "precondition_failed");
  const bind = await ch.bindQueue("orders", "nosuch").catch((e) => e);
  assert(bind instanceof RemoteError);
  assert.equal(bind.code, "not_found");
  assert.match(bind.message, /exchange "nosuch"/);
  const errors: RemoteError[] = [];
  ch.onError = (e) => errors.push(e);
  ch.ack(12345);
  ch.nack(777);
  await ch.sync();
  assert.deepEqual(errors.map((e) => e.code), ["unknown_delivery_tag", "unknown_delivery_tag"]);
  assert.match(errors[0].message, /delivery tag 12345/);
  const badPublish = await ch.request({ t: "q.publish", ex: "", key: 5, body: "x" }).catch((e) =>
    e
  );
  assert.equal((badPublish as RemoteError).code, "bad_field");
  const badQueue = await ch.assertQueue("bad name!").catch((e) => e);
  assert.equal((badQueue as RemoteError).code, "access_refused");
  // garbage on another connection: an error frame, then the close; this one keeps working
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: q1.port });
  try {
    await raw.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    const buf = new Uint8Array(4096);
    let total = 0;
    for (let i = 0; i < 50; i++) {
      const n = await raw.read(buf);
      if (n === null) break;
      total += n;
    }
    assert(total > 0, "expected an error frame before the close");
  } finally {
    raw.close();
  }
  // max length: the oldest is dropped
  for (let i = 0; i < 12; i++) ch.sendToQueue("orders", `o${i}`);
  await ch.sync();
  assert.equal((await ch.checkQueue("orders")).messageCount, 10);
  assert.equal(text(await ch.get("orders", { noAck: true })), "o2");
  assert.equal((await q1.ctl("status")).queues, 1);
});

Deno.test("queue-ctl and ctl declare, publish, list and get; SIGTERM exits 0 and declarations survive", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  const qc = (...args: string[]) => runPeerd(["queue-ctl", "--queue", q1.address, ...args]);
  const declared = await qc("declare", "inbox");
  assert.equal(declared.code, 0, declared.stderr);
  assert.equal(JSON.parse(declared.stdout).queue, "inbox");
  const published = await qc("publish", "-", "inbox", "hello", "world");
  assert.equal(published.code, 0, published.stderr);
  assert.equal(JSON.parse(published.stdout).confirmed, true);
  const viaCtl = await runPeerd(["ctl", q1.address, "publish", "-", "inbox", "second"]);
  assert.equal(viaCtl.code, 0, viaCtl.stderr);
  const listed = await runPeerd(["ctl", q1.address, "queues", "--compact"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    JSON.parse(listed.stdout).queues.map((q: { name: string; messages: number }) => [
      q.name,
      q.messages,
    ]),
    [["inbox", 2]],
  );
  const { code, ms } = await q1.stop();
  assert.equal(code, 0);
  assert(ms < 5000, `took ${ms} ms`);
  await q1.start();
  const got = await qc("get", "inbox");
  assert.equal(got.code, 0, got.stderr);
  assert.equal(JSON.parse(got.stdout).body, "hello world");
  const missing = await qc("get", "nosuch");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not_found: Cannot find queue "nosuch"/);
  const usage = await qc("bind");
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: peerd queue-ctl bind/);
});

Deno.test("kill -9 in the middle of a confirmed publish stream: every confirmed message is back, once", async () => {
  await using cluster = await queueNode();
  const q1 = cluster.node("q1");
  const confirmed = new Set<string>();
  {
    const ch = await QueueClient.connect(q1.address);
    try {
      await ch.assertQueue("stream", { durable: true });
      await ch.confirmSelect();
      const inFlight: Promise<void>[] = [];
      let killed: Promise<number> | undefined;
      for (let i = 0; i < 50_000 && !ch.closed; i++) {
        const body = String(i);
        inFlight.push(
          ch.publishConfirmed("", "stream", body, { persistent: true }).then(
            () => void confirmed.add(body),
            () => {},
          ),
        );
        if (inFlight.length >= 500) await inFlight.shift();
        if (!killed && confirmed.size >= 5_000) killed = q1.kill("SIGKILL");
      }
      await Promise.all(inFlight);
      await killed;
    } finally {
      await ch.close();
    }
  }
  assert.ok(confirmed.size >= 5_000 && confirmed.size < 50_000, `confirmed ${confirmed.size}`);
  await q1.start();
  await using ch = await QueueClient.connect(q1.address);
  const depth = (await ch.checkQueue("stream")).messageCount;
  const seen: string[] = [];
  await ch.consume("stream", (m) => seen.push(text(m)), { noAck: true });
  await waitUntil(() => seen.length >= depth, { what: `${depth} recovered messages` });
  await ch.sync();
  assert.equal(new Set(seen).size, seen.length, "a message came back twice");
  const recovered = new Set(seen);
  const lost = [...confirmed].filter((body) => !recovered.has(body));
  assert.deepEqual(lost, [], `${lost.length} confirmed messages lost`);
});

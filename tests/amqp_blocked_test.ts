/**
 * Memory pressure, seen by unmodified amqplib: `peerd --role queue --max-queue-memory`
 * past its limit sends `connection.blocked` to a publishing connection and stops reading
 * it (its later publishes wait in the socket); a connection that only consumes goes on,
 * its acks free memory, and below 80 % of the limit the publisher gets
 * `connection.unblocked` and every publish it made arrives. The native protocol is told
 * `overloaded` meanwhile.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { freePort, LocalCluster, waitUntil } from "./harness/mod.ts";
import { QueueClient } from "../mod/queue/mod.ts";

const SECRET = "amqp-blocked-secret";
const LIMIT = 64 * 1024;

Deno.test("amqplib: connection.blocked under memory pressure, unblocked once consumers drain", async () => {
  const port = freePort();
  await using cluster = await LocalCluster.start({
    nodes: [{
      name: "q1",
      role: "queue",
      args: ["--amqp", `127.0.0.1:${port}`, "--max-queue-memory", "64k"],
    }],
    secret: SECRET,
  });
  const q1 = cluster.node("q1");
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const publisher = await amqp.connect(url);
  const consumer = await amqp.connect(url);
  try {
    const signals: string[] = [];
    publisher.on("blocked", (reason: string) => signals.push(`blocked: ${reason}`));
    publisher.on("unblocked", () => signals.push("unblocked"));
    const pub = await publisher.createChannel();
    const cons = await consumer.createChannel();
    await cons.assertQueue("mem", { durable: false });
    const body = Buffer.alloc(1024, 7);
    // 80 KiB: past the 64 KiB limit
    for (let i = 0; i < 80; i++) pub.sendToQueue("mem", body, { messageId: `m${i}` });
    await waitUntil(() => signals.length > 0, { what: "amqplib's 'blocked' event" });
    assert.deepEqual(signals, ["blocked: low on memory"]);
    await q1.waitForEvent((e) => e.ev === "memory.blocked" && e.limit === LIMIT);
    // the blocked publisher is not read: what it sends now waits in the socket
    for (let i = 80; i < 200; i++) pub.sendToQueue("mem", body, { messageId: `m${i}` });
    const { messageCount } = await cons.checkQueue("mem");
    assert.ok(messageCount < 200, `${messageCount} of 200 in while blocked`);
    // the native protocol is refused meanwhile, with a reason
    await using native = await QueueClient.connect(q1.address, { secret: SECRET });
    await native.confirmSelect();
    await assert.rejects(
      native.publishConfirmed("", "mem", "native"),
      /overloaded.*max-queue-memory/,
    );
    // a consumer that never published goes on; its acks let the publisher go
    const seen = new Set<string>();
    await cons.prefetch(50);
    await cons.consume("mem", (m) => {
      if (!m) return;
      seen.add(String(m.properties.messageId));
      cons.ack(m);
    });
    await waitUntil(() => seen.size === 200, { what: "all 200 publishes consumed" });
    // the 120 KiB sent while blocked may block it again on the way: blocked and
    // unblocked alternate, and it ends unblocked
    await waitUntil(() => signals.at(-1) === "unblocked", { what: "the last 'unblocked'" });
    assert.ok(signals.length % 2 === 0, signals.join(", "));
    signals.forEach((s, i) =>
      assert.equal(s, i % 2 === 0 ? "blocked: low on memory" : "unblocked")
    );
    assert.ok(q1.events().some((e) => e.ev === "memory.unblocked"));
    await native.publishConfirmed("", "mem", "native");
    await waitUntil(() => seen.size === 201, { what: "the native publish after the pressure" });
  } finally {
    await publisher.close().catch(() => {});
    await consumer.close().catch(() => {});
  }
});

/**
 * Queue heartbeats: a client that announced them and falls silent (partitioned, paused) is
 * closed by the server, and its unacknowledged deliveries go to another consumer; a client
 * whose server stops answering closes the connection itself.
 */
import assert from "node:assert/strict";
import { LocalCluster, waitUntil } from "./harness/mod.ts";
import { QueueClient, QueueFrame } from "../mod/queue/mod.ts";
import { FrameServer, type Message, RpcClient } from "../mod/wire/mod.ts";

Deno.test("queue server closes a silent heartbeat client; its unacked delivery goes to another consumer, redelivered", async () => {
  await using cluster = await LocalCluster.start({ nodes: [{ name: "q1", role: "queue" }] });
  const addr = { hostname: "127.0.0.1", port: cluster.node("q1").port };
  const good = await QueueClient.connect(addr, { heartbeatMs: 100 });
  const silent = await RpcClient.connect(addr, { role: "client", name: "silent" });
  try {
    await good.assertQueue("hb", { durable: false });
    const delivered: Message[] = [];
    silent.onMessage = (m) => {
      if (m.t === QueueFrame.Deliver) delivered.push(m);
    };
    // the silent client announces heartbeats once, takes a delivery, then says nothing more
    await silent.request({ t: QueueFrame.Heartbeat, interval_ms: 100 });
    await silent.request({
      t: QueueFrame.Consume,
      queue: "hb",
      noAck: false,
      prefetch: 1,
      tag: "s",
    });
    await good.publish("", "hb", "m1");
    await waitUntil(() => delivered.length === 1, { what: "the delivery to the silent client" });
    await waitUntil(() => silent.conn.closed, { timeoutMs: 5_000, what: "the server closing it" });
    const got = await new Promise<{ body: string; redelivered: boolean }>((resolve) => {
      good.consume(
        "hb",
        (m) => resolve({ body: new TextDecoder().decode(m.body), redelivered: m.redelivered }),
      );
    });
    assert.deepEqual(got, { body: "m1", redelivered: true });
    // the heartbeating client itself stays connected well past 3 intervals
    assert.equal(good.closed, false);
  } finally {
    await silent.close();
    await good.close();
  }
});

Deno.test("QueueClient with heartbeatMs closes a connection whose server stops answering; onClose fires", async () => {
  let release: () => void = () => {};
  const stalled = new Promise<void>((r) => (release = r));
  let beats = 0;
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "queue", name: "q" },
    handlers: {
      [QueueFrame.Heartbeat]: async () => {
        if (++beats > 2) await stalled; // answers twice, then like a paused server
        return { t: QueueFrame.Ok };
      },
    },
  });
  const client = await QueueClient.connect({ hostname: "127.0.0.1", port: server.port }, {
    heartbeatMs: 100,
  });
  try {
    const closed = new Promise<void>((resolve) => (client.onClose = () => resolve()));
    await closed;
    assert.equal(client.closed, true);
    assert.ok(beats >= 3);
  } finally {
    release();
    await client.close();
    await server.close();
  }
});

Deno.test("QueueClient heartbeats against a server without them: an error reply keeps the connection", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "queue", name: "old" },
    handlers: { [QueueFrame.List]: () => ({ t: QueueFrame.Ok, queues: [], exchanges: [] }) },
  });
  const client = await QueueClient.connect({ hostname: "127.0.0.1", port: server.port }, {
    heartbeatMs: 50,
  });
  try {
    // ten intervals: every heartbeat got `unknown_type`, which is an answer
    for (let i = 0; i < 10; i++) {
      await client.request({ t: QueueFrame.List }).then(() =>
        new Promise((r) => setTimeout(r, 50))
      );
    }
    assert.equal(client.closed, false);
  } finally {
    await client.close();
    await server.close();
  }
});

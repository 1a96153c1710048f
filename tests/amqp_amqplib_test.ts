/**
 * amqplib (npm, unmodified) against `peerd --role queue --amqp`: one queue process per
 * file, every part of the surface in steps, then a kill -9 with persistent confirmed
 * messages and a reconnect.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp, { type Message } from "amqplib";
import { freePort, LocalCluster, waitUntil } from "./harness/mod.ts";
import { QueueClient, type QueueMessage } from "../mod/queue/mod.ts";
import {
  AmqpFrameDecoder,
  decodeMethod,
  encodeMethodFrame,
  PROTOCOL_HEADER,
} from "../mod/queue/amqp/mod.ts";

const SECRET = "amqp-test-secret";
type Conn = Awaited<ReturnType<typeof amqp.connect>>;
type Chan = Awaited<ReturnType<Conn["createChannel"]>>;
type Msg = Message & { fields: { replyCode?: number } };

/** Collects the errors amqplib emits (a closed channel emits one) so none goes unhandled. */
function quiet<T extends { on(ev: string, fn: (e: unknown) => void): unknown }>(
  x: T,
  errors: unknown[] = [],
): T {
  x.on("error", (e) => errors.push(e));
  return x;
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: number };
  }
  throw new Error("expected a rejection");
}

Deno.test("amqplib against peerd's AMQP listener", async (t) => {
  const port = freePort();
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "q1", role: "queue", args: ["--amqp", `127.0.0.1:${port}`], deferred: true }],
    secret: SECRET,
  });
  const peers = JSON.parse(await Deno.readTextFile(cluster.peersPath));
  peers.amqpUsers = { alice: "wonderland" };
  await Deno.writeTextFile(cluster.peersPath, JSON.stringify(peers));
  const q1 = cluster.node("q1");
  await q1.start();
  assert.equal(q1.events().find((e) => e.ev === "ready")?.amqp, `127.0.0.1:${port}`);
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  const conns: Conn[] = [];
  const connect = async (u = url) => {
    const c = quiet(await amqp.connect(u));
    conns.push(c);
    return c;
  };
  const channel = async (c?: Conn) => quiet(await (c ?? await connect()).createChannel());

  try {
    await t.step(
      "logins: guest from loopback, a peers-file user, the cluster secret; others refused",
      async () => {
        await connect();
        await connect(`amqp://alice:wonderland@127.0.0.1:${port}`);
        await connect(`amqp://anyone:${SECRET}@127.0.0.1:${port}`);
        const bad = await rejection(amqp.connect(`amqp://alice:nope@127.0.0.1:${port}`));
        assert.match(bad.message, /403|ACCESS_REFUSED/);
        const vhost = await rejection(amqp.connect(`amqp://guest:guest@127.0.0.1:${port}/other`));
        // amqplib says "Expected ConnectionOpenOk; got <ConnectionClose …>" (as with RabbitMQ)
        assert.match(vhost.message, /ConnectionClose/);
        await q1.waitForEvent((e) => e.ev === "amqp.error" && e.code === 530);
      },
    );

    await t.step(
      "exchanges: direct, fanout, topic, headers, amq.*, the default; passive and delete",
      async () => {
        const ch = await channel();
        await ch.assertExchange("t.direct", "direct", { durable: false });
        await ch.assertExchange("t.fanout", "fanout", { durable: false });
        await ch.assertExchange("t.topic", "topic", { durable: false });
        await ch.assertExchange("t.headers", "headers", { durable: false });
        for (const q of ["ta", "tb", "tc"]) await ch.assertQueue(q, { durable: false });
        await ch.bindQueue("ta", "t.direct", "red");
        await ch.bindQueue("tb", "t.fanout", "");
        await ch.bindQueue("tc", "t.fanout", "");
        await ch.bindQueue("ta", "t.topic", "stock.*.ibm");
        await ch.bindQueue("tb", "t.topic", "stock.#");
        await ch.bindQueue("tc", "t.headers", "", {
          "x-match": "all",
          format: "pdf",
          type: "report",
        });
        await ch.bindQueue("ta", "t.headers", "", {
          "x-match": "any",
          format: "zip",
          urgent: true,
        });
        await ch.bindQueue("tb", "amq.direct", "k");
        await ch.checkExchange("amq.topic");
        await ch.checkExchange("amq.fanout");
        await ch.checkExchange("amq.headers");
        ch.publish("t.direct", "red", Buffer.from("d-red"));
        ch.publish("t.direct", "blue", Buffer.from("d-blue"));
        ch.publish("t.fanout", "x", Buffer.from("f"));
        ch.publish("t.topic", "stock.nyse.ibm", Buffer.from("t-ibm"));
        ch.publish("t.topic", "stock", Buffer.from("t-stock"));
        ch.publish("t.headers", "", Buffer.from("h-pdf"), {
          headers: { format: "pdf", type: "report" },
        });
        ch.publish("t.headers", "", Buffer.from("h-half"), { headers: { format: "pdf" } });
        ch.publish("t.headers", "", Buffer.from("h-urgent"), { headers: { urgent: true } });
        ch.publish("amq.direct", "k", Buffer.from("amq"));
        ch.sendToQueue("tc", Buffer.from("default"));
        const drain = async (q: string) => {
          const out: string[] = [];
          for (let m = await ch.get(q, { noAck: true }); m; m = await ch.get(q, { noAck: true })) {
            out.push(m.content.toString());
          }
          return out;
        };
        assert.deepEqual(await drain("ta"), ["d-red", "t-ibm", "h-urgent"]);
        assert.deepEqual(await drain("tb"), ["f", "t-ibm", "t-stock", "amq"]);
        assert.deepEqual(await drain("tc"), ["f", "h-pdf", "default"]);
        await ch.deleteExchange("t.direct");
        const errors: unknown[] = [];
        const ch2 = quiet(await (await connect()).createChannel(), errors);
        const missing = await rejection(ch2.checkExchange("t.direct"));
        assert.match(missing.message, /404/);
        const ch3 = await channel();
        const del = await rejection(ch3.deleteExchange("t.fanout", { ifUnused: true }));
        assert.match(del.message, /406.*in use/);
        // an unknown exchange type is a connection exception (503), as in RabbitMQ
        const connErrors: unknown[] = [];
        const c5 = quiet(await amqp.connect(url), connErrors);
        const closed = new Promise((r) => c5.on("close", r));
        const ch5 = quiet(await c5.createChannel());
        await rejection(ch5.assertExchange("t.x", "x-delayed-message"));
        await closed;
        assert.match(
          String(connErrors[0]),
          /503 .*COMMAND_INVALID.*unknown type "x-delayed-message"/,
        );
      },
    );

    await t.step(
      "queues: server-named, passive, exclusive, auto-delete, x-max-length, purge, delete if-unused/if-empty",
      async () => {
        const c = await connect();
        const ch = await channel(c);
        const named = await ch.assertQueue("", { exclusive: true });
        assert.match(named.queue, /^amq\.gen-/);
        assert.equal((await ch.checkQueue(named.queue)).messageCount, 0);
        const other = await channel();
        const locked = await rejection(other.checkQueue(named.queue));
        assert.match(locked.message, /405|RESOURCE_LOCKED/);
        const ch2 = await channel();
        const notFound = await rejection(ch2.checkQueue("no-such-queue"));
        assert.match(notFound.message, /404/);
        // auto-delete goes with its last consumer
        const ch3 = await channel();
        await ch3.assertQueue("auto", { autoDelete: true, durable: false });
        const { consumerTag } = await ch3.consume("auto", () => {}, { noAck: true });
        await ch3.cancel(consumerTag);
        const gone = await rejection(ch3.checkQueue("auto"));
        assert.match(gone.message, /404/);
        // drop-head beyond x-max-length
        const ch4 = await channel();
        await ch4.assertQueue("capped", { durable: false, arguments: { "x-max-length": 2 } });
        for (const s of ["a", "b", "c"]) ch4.sendToQueue("capped", Buffer.from(s));
        const m1 = await ch4.get("capped", { noAck: true }) as Msg;
        assert.equal(m1.content.toString(), "b");
        assert.equal(m1.fields.messageCount, 1);
        assert.equal((await ch4.purgeQueue("capped")).messageCount, 1);
        assert.equal(await ch4.get("capped"), false);
        ch4.sendToQueue("capped", Buffer.from("x"));
        const notEmpty = await rejection(ch4.deleteQueue("capped", { ifEmpty: true }));
        assert.match(notEmpty.message, /406.*not empty/);
        const ch5 = await channel();
        assert.equal((await ch5.deleteQueue("capped")).messageCount, 1);
        const connErrors: unknown[] = [];
        const c6 = quiet(await amqp.connect(url), connErrors);
        const closed = new Promise((r) => c6.on("close", r));
        const ch7 = quiet(await c6.createChannel());
        await rejection(ch7.assertQueue("prio", { arguments: { "x-max-priority": 10 } }));
        await closed;
        assert.match(
          String(connErrors[0]),
          /540 .*NOT_IMPLEMENTED - queue argument 'x-max-priority'/,
        );
        // redeclaring with other properties is 406
        const ch6 = await channel();
        await ch6.assertQueue("durable-q", { durable: true });
        const ineq = await rejection(ch6.assertQueue("durable-q", { durable: false }));
        assert.match(ineq.message, /406/);
      },
    );

    await t.step(
      "basic: prefetch, acks and nacks (multiple, requeue), redelivered, reject, recover, get",
      async () => {
        const ch = await channel();
        await ch.assertQueue("work", { durable: false });
        for (let i = 0; i < 10; i++) ch.sendToQueue("work", Buffer.from(`m${i}`));
        await ch.prefetch(3);
        const got: Msg[] = [];
        await ch.consume("work", (m) => m && got.push(m));
        await waitUntil(() => got.length === 3, { what: "3 deliveries" });
        assert.equal((await ch.checkQueue("work")).messageCount, 7, "prefetch 3 holds the rest");
        ch.ack(got[1], true); // m0, m1
        await waitUntil(() => got.length === 5, { what: "2 more" });
        ch.nack(got[2], false, true); // m2 back, first in line
        await waitUntil(() => got.length === 6, { what: "redelivery" });
        assert.equal(got[5].content.toString(), "m2");
        assert.equal(got[5].fields.redelivered, true);
        ch.reject(got[3], false); // m3 dropped
        await waitUntil(() => got.length === 7, { what: "next after reject" });
        // recover: everything unacked comes again, redelivered
        const before = got.length;
        await ch.recover();
        await waitUntil(() => got.length >= before + 3, { what: "recovered deliveries" });
        assert.ok(got.slice(before).every((m) => m.fields.redelivered));
        // ack what came and what comes until m9 is in (m6..m9 remain, 3 at a time)
        await waitUntil(() => {
          ch.ackAll();
          return got.length === 14;
        }, { what: "all consumed" });
        ch.ackAll();
        assert.equal((await ch.checkQueue("work")).messageCount, 0);
        const texts = new Set(got.map((m) => m.content.toString()));
        assert.deepEqual([...texts].sort(), [
          "m0",
          "m1",
          "m2",
          "m3",
          "m4",
          "m5",
          "m6",
          "m7",
          "m8",
          "m9",
        ]);
        const g = await channel();
        await g.assertQueue("pull", { durable: false });
        assert.equal(await g.get("pull"), false);
        g.sendToQueue("pull", Buffer.from("p"));
        const pm = await g.get("pull") as Msg;
        assert.equal(pm.content.toString(), "p");
        g.ack(pm);
        // an unknown delivery tag is a 406 channel exception
        const errors: unknown[] = [];
        const bad = quiet(await (await connect()).createChannel(), errors);
        const closed = new Promise((r) => bad.on("close", r));
        bad.ack({ fields: { deliveryTag: 99 } } as unknown as Msg);
        await closed;
        assert.match(String(errors[0]), /406.*unknown delivery tag 99/i);
      },
    );

    await t.step(
      "basic: global prefetch is per channel; exclusive consumers; server-side cancel on delete",
      async () => {
        const ch = await channel();
        await ch.assertQueue("g1", { durable: false });
        await ch.assertQueue("g2", { durable: false });
        for (let i = 0; i < 5; i++) {
          ch.sendToQueue("g1", Buffer.from("a"));
          ch.sendToQueue("g2", Buffer.from("b"));
        }
        await ch.prefetch(4, true);
        const got: Msg[] = [];
        await ch.consume("g1", (m) => m && got.push(m));
        await ch.consume("g2", (m) => m && got.push(m));
        await waitUntil(() => got.length === 4, { what: "4 deliveries over both consumers" });
        await ch.checkQueue("g1"); // a round trip: nothing more came
        assert.equal(got.length, 4);
        const ex = await channel();
        await ex.assertQueue("solo", { durable: false });
        await ex.consume("solo", () => {}, { exclusive: true });
        const other = await channel();
        const refused = await rejection(other.consume("solo", () => {}));
        assert.match(refused.message, /403|ACCESS_REFUSED/);
        const cancelled: Array<unknown> = [];
        const ch2 = await channel();
        await ch2.assertQueue("doomed", { durable: false });
        await ch2.consume("doomed", (m) => cancelled.push(m));
        const ch3 = await channel();
        await ch3.deleteQueue("doomed");
        await waitUntil(() => cancelled.length === 1, { what: "server cancel" });
        assert.equal(cancelled[0], null, "amqplib reports a server cancel as a null message");
      },
    );

    await t.step(
      "TTL and dead-lettering: the delayed-retry pattern; x-expires; per-message expiration",
      async () => {
        const ch = await channel();
        await ch.assertExchange("retry.dlx", "direct", { durable: false });
        // work → (reject) → wait (TTL 100 ms) → back to work
        await ch.assertQueue("r.work", {
          durable: false,
          deadLetterExchange: "retry.dlx",
          deadLetterRoutingKey: "wait",
        });
        await ch.assertQueue("r.wait", {
          durable: false,
          messageTtl: 100,
          deadLetterExchange: "retry.dlx",
          deadLetterRoutingKey: "work",
        });
        await ch.bindQueue("r.wait", "retry.dlx", "wait");
        await ch.bindQueue("r.work", "retry.dlx", "work");
        const seen: Array<{ body: string; at: number }> = [];
        await ch.consume("r.work", (m) => {
          if (!m) return;
          seen.push({ body: m.content.toString(), at: performance.now() });
          if (seen.length === 1) ch.reject(m, false);
          else ch.ack(m);
        });
        ch.sendToQueue("r.work", Buffer.from("job"), { persistent: true, headers: { n: 1 } });
        await waitUntil(() => seen.length === 2, { what: "the job back after its delay" });
        assert.deepEqual(seen.map((s) => s.body), ["job", "job"]);
        assert.ok(seen[1].at - seen[0].at >= 90, `came back after ${seen[1].at - seen[0].at} ms`);
        // per-message expiration at the head of a queue nobody consumes
        await ch.assertQueue("r.exp", { durable: false });
        ch.sendToQueue("r.exp", Buffer.from("short"), { expiration: "20" });
        await waitUntil(async () => (await ch.checkQueue("r.exp")).messageCount === 0, {
          what: "expired message gone",
        });
        // a queue nobody uses goes away after x-expires
        await ch.assertQueue("r.idle", { durable: false, expires: 50 });
        await q1.waitForEvent((e) => e.ev === "q.expired" && e.queue === "r.idle");
        const gone = await rejection(ch.checkQueue("r.idle"));
        assert.match(gone.message, /404/);
      },
    );

    await t.step("publish: mandatory returns, properties intact, confirms", async () => {
      const c = await connect();
      const ch = quiet(await c.createConfirmChannel());
      const returned: Msg[] = [];
      ch.on("return", (m: Msg) => returned.push(m));
      await new Promise<void>((resolve, reject) =>
        ch.publish(
          "amq.direct",
          "nobody",
          Buffer.from("lost"),
          { mandatory: true },
          (e) => e ? reject(e) : resolve(),
        )
      );
      await waitUntil(() => returned.length === 1, { what: "basic.return" });
      assert.equal(returned[0].fields.replyCode, 312);
      assert.equal(returned[0].content.toString(), "lost");
      await ch.assertQueue("props", { durable: true });
      const ts = 1_700_000_000;
      const props = {
        persistent: true,
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: { retries: 3, name: "x", nested: { ok: true }, list: [1, "a"] },
        correlationId: "corr-1",
        replyTo: "reply-q",
        expiration: "60000",
        messageId: "msg-1",
        timestamp: ts,
        type: "order.created",
        appId: "tests",
        priority: 5,
      };
      ch.sendToQueue("props", Buffer.from('{"a":1}'), props);
      await ch.waitForConfirms();
      const m = await ch.get("props", { noAck: true }) as Msg;
      assert.equal(m.properties.contentType, "application/json");
      assert.equal(m.properties.contentEncoding, "utf-8");
      assert.deepEqual(m.properties.headers, props.headers);
      assert.equal(m.properties.deliveryMode, 2);
      assert.equal(m.properties.correlationId, "corr-1");
      assert.equal(m.properties.replyTo, "reply-q");
      assert.equal(m.properties.expiration, "60000");
      assert.equal(m.properties.messageId, "msg-1");
      assert.equal(m.properties.timestamp, ts);
      assert.equal(m.properties.type, "order.created");
      assert.equal(m.properties.appId, "tests");
      assert.equal(m.properties.priority, 5);
      for (let i = 0; i < 200; i++) {
        ch.sendToQueue("props", Buffer.from(`c${i}`), { persistent: true });
      }
      await ch.waitForConfirms();
      assert.equal((await ch.checkQueue("props")).messageCount, 200);
      await ch.purgeQueue("props");
      // a large body crosses several frames
      const big = Buffer.alloc(1_000_000, 7);
      ch.sendToQueue("props", big, { persistent: false });
      await ch.waitForConfirms();
      const bm = await ch.get("props", { noAck: true }) as Msg;
      assert.equal(bm.content.length, 1_000_000);
      assert.ok(bm.content.every((b: number) => b === 7));
    });

    await t.step("the native client and amqplib see each other's messages", async () => {
      const ch = await channel();
      await ch.assertQueue("bridge", { durable: true });
      ch.sendToQueue("bridge", Buffer.from("from-amqp"), {
        persistent: true,
        contentType: "text/plain",
        headers: { h: 1 },
      });
      await ch.checkQueue("bridge"); // round trip: the publish is in
      await using native = await QueueClient.connect(q1.address, { secret: SECRET });
      const nm = await native.get("bridge", { noAck: true }) as QueueMessage;
      assert.equal(new TextDecoder().decode(nm.body), "from-amqp");
      assert.equal(nm.props.contentType, "text/plain");
      assert.deepEqual(nm.props.headers, { h: 1 });
      native.publish("", "bridge", "from-native", {
        persistent: true,
        props: { contentType: "text/csv", headers: { n: "v" } },
      });
      await native.sync();
      const am = await ch.get("bridge", { noAck: true }) as Msg;
      assert.equal(am.content.toString(), "from-native");
      assert.equal(am.properties.contentType, "text/csv");
      assert.equal(am.properties.deliveryMode, 2);
      assert.deepEqual(am.properties.headers, { n: "v" });
      // queue arguments mean the same on both sides
      await ch.assertQueue("bridge.ttl", {
        durable: false,
        messageTtl: 60_000,
        deadLetterExchange: "",
        deadLetterRoutingKey: "bridge",
      });
      await native.assertQueue("bridge.ttl", {
        durable: false,
        messageTtl: 60_000,
        deadLetterExchange: "",
        deadLetterRoutingKey: "bridge",
      });
      const other = await rejection(native.assertQueue("bridge.ttl", { durable: false }));
      assert.match(other.message, /precondition_failed.*messageTtl/);
      native.publish("", "bridge.ttl", "short-lived", { expiration: 1 });
      await native.sync();
      await waitUntil(async () => {
        const m = await ch.get("bridge", { noAck: true });
        return m && m.content.toString() === "short-lived";
      }, { what: "the natively published message dead-lettered after its expiration" });
    });

    await t.step(
      "dead-lettered messages carry x-death as RabbitMQ writes it; a second death counts 2",
      async () => {
        const ch = await channel();
        await ch.assertExchange("xd.dlx", "fanout", { durable: false });
        await ch.assertQueue("xd.work", { durable: false, deadLetterExchange: "xd.dlx" });
        // the retry queue sends what expires in it back to work
        await ch.assertQueue("xd.retry", {
          durable: false,
          messageTtl: 20,
          deadLetterExchange: "",
          deadLetterRoutingKey: "xd.work",
        });
        await ch.bindQueue("xd.retry", "xd.dlx", "");
        const before = Math.floor(Date.now() / 1000);
        ch.sendToQueue("xd.work", Buffer.from("job"), {
          headers: { app: "billing" },
          contentType: "text/plain",
          expiration: "60000",
        });
        type Death = {
          count: number;
          reason: string;
          queue: string;
          time: { value: number } | number;
          exchange: string;
          "routing-keys": string[];
          "original-expiration"?: string;
        };
        const next = async (): Promise<Msg> => {
          let got: Msg | false = false;
          await waitUntil(async () => (got = await ch.get("xd.work") as Msg | false) !== false, {
            what: "the job in xd.work",
          });
          return got as unknown as Msg;
        };
        let m = await next();
        assert.equal(m.properties.headers?.["x-death"], undefined);
        ch.nack(m, false, false);
        m = await next();
        const deaths = m.properties.headers?.["x-death"] as Death[];
        assert.deepEqual(deaths.map((d) => [d.queue, d.reason, d.count]), [
          ["xd.retry", "expired", 1],
          ["xd.work", "rejected", 1],
        ]);
        assert.equal(deaths[1].exchange, "");
        assert.deepEqual(deaths[1]["routing-keys"], ["xd.work"]);
        assert.equal(deaths[1]["original-expiration"], "60000");
        assert.equal(deaths[0].exchange, "xd.dlx");
        // amqplib gives a timestamp ('T') as { "!": "timestamp", value } or a number
        const time = typeof deaths[0].time === "number" ? deaths[0].time : deaths[0].time.value;
        assert.ok(time >= before && time <= Date.now() / 1000 + 1, `time ${time}`);
        assert.equal(m.properties.headers?.["x-first-death-queue"], "xd.work");
        assert.equal(m.properties.headers?.["x-first-death-reason"], "rejected");
        assert.equal(m.properties.headers?.app, "billing");
        assert.equal(m.properties.contentType, "text/plain");
        assert.equal(m.properties.expiration, undefined);
        ch.nack(m, false, false);
        m = await next();
        const again = m.properties.headers?.["x-death"] as Death[];
        assert.deepEqual(again.map((d) => [d.queue, d.reason, d.count]), [
          ["xd.retry", "expired", 2],
          ["xd.work", "rejected", 2],
        ]);
        ch.ack(m);
        // max length: the oldest is dropped with reason maxlen
        await ch.assertQueue("xd.short", {
          durable: false,
          maxLength: 1,
          deadLetterExchange: "",
          deadLetterRoutingKey: "xd.sink",
        });
        await ch.assertQueue("xd.sink", { durable: false });
        ch.sendToQueue("xd.short", Buffer.from("old"));
        ch.sendToQueue("xd.short", Buffer.from("new"));
        let dropped: Msg | false = false;
        await waitUntil(async () => (dropped = await ch.get("xd.sink") as Msg | false) !== false, {
          what: "the dropped message in xd.sink",
        });
        const dm = dropped as unknown as Msg;
        assert.equal(dm.content.toString(), "old");
        const d0 = (dm.properties.headers?.["x-death"] as Death[])[0];
        assert.deepEqual([d0.queue, d0.reason, d0.count], ["xd.short", "maxlen", 1]);
        ch.ack(dm);
      },
    );

    await t.step(
      "bad input over TCP: answered as the specification says, other connections unharmed, nothing stored lost",
      async () => {
        const ch = quiet(await (await connect()).createConfirmChannel());
        await ch.assertQueue("steady", { durable: true });
        for (let i = 0; i < 50; i++) {
          ch.sendToQueue("steady", Buffer.from(`k${i}`), { persistent: true });
        }
        await ch.waitForConfirms();
        const readAll = async (conn: Deno.Conn) => {
          const chunks: number[] = [];
          const buf = new Uint8Array(4096);
          for (;;) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) return new Uint8Array(chunks);
            chunks.push(...buf.subarray(0, n));
          }
        };
        // a wrong protocol header: the right one comes back, then the socket closes
        const http = await Deno.connect({ hostname: "127.0.0.1", port });
        await http.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert.deepEqual([...await readAll(http)], [0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
        http.close();
        // garbage after a good header: connection.start, then connection.close 501, then EOF
        const junk = await Deno.connect({ hostname: "127.0.0.1", port });
        await junk.write(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
        await junk.write(new TextEncoder().encode("\u0007garbage, not frames"));
        const got = await readAll(junk);
        junk.close();
        assert.match(new TextDecoder().decode(got), /FRAME_ERROR - unknown frame type 7/);
        // the other connection goes on, and every stored message is there
        assert.equal((await ch.checkQueue("steady")).messageCount, 50);
        ch.sendToQueue("steady", Buffer.from("after"), { persistent: true });
        await ch.waitForConfirms();
        assert.equal((await ch.checkQueue("steady")).messageCount, 51);
        await ch.purgeQueue("steady");
        assert.ok(q1.events().some((e) => e.ev === "amqp.error" && e.code === 501));
      },
    );

    await t.step(
      "amqplib closing right after its last acks: close-ok arrives, no reset, rounds after rounds",
      async () => {
        // amqplib queues acks on the channel and its connection.close on channel 0; the close
        // can overtake acks still queued, which then arrive after close-ok. A server closing
        // outright reset them, and the reset could discard close-ok: close() hung or EPIPE.
        const N = 20_000;
        const body = Buffer.alloc(100, 0x61);
        const pub = await connect();
        const pch = quiet(await pub.createConfirmChannel());
        await pch.assertQueue("close.after.acks", { durable: false });
        for (let round = 0; round < 3; round++) {
          await pch.purgeQueue("close.after.acks");
          for (let i = 0; i < N; i++) pch.sendToQueue("close.after.acks", body);
          await pch.waitForConfirms();
          const errors: unknown[] = [];
          const c = quiet(await amqp.connect(url), errors);
          const ch = quiet(await c.createChannel(), errors);
          await ch.prefetch(500);
          let got = 0;
          await new Promise<void>((resolve) => {
            ch.consume("close.after.acks", (m) => {
              if (!m) return;
              ch.ack(m);
              if (++got === N) resolve();
            });
          });
          let timer: ReturnType<typeof setTimeout> | undefined;
          const closed = await Promise.race([
            c.close().then(() => "closed"),
            new Promise((r) => timer = setTimeout(() => r("no close-ok in 10 s"), 10_000)),
          ]).finally(() => clearTimeout(timer));
          assert.equal(closed, "closed", `round ${round}`);
          assert.deepEqual(errors, [], `round ${round}`);
        }
        await pch.deleteQueue("close.after.acks");
      },
    );

    await t.step(
      "frames a client still sends after connection.close are read and dropped, never reset (no EPIPE)",
      async () => {
        // amqplib can write a channel's queued frames (acks) after its connection.close:
        // the server shuts only its side after close-ok and reads until the client's end
        const sock = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          const decoder = new AmqpFrameDecoder(1 << 20);
          const buf = new Uint8Array(65536);
          /** The next method's name from the server; null at its end of the stream. */
          const nextMethod = async (): Promise<string | null> => {
            for (let reads = 0; reads < 100; reads++) {
              const f = decoder.next();
              if (f) return decodeMethod(f.payload).name;
              const n = await sock.read(buf);
              if (n === null) return null;
              decoder.push(buf.slice(0, n));
            }
            throw new Error("no complete frame in 100 reads");
          };
          await sock.write(PROTOCOL_HEADER);
          assert.equal(await nextMethod(), "connection.start");
          await sock.write(encodeMethodFrame(0, 10, 11, {
            clientProperties: {},
            mechanism: "PLAIN",
            response: new TextEncoder().encode("\u0000guest\u0000guest"),
            locale: "en_US",
          }));
          assert.equal(await nextMethod(), "connection.tune");
          await sock.write(encodeMethodFrame(0, 10, 31, {
            channelMax: 0,
            frameMax: 131072,
            heartbeat: 0,
          }));
          await sock.write(encodeMethodFrame(0, 10, 40, { virtualHost: "/" }));
          assert.equal(await nextMethod(), "connection.open-ok");
          await sock.write(encodeMethodFrame(0, 10, 50, {
            replyCode: 200,
            replyText: "bye",
            classId: 0,
            methodId: 0,
          }));
          assert.equal(await nextMethod(), "connection.close-ok");
          assert.equal(await nextMethod(), null, "the server ends its side after close-ok");
          // frames after the close: a closed socket would answer the first with a reset, and
          // a later write would fail (EPIPE); for 20 writes 10 ms apart, none may
          const heartbeat = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0xce]);
          for (let i = 0; i < 20; i++) {
            await sock.write(heartbeat);
            await new Promise((r) => setTimeout(r, 10)); // the window in which a reset would land
          }
        } finally {
          sock.close();
        }
      },
    );

    await t.step(
      "kill -9 with persistent confirmed messages, restart, reconnect: none lost",
      async () => {
        const c = await connect();
        const ch = quiet(await c.createConfirmChannel());
        // an internal exchange: declared before the crash, still internal after it
        await ch.assertExchange("survive.internal", "fanout", { durable: true, internal: true });
        await ch.assertQueue("survive", { durable: true });
        await ch.purgeQueue("survive");
        for (let i = 0; i < 500; i++) {
          ch.sendToQueue("survive", Buffer.from(`s${i}`), { persistent: true });
        }
        await ch.waitForConfirms();
        // take 100 without acking: they must come back after the crash, redelivered
        const held: Msg[] = [];
        const cons = await channel();
        await cons.prefetch(100);
        await cons.consume("survive", (m) => m && held.push(m));
        await waitUntil(() => held.length === 100, { what: "100 held deliveries" });
        const closed = new Promise((r) => c.on("close", r));
        await q1.kill("SIGKILL");
        await closed;
        for (const old of conns.splice(0)) old.close().catch(() => {});
        await q1.start();
        const c2 = await connect();
        const ch2 = await channel(c2);
        assert.equal((await ch2.checkQueue("survive")).messageCount, 500);
        const seen = new Set<string>();
        let redelivered = 0;
        const redeliveredBodies: string[] = [];
        await ch2.prefetch(200);
        await ch2.consume("survive", (m) => {
          if (!m) return;
          seen.add(m.content.toString());
          if (m.fields.redelivered) {
            redelivered++;
            redeliveredBodies.push(m.content.toString());
          }
          ch2.ack(m);
        });
        await waitUntil(() => seen.size === 500, { what: "all 500 after restart" });
        // the 100 delivered and unacked before the crash come back flagged redelivered
        // (each queue's delivery mark is stored), the 400 never delivered do not
        assert.deepEqual(
          [...redeliveredBodies].sort(),
          held.map((m) => m.content.toString()).sort(),
        );
        assert.equal(redelivered, 100);
        await waitUntil(async () => (await ch2.checkQueue("survive")).messageCount === 0, {
          what: "acks committed",
        });
        const errors: unknown[] = [];
        const pub = quiet(await c2.createChannel(), errors);
        const closedCh = new Promise((r) => pub.on("close", r));
        pub.publish("survive.internal", "", Buffer.from("x"));
        await closedCh;
        assert.match(String(errors[0]), /403 .*internal exchange "survive.internal"/);
      },
    );

    await t.step(
      "SIGTERM: clients get connection.close 320 CONNECTION_FORCED, the node exits 0",
      async () => {
        const c = quiet(await amqp.connect(url));
        // amqplib reports CONNECTION_FORCED on "close" only (it is not fatal to it)
        const closed = new Promise<unknown>((r) => c.on("close", r));
        const { code } = await q1.stop();
        const why = await closed;
        assert.equal(code, 0);
        assert.match(String(why), /320 .*CONNECTION_FORCED - broker shutdown/);
        conns.splice(0);
      },
    );
  } finally {
    for (const c of conns) await c.close().catch(() => {});
  }
});

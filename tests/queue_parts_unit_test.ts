/**
 * The pieces of the queue engine and of the AMQP session, each on its own: routing,
 * queue settings, consumer choice, settling, expiry timing, content assembly, queue
 * arguments and connection negotiation. No engine, no sockets.
 */
import assert from "node:assert/strict";
import {
  addBinding,
  bindingKey,
  type BoundQueue,
  builtinExchanges,
  type Exchange,
  headersMatch,
  removeBinding,
  routeNames,
} from "../mod/queue/exchange.ts";
import { nextExpiry } from "../mod/queue/expiry.ts";
import { propsReplacer, propsReviver, storedProps } from "../mod/queue/props_json.ts";
import {
  checkSameSettings,
  type Consumer,
  EngineConnection,
  type Message,
  nextConsumer,
  queueSettings,
  QueueState,
  recoveredSettings,
  settle,
  storedQueueArgs,
} from "../mod/queue/queue_state.ts";
import type { ConnectionSink } from "../mod/queue/types.ts";
import { ProtocolError } from "../mod/wire/mod.ts";
import {
  acceptBody,
  acceptHeader,
  assembleBody,
  expirationMs,
  startPublish,
} from "../mod/queue/amqp/content.ts";
import { queueArguments } from "../mod/queue/amqp/queue_args.ts";
import { acceptOpen, acceptStartOk, acceptTuneOk } from "../mod/queue/amqp/handshake.ts";
import { AmqpError, AmqpWriter, encodeProperties } from "../mod/queue/amqp/mod.ts";

const sink: ConnectionSink = {
  deliver: () => true,
  returned: () => {},
  confirmed: () => {},
  confirmFailed: () => {},
  cancelled: () => {},
};

function exchange(type: Exchange["type"]): Exchange {
  return {
    name: `x.${type}`,
    type,
    durable: true,
    autoDelete: false,
    internal: false,
    bindings: new Map(),
  };
}

function bound(name: string): BoundQueue {
  return { name, bindings: new Set() };
}

function message(seq: number, expiresAt = 0): Message {
  return {
    seq,
    id: 0,
    exchange: "",
    key: "k",
    body: new Uint8Array(0),
    props: {},
    persistent: false,
    redelivered: false,
    expiresAt,
  };
}

function amqpCode(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert(err instanceof AmqpError, String(err));
    return err.code;
  }
  return 0;
}

Deno.test("routeNames() routes direct by key, fanout to all, topic by pattern, headers by x-match", () => {
  const direct = exchange("direct");
  addBinding(direct, bound("a"), "k1");
  addBinding(direct, bound("b"), "k2");
  assert.deepEqual([...routeNames(direct, "k1", {})], ["a"]);
  assert.deepEqual([...routeNames(direct, "none", {})], []);

  const fanout = exchange("fanout");
  addBinding(fanout, bound("a"), "ignored");
  addBinding(fanout, bound("b"), "other");
  assert.deepEqual([...routeNames(fanout, "anything", {})].sort(), ["a", "b"]);

  const topic = exchange("topic");
  const t = bound("t");
  addBinding(topic, t, "log.*");
  addBinding(topic, bound("all"), "#");
  assert.deepEqual([...routeNames(topic, "log.error", {})].sort(), ["all", "t"]);
  // the per-key cache is cleared when a binding goes
  removeBinding(topic, t, bindingKey(topic, "log.*"));
  assert.deepEqual([...routeNames(topic, "log.error", {})], ["all"]);
  assert.equal(t.bindings.size, 0);

  const headers = exchange("headers");
  addBinding(headers, bound("all"), JSON.stringify({ "x-match": "all", a: 1, b: "x" }));
  addBinding(headers, bound("any"), JSON.stringify({ "x-match": "any", a: 1, b: "x" }));
  assert.deepEqual([...routeNames(headers, "", { headers: { a: 1, b: "x" } })].sort(), [
    "all",
    "any",
  ]);
  assert.deepEqual([...routeNames(headers, "", { headers: { a: 1 } })], ["any"]);
  assert.deepEqual([...routeNames(headers, "", {})], []);
});

Deno.test("addBinding() refuses a duplicate; bindingKey() canonicalises headers arguments", () => {
  const headers = exchange("headers");
  const q = bound("q");
  assert.equal(addBinding(headers, q, '{"b":2,"a":1}'), true);
  assert.equal(addBinding(headers, q, '{"a":1,"b":2}'), false);
  assert.equal(bindingKey(headers, '{"b":2,"a":1}'), '{"a":1,"b":2}');
  assert.equal(bindingKey(exchange("fanout"), "x"), "");
  assert.equal(headersMatch("not json", { any: 1 }), true);
  assert.deepEqual(builtinExchanges().map((e) => e.name), [
    "amq.direct",
    "amq.fanout",
    "amq.topic",
    "amq.headers",
    "amq.match",
  ]);
});

Deno.test("queueSettings() applies defaults and refuses bad numbers; checkSameSettings() names the differences", () => {
  const o = queueSettings("q", { maxLength: 3 });
  assert.equal(o.durable, true);
  assert.equal(o.maxLength, 3);
  assert.throws(() => queueSettings("q", { messageTtl: -1 }), ProtocolError);
  assert.throws(() => queueSettings("q", { expires: 1.5 }), ProtocolError);
  const q = new QueueState("q", o);
  checkSameSettings(q, queueSettings("q", { maxLength: 3 }));
  assert.throws(
    () => checkSameSettings(q, queueSettings("q", { maxLength: 4, durable: false })),
    /durable is true, asked false, maxLength is 3, asked 4/,
  );
  const stored = storedQueueArgs(queueSettings("q", { messageTtl: 5, deadLetterExchange: "" }));
  assert.deepEqual(stored, { messageTtl: 5, deadLetterExchange: "" });
  const back = recoveredSettings({ autoDelete: false, maxLength: 0, args: JSON.stringify(stored) });
  assert.equal(back.messageTtl, 5);
  assert.equal(back.deadLetterExchange, "");
  assert.equal(recoveredSettings({ autoDelete: true, maxLength: 1, args: "{bad" }).messageTtl, 0);
});

Deno.test("nextConsumer() goes round-robin and skips blocked connections and full prefetch", () => {
  const q = new QueueState("q", queueSettings("q", {}));
  const conns = [1, 2, 3].map((i) => new EngineConnection(i, `c${i}`, sink));
  const consumers: Consumer[] = conns.map((conn, i) => ({
    tag: `t${i}`,
    queue: q,
    conn,
    noAck: false,
    prefetch: 1,
    unacked: 0,
  }));
  q.consumers.push(...consumers);
  assert.equal(nextConsumer(q)?.tag, "t0");
  assert.equal(nextConsumer(q)?.tag, "t1");
  conns[2].blocked = true;
  assert.equal(nextConsumer(q)?.tag, "t0");
  consumers[0].unacked = 1;
  assert.equal(nextConsumer(q)?.tag, "t1");
  consumers[1].unacked = 1;
  assert.equal(nextConsumer(q), undefined);
});

Deno.test("settle() takes one tag, every tag up to one, or all, and refuses an unknown tag", () => {
  const q = new QueueState("q", queueSettings("q", {}));
  const conn = new EngineConnection(1, "c", sink);
  for (let tag = 1; tag <= 4; tag++) {
    conn.unacked.set(tag, { tag, msg: message(tag), queue: q });
    q.unacked++;
  }
  assert.deepEqual(settle(conn, 2, false, "ack").map((u) => u.tag), [2]);
  assert.deepEqual(settle(conn, 3, true, "ack").map((u) => u.tag), [1, 3]);
  assert.throws(() => settle(conn, 9, false, "ack"), /Cannot ack delivery tag 9/);
  assert.deepEqual(settle(conn, 0, true, "nack").map((u) => u.tag), [4]);
  assert.equal(q.unacked, 0);
});

Deno.test("nextExpiry() is the earliest head TTL or unused-queue expiry", () => {
  const a = new QueueState("a", queueSettings("a", { messageTtl: 10 }));
  a.push(message(1, 0));
  a.push(message(2, 500));
  const b = new QueueState("b", queueSettings("b", { expires: 100 }));
  b.lastUsed = 1000;
  assert.equal(nextExpiry([a]), 500);
  assert.equal(nextExpiry([a, b]), 500);
  b.lastUsed = 0;
  assert.equal(nextExpiry([a, b]), 100);
  assert.equal(nextExpiry([]), Infinity);
});

function publishPayload(exchange: string, key: string, bits: number): Uint8Array {
  const w = new AmqpWriter(64);
  w.u16(60);
  w.u16(40);
  w.u16(0);
  w.shortstr(exchange);
  w.shortstr(key);
  w.u8(bits);
  return w.view().slice();
}

function headerPayload(bodySize: number, classId = 60): Uint8Array {
  const w = new AmqpWriter(64);
  w.u16(classId);
  w.u16(0);
  w.u64(bodySize);
  w.bytes(encodeProperties({ deliveryMode: 2, contentType: "text/plain" }));
  return w.view().slice();
}

Deno.test("content: publish, header and bodies assemble one message; frames out of order are refused", () => {
  const p = startPublish(publishPayload("ex", "rk", 1));
  assert.equal(p.exchange, "ex");
  assert.equal(p.key, "rk");
  assert.equal(p.mandatory, true);
  assert.equal(amqpCode(() => startPublish(publishPayload("ex", "rk", 2))), 540);
  assert.equal(amqpCode(() => startPublish(publishPayload("ex", "rk", 0).slice(0, 8))), 502);
  assert.equal(amqpCode(() => acceptBody(p, 1, new Uint8Array(1))), 505); // body before header
  assert.equal(amqpCode(() => acceptHeader(undefined, 1, headerPayload(3))), 505);
  acceptHeader(p, 1, headerPayload(5));
  assert.equal(p.persistent, true);
  assert.equal(p.props?.contentType, "text/plain");
  assert.equal(amqpCode(() => acceptHeader(p, 1, headerPayload(5))), 505); // a second header
  assert.equal(acceptBody(p, 1, new Uint8Array([1, 2])), false);
  assert.equal(amqpCode(() => acceptBody(p, 1, new Uint8Array(4))), 505); // longer than said
  assert.equal(acceptBody(p, 1, new Uint8Array([3, 4, 5])), true);
  assert.deepEqual([...assembleBody(p)], [1, 2, 3, 4, 5]);
  const q = startPublish(publishPayload("", "", 0));
  assert.equal(amqpCode(() => acceptHeader(q, 1, headerPayload(1, 50))), 501);
  assert.equal(expirationMs({ expiration: "60000" }), 60000);
  assert.equal(expirationMs({}), undefined);
  assert.equal(amqpCode(() => expirationMs({ expiration: "-1" })), 406);
});

Deno.test("queueArguments() reads RabbitMQ's queue arguments and refuses what peerd lacks", () => {
  assert.deepEqual(
    queueArguments({
      "x-max-length": 5,
      "x-message-ttl": 100,
      "x-expires": 1000,
      "x-dead-letter-exchange": "dlx",
      "x-dead-letter-routing-key": "dead",
      "x-overflow": "drop-head",
      "x-queue-type": "classic",
    }),
    {
      maxLength: 5,
      messageTtl: 100,
      expires: 1000,
      deadLetterExchange: "dlx",
      deadLetterRoutingKey: "dead",
    },
  );
  assert.equal(amqpCode(() => queueArguments({ "x-max-priority": 10 })), 540);
  assert.equal(amqpCode(() => queueArguments({ "x-overflow": "reject-publish" })), 540);
  assert.equal(amqpCode(() => queueArguments({ "x-queue-type": "quorum" })), 540);
  assert.equal(amqpCode(() => queueArguments({ "x-expires": 0 })), 406);
  assert.equal(amqpCode(() => queueArguments({ "x-dead-letter-exchange": 1 })), 406);
});

Deno.test("handshake: start-ok logs in, tune-ok bounds frame_max and channel_max, open takes only /", () => {
  const plain = new TextEncoder().encode("\u0000guest\u0000guest");
  const ok = acceptStartOk(
    {
      mechanism: "PLAIN",
      response: plain,
      clientProperties: { capabilities: { consumer_cancel_notify: true } },
    },
    (u, p) => u === "guest" && p === "guest",
  );
  assert.deepEqual(ok, { user: "guest", cancelNotify: true, blockedNotify: false });
  assert.equal(
    amqpCode(() => acceptStartOk({ mechanism: "PLAIN", response: plain }, () => false)),
    403,
  );
  assert.equal(
    amqpCode(() => acceptStartOk({ mechanism: "EXTERNAL", response: plain }, () => true)),
    403,
  );
  const offered = { frameMax: 131072, channelMax: 2047 };
  assert.deepEqual(acceptTuneOk({ frameMax: 0, channelMax: 0, heartbeat: 10 }, offered), {
    frameMax: 131072,
    channelMax: 2047,
    heartbeatMs: 10_000,
  });
  assert.equal(
    acceptTuneOk({ frameMax: 4096, channelMax: 9999, heartbeat: 0 }, offered).channelMax,
    2047,
  );
  assert.equal(
    amqpCode(() => acceptTuneOk({ frameMax: 100, channelMax: 0, heartbeat: 0 }, offered)),
    530,
  );
  assert.equal(
    amqpCode(() => acceptTuneOk({ frameMax: 1 << 20, channelMax: 0, heartbeat: 0 }, offered)),
    530,
  );
  acceptOpen({ virtualHost: "/" });
  assert.equal(amqpCode(() => acceptOpen({ virtualHost: "prod" })), 530);
});

Deno.test("stored props: the plain fast path writes what the replacer writes, and both read back", () => {
  const deep: Record<string, unknown> = {};
  let at = deep;
  for (let i = 0; i < 12; i++) at = (at.n = {}) as Record<string, unknown>;
  at.bytes = new Uint8Array([1, 2]);
  const cases: Record<string, unknown>[] = [
    {},
    { contentType: "text/plain", deliveryMode: 2, priority: 0, flag: true, none: null },
    { headers: { a: "x", b: [1, "two", { c: false }], skip: undefined } },
    { headers: { bin: new Uint8Array([0, 255, 7]) } },
    { headers: { at: new Date(1_700_000_000_123) }, list: [new Uint8Array([9])] },
    { headers: { big: 12345678901234567890n } },
    Object.assign(Object.create(null), { messageId: "m1" }),
    deep,
  ];
  for (const props of cases) {
    const json = storedProps(props);
    assert.equal(json, JSON.stringify(props, propsReplacer));
    assert.equal(storedProps(props), json); // the remembered last one
    const back = JSON.parse(json, propsReviver);
    assert.equal(JSON.stringify(back, propsReplacer), json);
  }
  const bin = JSON.parse(storedProps({ h: { b: new Uint8Array([3, 4]) } }), propsReviver);
  assert.deepEqual(bin.h.b, new Uint8Array([3, 4]));
});

/**
 * AmqpSession without sockets: bytes in, bytes out, over an in-memory QueueEngine.
 */
import assert from "node:assert/strict";
import {
  AmqpFrameDecoder,
  AmqpSession,
  AmqpWriter,
  decodeContentHeader,
  decodeMethod,
  encodeMethodFrame,
  encodeProperties,
  PROTOCOL_HEADER,
  writeContent,
} from "../mod/queue/amqp/mod.ts";
import { QueueEngine } from "../mod/queue/mod.ts";

interface Out {
  type: number;
  channel: number;
  name?: string;
  // deno-lint-ignore no-explicit-any
  args?: Record<string, any>;
  body?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One client connection driven by hand. */
class Peer {
  readonly session: AmqpSession;
  ended = false;
  now = 0;
  #decoder = new AmqpFrameDecoder(1 << 20);
  #headerSeen = false;

  constructor(
    readonly engine: QueueEngine,
    options: { heartbeat?: number; highWaterMark?: number } = {},
  ) {
    this.session = new AmqpSession(engine, {
      wake: () => {},
      pendingBytes: () => 0,
      end: () => this.ended = true,
    }, {
      authenticate: (u, p) => u === "guest" && p === "guest",
      heartbeat: options.heartbeat ?? 0,
      highWaterMark: options.highWaterMark,
    });
  }

  write(bytes: Uint8Array): void {
    this.session.receive(bytes, this.now);
  }

  method(channel: number, classId: number, methodId: number, args: Record<string, unknown> = {}) {
    this.write(encodeMethodFrame(channel, classId, methodId, args));
  }

  publish(channel: number, exchange: string, key: string, body: string, persistent = false) {
    const w = new AmqpWriter();
    w.bytes(encodeMethodFrame(channel, 60, 40, { exchange, routingKey: key }));
    writeContent(
      w,
      channel,
      encodeProperties({ deliveryMode: persistent ? 2 : 1 }),
      enc.encode(body),
      4096,
    );
    this.write(w.toBytes());
  }

  /** Everything the server wrote since the last call, decoded. */
  read(): Out[] {
    const out: Out[] = [];
    for (let v = this.session.takeOutput(); v; v = this.session.takeOutput()) {
      const b = v.slice(); // the view is valid until the next take but one

      this.#decoder.push(b);
      if (!this.#headerSeen && b[0] === 0x41) {
        this.#headerSeen = true;
        this.#decoder.take(8);
        out.push({ type: 0, channel: 0, name: "protocol-header" });
      }
      let pendingBody: Out | undefined;
      for (let f = this.#decoder.next(); f; f = this.#decoder.next()) {
        if (f.type === 1) {
          const m = decodeMethod(f.payload);
          const o = { type: 1, channel: f.channel, name: m.name, args: m.args };
          out.push(o);
          pendingBody = o;
        } else if (f.type === 2) {
          decodeContentHeader(f.payload);
          if (pendingBody) pendingBody.body = "";
        } else if (f.type === 3) {
          if (pendingBody) pendingBody.body += dec.decode(f.payload);
        } else out.push({ type: f.type, channel: f.channel, name: "heartbeat" });
      }
    }
    return out;
  }

  names(): string[] {
    return this.read().map((o) => `${o.channel}:${o.name}`);
  }

  /** Header, start-ok, tune-ok, open; returns the server's methods. */
  handshake(frameMax = 131072, capabilities: Record<string, boolean> = {}): string[] {
    this.write(PROTOCOL_HEADER);
    const resp = enc.encode("\u0000guest\u0000guest");
    this.method(0, 10, 11, {
      clientProperties: { capabilities },
      mechanism: "PLAIN",
      response: resp,
      locale: "en_US",
    });
    this.method(0, 10, 31, { channelMax: 0, frameMax, heartbeat: 0 });
    this.method(0, 10, 40, { virtualHost: "/" });
    return this.names();
  }

  openChannel(id: number): void {
    this.method(id, 20, 10);
    assert.deepEqual(this.names(), [`${id}:channel.open-ok`]);
  }
}

function withEngine(fn: (engine: QueueEngine) => void | Promise<void>) {
  return async () => {
    const engine = new QueueEngine();
    try {
      await fn(engine);
    } finally {
      engine.close();
    }
  };
}

Deno.test(
  "AmqpSession: the handshake offers PLAIN and AMQPLAIN, tunes and opens vhost /",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.write(PROTOCOL_HEADER);
    const start = p.read();
    assert.equal(start[0].name, "connection.start");
    assert.equal(dec.decode(start[0].args!.mechanisms), "PLAIN AMQPLAIN");
    assert.equal(start[0].args!.serverProperties.capabilities.publisher_confirms, true);
    const resp = enc.encode("\u0000guest\u0000guest");
    p.method(0, 10, 11, {
      clientProperties: {},
      mechanism: "PLAIN",
      response: resp,
      locale: "en_US",
    });
    const tune = p.read();
    assert.deepEqual(tune.map((o) => o.name), ["connection.tune"]);
    assert.deepEqual(tune[0].args, { channelMax: 2047, frameMax: 131072, heartbeat: 0 });
    p.method(0, 10, 31, { channelMax: 0, frameMax: 131072, heartbeat: 0 });
    assert.deepEqual(p.names(), []);
    p.method(0, 10, 40, { virtualHost: "/" });
    assert.deepEqual(p.names(), ["0:connection.open-ok"]);
    assert.equal(p.session.phase, "running");
    assert.equal(p.session.user, "guest");
  }),
);

Deno.test(
  "AmqpSession: a wrong login is refused with 403, another vhost with 530",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.write(PROTOCOL_HEADER);
    p.read();
    const resp = enc.encode("\u0000guest\u0000nope");
    p.method(0, 10, 11, { clientProperties: {}, mechanism: "PLAIN", response: resp, locale: "" });
    const close = p.read();
    assert.equal(close[0].name, "connection.close");
    assert.equal(close[0].args!.replyCode, 403);
    assert.match(close[0].args!.replyText, /ACCESS_REFUSED - Login was refused/);
    p.method(0, 10, 51);
    assert.equal(p.ended, true);

    const v = new Peer(engine);
    v.write(PROTOCOL_HEADER);
    v.method(0, 10, 11, {
      clientProperties: {},
      mechanism: "PLAIN",
      response: enc.encode("\u0000guest\u0000guest"),
      locale: "",
    });
    v.method(0, 10, 31, { channelMax: 0, frameMax: 131072, heartbeat: 0 });
    v.read();
    v.method(0, 10, 40, { virtualHost: "/other" });
    const c = v.read();
    assert.equal(c[0].args!.replyCode, 530);
    assert.match(c[0].args!.replyText, /NOT_ALLOWED - vhost '\/other' not found/);
  }),
);

Deno.test(
  "AmqpSession: a wrong protocol header is answered with AMQP 0-9-1's and the socket closed",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.write(enc.encode("GET / HTTP/1.1\r\n\r\n"));
    assert.deepEqual([...p.session.takeOutput()!], [...PROTOCOL_HEADER]);
    assert.equal(p.ended, true);
    const old = new Peer(engine);
    old.write(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 1, 1, 0, 9]));
    assert.deepEqual([...old.session.takeOutput()!], [...PROTOCOL_HEADER]);
    assert.equal(old.ended, true);
  }),
);

function expectConnectionClose(p: Peer, code: number, text: RegExp): void {
  const out = p.read();
  const close = out.find((o) => o.name === "connection.close");
  assert.ok(close, `expected connection.close, got ${out.map((o) => o.name).join(", ")}`);
  assert.equal(close.args!.replyCode, code);
  assert.match(close.args!.replyText, text);
  if (code === 501) {
    // a framing error loses the stream: the socket closes right after the close
    assert.equal(p.ended, true);
    assert.equal(p.session.phase, "closed");
    return;
  }
  // after close, everything but close-ok is discarded
  p.method(1, 20, 10);
  assert.deepEqual(p.names(), []);
  assert.equal(p.ended, false);
  p.method(0, 10, 51);
  assert.equal(p.ended, true);
  assert.equal(p.session.phase, "closed");
}

Deno.test(
  "AmqpSession: a wrong frame-end octet closes the connection with 501 FRAME_ERROR",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    const f = encodeMethodFrame(1, 20, 10);
    f[f.length - 1] = 0xab;
    p.write(f);
    expectConnectionClose(p, 501, /FRAME_ERROR - frame end octet is 0xab/);
  }),
);

Deno.test(
  "AmqpSession: a frame over the negotiated frame_max closes with 501",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake(4096);
    p.openChannel(1);
    const w = new AmqpWriter();
    w.bytes(encodeMethodFrame(1, 60, 40, { exchange: "", routingKey: "q" }));
    // a 5000-byte body in one frame
    writeContent(w, 1, encodeProperties({}), new Uint8Array(5000), 1 << 20);
    p.write(w.toBytes());
    expectConnectionClose(p, 501, /larger than frame_max 4096/);
  }),
);

Deno.test(
  "AmqpSession: a body longer than its header said closes with 505 UNEXPECTED_FRAME",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.openChannel(1);
    const w = new AmqpWriter();
    w.bytes(encodeMethodFrame(1, 60, 40, { exchange: "", routingKey: "q" }));
    writeContent(w, 1, encodeProperties({}), new Uint8Array(10), 4096);
    const bytes = w.toBytes();
    // patch the header's body size (8 bytes after class and weight) from 10 to 4
    bytes[bytes.indexOf(0x3c, 21) + 10] = 4;
    p.write(bytes);
    expectConnectionClose(p, 505, /longer than the 4 bytes/);
  }),
);

Deno.test(
  "AmqpSession: a method on an unopened channel closes with 504 CHANNEL_ERROR",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.method(5, 50, 10, { queue: "q", arguments: {} });
    expectConnectionClose(p, 504, /expected 'channel.open' on channel 5, got 'queue.declare'/);
  }),
);

Deno.test(
  "AmqpSession: content without a method closes with 505",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.openChannel(1);
    const w = new AmqpWriter();
    writeContent(w, 1, encodeProperties({}), enc.encode("orphan"), 4096);
    p.write(w.toBytes());
    expectConnectionClose(p, 505, /content header on channel 1 without a 'basic.publish'/);
  }),
);

Deno.test(
  "AmqpSession: garbage after the header closes with 501 and a method in place of a header with 505",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.write(PROTOCOL_HEADER);
    p.read();
    p.write(enc.encode("hello, is this a queue?"));
    expectConnectionClose(p, 501, /unknown frame type 104/);

    const q = new Peer(engine);
    q.handshake();
    q.openChannel(1);
    q.method(1, 60, 40, { exchange: "", routingKey: "x" });
    q.method(1, 50, 10, { queue: "x", arguments: {} });
    expectConnectionClose(q, 505, /expected content header/);
  }),
);

Deno.test(
  "AmqpSession: a channel exception closes that channel only; the channel can be opened again",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.openChannel(1);
    p.openChannel(2);
    p.method(1, 50, 10, { queue: "missing", passive: true, arguments: {} });
    const out = p.read();
    assert.equal(out[0].name, "channel.close");
    assert.equal(out[0].args!.replyCode, 404);
    assert.equal(out[0].args!.classId, 50);
    assert.equal(out[0].args!.methodId, 10);
    // until close-ok, the closing channel discards what comes
    p.method(1, 50, 10, { queue: "ignored", arguments: {} });
    assert.deepEqual(p.names(), []);
    p.method(1, 20, 41);
    // channel 2 goes on
    p.method(2, 50, 10, { queue: "real", arguments: {} });
    assert.deepEqual(p.read().map((o) => [o.name, o.args?.queue]), [["queue.declare-ok", "real"]]);
    p.openChannel(1);
    assert.deepEqual(engine.queues().map((q) => q.name), ["real"]);
  }),
);

Deno.test(
  "AmqpSession: consume-ok comes before the first delivery; unacked deliveries survive a protocol error",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.openChannel(1);
    p.method(1, 50, 10, { queue: "jobs", durable: true, arguments: {} });
    p.publish(1, "", "jobs", "one", true);
    p.publish(1, "", "jobs", "two", true);
    p.read();
    p.method(1, 60, 20, { queue: "jobs", consumerTag: "c1", arguments: {} });
    const out = p.read();
    assert.deepEqual(out.map((o) => o.name), [
      "basic.consume-ok",
      "basic.deliver",
      "basic.deliver",
    ]);
    assert.deepEqual(out.slice(1).map((o) => [o.args!.deliveryTag, o.body]), [[1, "one"], [
      2,
      "two",
    ]]);
    p.method(1, 60, 80, { deliveryTag: 1 });
    // garbage: the connection dies, "two" goes back to the queue, marked redelivered
    p.write(new Uint8Array([9, 9, 9, 9, 9, 9, 9, 9]));
    assert.equal(p.read().at(-1)?.args?.replyCode, 501);
    const other = engine.connect("check", {
      deliver: () => true,
      returned: () => {},
      confirmed: () => {},
      confirmFailed: () => {},
      cancelled: () => {},
    });
    const d = engine.get(other, "jobs", { noAck: true });
    assert.equal(dec.decode(d!.body), "two");
    assert.equal(d!.redelivered, true);
  }),
);

Deno.test(
  "AmqpSession: confirms come after the commit, several at once as one multiple ack",
  withEngine(async (engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.openChannel(1);
    p.method(1, 85, 10);
    assert.deepEqual(p.names(), ["1:confirm.select-ok"]);
    p.method(1, 50, 10, { queue: "c", arguments: {} });
    p.read();
    for (let i = 0; i < 3; i++) p.publish(1, "", "c", `m${i}`, true);
    assert.deepEqual(p.names(), [], "nothing confirmed before the engine's commit");
    await engine.committed();
    const acks = p.read();
    assert.deepEqual(acks.map((o) => [o.name, o.args!.deliveryTag, o.args!.multiple]), [
      ["basic.ack", 3, true],
    ]);
    // a publish to a missing exchange is a 404 channel exception, as in RabbitMQ
    p.publish(1, "nope", "k", "x");
    const close = p.read();
    assert.equal(close[0].name, "channel.close");
    assert.equal(close[0].args!.replyCode, 404);
  }),
);

Deno.test(
  "AmqpSession: heartbeats go out at half the interval; a silent peer is dropped after two",
  withEngine((engine) => {
    const p = new Peer(engine, { heartbeat: 10 });
    p.write(PROTOCOL_HEADER);
    p.method(0, 10, 11, {
      clientProperties: {},
      mechanism: "PLAIN",
      response: enc.encode("\u0000guest\u0000guest"),
      locale: "",
    });
    p.method(0, 10, 31, { channelMax: 0, frameMax: 131072, heartbeat: 10 });
    p.method(0, 10, 40, { virtualHost: "/" });
    p.read();
    p.session.tick(4_000);
    assert.deepEqual(p.names(), []);
    p.session.tick(5_001);
    assert.deepEqual(p.names(), ["0:heartbeat"]);
    p.now = 15_000;
    p.write(new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0xce]));
    p.session.tick(30_000);
    assert.equal(p.ended, false);
    p.session.tick(35_001);
    assert.equal(p.ended, true);
  }),
);

Deno.test(
  "AmqpSession: queue arguments it does not implement are refused with 540 and a text",
  withEngine((engine) => {
    const p = new Peer(engine);
    p.handshake();
    p.openChannel(1);
    p.method(1, 50, 10, { queue: "q", arguments: { "x-max-priority": 10 } });
    const out = p.read();
    assert.equal(out[0].name, "connection.close");
    assert.equal(out[0].args!.replyCode, 540);
    assert.match(out[0].args!.replyText, /queue argument 'x-max-priority' is not supported/);
  }),
);

Deno.test(
  "AmqpSession: deliveries pause at the high-water mark and go on once the output is written",
  withEngine((engine) => {
    const p = new Peer(engine, { highWaterMark: 2_000 });
    p.handshake();
    p.openChannel(1);
    p.method(1, 50, 10, { queue: "bulk", arguments: {} });
    for (let i = 0; i < 100; i++) p.publish(1, "", "bulk", `message-${i}`);
    p.read();
    p.method(1, 60, 20, { queue: "bulk", consumerTag: "c", noAck: true, arguments: {} });
    assert.equal(p.session.paused, true);
    const first = p.read().filter((o) => o.name === "basic.deliver").length;
    assert.ok(first > 0 && first < 100, `first burst ${first}`);
    assert.equal(engine.queueInfo(undefined, "bulk").messages, 100 - first);
    let total = first;
    for (let i = 0; i < 100 && total < 100; i++) {
      p.session.drained();
      total += p.read().filter((o) => o.name === "basic.deliver").length;
    }
    assert.equal(total, 100);
    assert.equal(engine.queueInfo(undefined, "bulk").messages, 0);
  }),
);

Deno.test(
  "AmqpSession: under memory pressure a publishing connection gets connection.blocked and is not read; a consumer is",
  () => {
    const engine = new QueueEngine({ maxMemory: 100 });
    try {
      const pub = new Peer(engine);
      pub.handshake(131072, { "connection.blocked": true });
      pub.openChannel(1);
      const cons = new Peer(engine);
      cons.handshake(131072, { "connection.blocked": true });
      cons.openChannel(1);
      cons.method(1, 50, 10, { queue: "m", arguments: {} });
      cons.read();
      pub.publish(1, "", "m", "x".repeat(40));
      pub.publish(1, "", "m", "x".repeat(40));
      assert.equal(pub.session.readBlocked, false);
      pub.publish(1, "", "m", "y".repeat(40));
      const blocked = pub.read();
      assert.deepEqual(blocked.map((o) => [o.channel, o.name, o.args?.reason]), [
        [0, "connection.blocked", "low on memory"],
      ]);
      assert.equal(pub.session.readBlocked, true);
      // the consumer never published: it is told nothing and goes on
      assert.deepEqual(cons.names(), []);
      assert.equal(cons.session.readBlocked, false);
      cons.method(1, 60, 70, { queue: "m", noAck: true });
      assert.deepEqual(cons.names(), ["1:basic.get-ok"]);
      assert.deepEqual(pub.names(), [], "120 → 80 bytes is not below 80 % of 100");
      cons.method(1, 60, 70, { queue: "m", noAck: true });
      cons.read();
      assert.deepEqual(pub.names(), ["0:connection.unblocked"]);
      assert.equal(pub.session.readBlocked, false);
    } finally {
      engine.close();
    }
  },
);

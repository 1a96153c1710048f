import assert from "node:assert/strict";
import {
  type ByteStream,
  FrameConnection,
  FrameDecoder,
  FrameEncoder,
  FrameServer,
  type Message,
  ProtocolError,
  RemoteError,
  RpcClient,
} from "../mod/wire/mod.ts";

/** An in-memory stream that records every write and can hold writes back. */
class RecordingStream implements ByteStream {
  writes: Uint8Array[] = [];
  #release: (() => void) | undefined;
  holdWrites = false;
  read(): Promise<number | null> {
    return Promise.resolve(null);
  }
  async write(p: Uint8Array): Promise<number> {
    if (this.holdWrites) await new Promise<void>((resolve) => this.#release = resolve);
    this.writes.push(p.slice());
    return p.length;
  }
  release(): void {
    this.holdWrites = false;
    this.#release?.();
  }
  close(): void {}
}

Deno.test("FrameConnection.send() coalesces frames queued in one tick into one write", async () => {
  const stream = new RecordingStream();
  const conn = new FrameConnection(stream);
  for (let i = 0; i < 500; i++) conn.send({ t: "m", i });
  await conn.flush();
  assert.equal(stream.writes.length, 1);
  const decoder = new FrameDecoder();
  decoder.push(stream.writes[0]);
  let n = 0;
  while (decoder.next()) n++;
  assert.equal(n, 500);
  conn.close();
});

Deno.test("FrameConnection.send(msg, urgent) writes at once on an idle connection; what follows in that tick goes in the next write", async () => {
  const stream = new RecordingStream();
  const conn = new FrameConnection(stream);
  conn.send({ t: "now" }, true);
  for (let i = 0; i < 10; i++) conn.send({ t: "m", i }, i === 5); // in flight: not at once
  await conn.flush();
  const counts = stream.writes.map((bytes) => {
    const decoder = new FrameDecoder();
    decoder.push(bytes);
    let n = 0;
    while (decoder.next()) n++;
    return n;
  });
  assert.deepEqual(counts, [1, 10]);
  conn.close();
});

Deno.test("FrameConnection.send() reports backpressure above the high-water mark and drained() resolves", async () => {
  const stream = new RecordingStream();
  stream.holdWrites = true;
  const conn = new FrameConnection(stream, { highWaterMark: 10_000 });
  const payload = "x".repeat(1000);
  let accepted = 0;
  for (let i = 0; i < 100 && conn.send({ t: "m", payload }); i++) accepted++;
  assert.ok(accepted < 100, "send() never said the queue was full");
  let drained = false;
  const waiting = conn.drained().then(() => drained = true);
  await Promise.resolve();
  assert.equal(drained, false);
  stream.release();
  await waiting;
  assert.equal(drained, true);
  await conn.flush();
  conn.close();
});

Deno.test("FrameServer + RpcClient: replies match rid, errors become RemoteError, unknown types are refused", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    handlers: {
      add: (msg: Message) => ({ t: "add.ok", sum: Number(msg.a) + Number(msg.b) }),
      slow: async (msg: Message) => {
        await new Promise((r) => setTimeout(r, 5));
        return { t: "slow.ok", n: msg.n };
      },
      fail: () => {
        throw new ProtocolError("conflict", "Cannot fail: on purpose");
      },
    },
  });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port }, {
    name: "c",
  });
  try {
    assert.equal(client.server.role, "test");
    const replies = await Promise.all([
      client.request({ t: "slow", n: 1 }),
      client.request({ t: "add", a: 2, b: 3 }),
    ]);
    assert.equal(replies[0].n, 1);
    assert.equal(replies[1].sum, 5);
    await assert.rejects(
      client.request({ t: "fail" }),
      (e: unknown) => e instanceof RemoteError && e.code === "conflict",
    );
    await assert.rejects(
      client.request({ t: "nope" }),
      (e: unknown) => e instanceof RemoteError && e.code === "unknown_type",
    );
    assert.equal((await client.request({ t: "add", a: 1, b: 1 })).sum, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("FrameServer refuses a client whose first frame is not hello", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    handlers: {},
  });
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const conn = new FrameConnection(raw);
  try {
    conn.send({ t: "echo", data: 1 });
    const reply = await conn.read();
    assert.equal(reply?.t, "error");
    assert.equal(reply?.code, "hello_required");
    assert.equal(await conn.read(), null);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("FrameConnection.read() keeps every frame intact across read-buffer boundaries", async () => {
  // frames of many sizes (up to 200 KiB, near the 256 KiB read buffer), read in pieces that
  // fill the buffer to its end and in small pieces, every message kept until the end: a
  // binary field is a view of the read buffer, so a later read must never overwrite it
  let seed = 5;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const encoder = new FrameEncoder();
  const sent: Message[] = [];
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    const size = i % 500 === 7 ? 150_000 + rand() % 50_000 : rand() % 3000;
    const d = new Uint8Array(size);
    for (let j = 0; j < size; j += 97) d[j] = (i + j) & 0xff;
    const msg = { t: "m", i, d };
    sent.push(msg);
    parts.push(encoder.encode(msg).slice());
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  let off = 0;
  let turn = 0;
  const stream: ByteStream = {
    read(p: Uint8Array): Promise<number | null> {
      if (off >= all.length) return Promise.resolve(null);
      const want = turn++ % 3 === 0 ? 1 + rand() % 5000 : p.length; // small, or fill it all
      const n = Math.min(want, p.length, all.length - off);
      p.set(all.subarray(off, off + n));
      off += n;
      return Promise.resolve(n);
    },
    write: (p: Uint8Array) => Promise.resolve(p.length),
    close() {},
  };
  const conn = new FrameConnection(stream);
  const got: Message[] = [];
  for (let i = 0; i < 10_000; i++) {
    const msg = conn.readBuffered() ?? await conn.read();
    if (msg === null) break;
    got.push(msg);
  }
  conn.close();
  assert.equal(got.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.deepEqual(got[i], sent[i], `frame ${i}`);
});

Deno.test("FrameServer with a 1 KiB limit: an error frame too large for it is cut to a minimal one; a reply too large becomes frame_too_large", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    maxFrame: 1024,
    handlers: {
      // details are copied into the error frame: 5,000 characters of them
      fail: () => {
        throw new ProtocolError("conflict", "Cannot fail: on purpose", { blob: "b".repeat(5000) });
      },
      big: () => ({ t: "big.ok", body: "x".repeat(2000) }),
    },
  });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await assert.rejects(
      client.request({ t: "fail" }),
      (e: unknown) =>
        e instanceof RemoteError && e.code === "conflict" && e.frame.blob === undefined,
    );
    await assert.rejects(
      client.request({ t: "big" }),
      (e: unknown) => e instanceof RemoteError && e.code === "frame_too_large",
    );
    await assert.rejects(
      client.request({ t: "y".repeat(900) }),
      (e: unknown) => e instanceof RemoteError && e.code === "unknown_type",
    );
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("FrameServer refuses requests past its pending-bytes budget with overloaded, and a rid that is not an integer or a short string", async () => {
  const parked: Array<() => void> = [];
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    pendingBytes: { perConnection: 64 * 1024, perNode: 100 * 1024 },
    handlers: {
      // answered later, as a ring lock is: the request stays charged until its reply
      park: (msg, session) => {
        parked.push(() => session.reply(msg, { t: "park.ok" }));
      },
    },
  });
  const a = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  const b = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const pad = new Uint8Array(20 * 1024);
    const first = [0, 1, 2].map(() => a.request({ t: "park", pad }));
    // a fourth on the same connection is over its 64 KiB
    await assert.rejects(
      a.request({ t: "park", pad }),
      (e: unknown) => e instanceof RemoteError && e.code === "overloaded",
    );
    assert.ok(server.pendingBytes > 60 * 1024);
    // another connection has its own budget, but the node's 100 KiB is nearly used
    const second = b.request({ t: "park", pad });
    await assert.rejects(
      b.request({ t: "park", pad }),
      (e: unknown) => e instanceof RemoteError && e.code === "overloaded",
    );
    for (const answer of parked.splice(0)) answer();
    for (const reply of await Promise.all([...first, second])) assert.equal(reply.t, "park.ok");
    assert.equal(server.pendingBytes, 0);
    // rid: refused on arrival when it could not be copied into a reply safely
    for (const rid of ["r".repeat(129), { a: 1 }, 1.5, [1]]) a.conn.send({ t: "park", rid });
    const errors = await new Promise<Message[]>((resolve) => {
      const got: Message[] = [];
      a.onMessage = (m) => {
        got.push(m);
        if (got.length === 4) resolve(got);
      };
    });
    for (const m of errors) {
      assert.equal(m.code, "bad_field");
      assert.equal(m.rid, undefined);
    }
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

Deno.test("FrameServer dispatches only its own message types (a Map, not an object's prototype)", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    handlers: { ping: () => ({ t: "pong" }) },
  });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    for (const t of ["constructor", "toString", "hasOwnProperty", "__proto__", "valueOf"]) {
      await assert.rejects(
        client.request({ t }),
        (e: unknown) => e instanceof RemoteError && e.code === "unknown_type",
        t,
      );
    }
    assert.equal((await client.request({ t: "ping" })).t, "pong");
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("FrameServer over maxConnections answers too_many_connections and closes; a freed place is taken again", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    maxConnections: 2,
    handlers: { ping: () => ({ t: "pong" }) },
  });
  const a = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  const b = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const raw = new FrameConnection(
      await Deno.connect({ hostname: "127.0.0.1", port: server.port }),
    );
    try {
      const reply = await raw.read();
      assert.equal(reply?.code, "too_many_connections");
      assert.equal(await raw.read(), null);
    } finally {
      raw.close();
    }
    await b.close();
    // the place comes back once the server has seen b go
    let c: RpcClient | undefined;
    for (let i = 0; i < 100 && !c; i++) {
      try {
        c = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.ok(c, "a place came back");
    assert.equal((await c.request({ t: "ping" })).t, "pong");
    await c.close();
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

Deno.test("FrameServer: a small frame is charged only while its handler runs (rid or not, sync or async, answered later or not) and the budget always comes back", async () => {
  const parked: Array<() => void> = [];
  let resume: (() => void) | undefined;
  let chargedWhileRunning = -1;
  const server: FrameServer = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    pendingBytes: { perConnection: 64 * 1024, perNode: 100 * 1024 },
    handlers: {
      ping: () => ({ t: "pong" }),
      note: () => undefined,
      slow: async () => {
        chargedWhileRunning = server.pendingBytes;
        await new Promise<void>((r) => resume = r);
        return { t: "slow.ok" };
      },
      park: (msg, session) => {
        parked.push(() => session.reply(msg, { t: "park.ok" }));
      },
    },
  });
  const a = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const pad = new Uint8Array(1000);
    for (let i = 0; i < 200; i++) a.conn.send({ t: "note", pad });
    const pongs = await Promise.all(
      Array.from({ length: 200 }, () => a.request({ t: "ping", pad })),
    );
    assert.equal(pongs.length, 200);
    assert.equal(server.pendingBytes, 0);
    // an async handler's frame stays charged until it returns
    const slow = a.request({ t: "slow", pad });
    for (let i = 0; i < 200 && resume === undefined; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(chargedWhileRunning >= 1000, `${chargedWhileRunning} bytes charged`);
    assert.equal(server.pendingBytes, chargedWhileRunning);
    resume!();
    assert.equal((await slow).t, "slow.ok");
    assert.equal(server.pendingBytes, 0);
    // a small request answered later holds nothing once its handler has returned
    const later = a.request({ t: "park", pad });
    for (let i = 0; i < 200 && parked.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(server.pendingBytes, 0);
    for (const answer of parked.splice(0)) answer();
    assert.equal((await later).t, "park.ok");
    assert.equal(server.pendingBytes, 0);
  } finally {
    await a.close();
    await server.close();
  }
});

Deno.test("FrameServer: big frames take their size from the node's incoming budget while they arrive; one that does not fit gets overloaded and a close", async () => {
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    pendingBytes: { perNode: 1024 * 1024 },
    handlers: { big: (msg) => ({ t: "big.ok", n: (msg.body as Uint8Array).length }) },
  });
  const header = (length: number) => {
    const h = new Uint8Array(4);
    new DataView(h.buffer).setUint32(0, length);
    return h;
  };
  const frame = new FrameEncoder().encode({ t: "big", body: new Uint8Array(700 * 1024) });
  const a = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  const b = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // a sends the first 100 KiB of a 700 KiB frame and stalls: 700 KiB of the budget taken
    a.conn.sendRaw(frame.subarray(0, 100 * 1024));
    for (let i = 0; i < 200 && server.incomingBytes < 700 * 1024; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(server.incomingBytes >= 700 * 1024, `${server.incomingBytes} bytes taken`);
    // b announces 600 KiB more: over the node's 1 MiB, refused before it is buffered
    let refused: Message | undefined;
    b.onMessage = (m) => refused = m;
    b.conn.sendRaw(header(600 * 1024));
    b.conn.sendRaw(new Uint8Array(70 * 1024));
    await b.conn.whenClosed();
    assert.equal(refused?.code, "overloaded");
    // a's frame completes: answered, and the budget is back
    a.conn.sendRaw(frame.subarray(100 * 1024));
    const reply = await new Promise<Message>((resolve) => a.onMessage = resolve);
    assert.equal(reply.n, 700 * 1024);
    assert.equal(server.incomingBytes, 0);
    assert.equal(server.pendingBytes, 0);
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

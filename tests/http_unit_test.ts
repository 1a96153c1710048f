import assert from "node:assert/strict";
import {
  bearerMatches,
  httpToken,
  MetricRegistry,
  NodeHttpServer,
  type NodeHttpSource,
  parseEventSelection,
  parseHttpListen,
  readinessRule,
  readSse,
  RECENT_SLOT_BYTES,
  RecentEvents,
  roleMetrics,
  selects,
  SseStream,
  thins,
  ThinWindow,
} from "../mod/http/mod.ts";
import type { EventRecord } from "../mod/events/mod.ts";
import { hasExecutable } from "./harness/http.ts";

Deno.test("MetricRegistry.render() writes HELP, TYPE, escaped labels and cumulative buckets", () => {
  const m = new MetricRegistry();
  const c = m.counter("peerd_x_total", "things\nseen");
  c.inc({ kind: 'a"b\\c\nd' }, 2);
  c.inc({ kind: 'a"b\\c\nd' });
  const g = m.gauge("peerd_depth", "depth");
  g.set({}, 5);
  g.set({ q: "jobs" }, true);
  g.set({ q: "other" }, "not a number");
  const h = m.histogram("peerd_wait_seconds", "wait", [0.1, 1]);
  h.observe({}, 0.05);
  h.observe({}, 0.5);
  h.observe({}, 5);
  m.counter("peerd_never_total", "declared, never set");
  const text = m.render();
  assert.match(text, /^# HELP peerd_x_total things\\nseen\n# TYPE peerd_x_total counter\n/);
  assert.match(text, /peerd_x_total\{kind="a\\"b\\\\c\\nd"\} 3\n/);
  assert.match(text, /peerd_depth 5\npeerd_depth\{q="jobs"\} 1\n/);
  assert.doesNotMatch(text, /other/);
  assert.match(text, /peerd_wait_seconds_bucket\{le="0.1"\} 1\n/);
  assert.match(text, /peerd_wait_seconds_bucket\{le="1"\} 2\n/);
  assert.match(text, /peerd_wait_seconds_bucket\{le="\+Inf"\} 3\n/);
  assert.match(text, /peerd_wait_seconds_sum 5.55\npeerd_wait_seconds_count 3\n/);
  assert.doesNotMatch(text, /peerd_never_total/);
  assert.throws(() => m.gauge("peerd_x_total", "again"), /is a counter/);
  assert.throws(() => m.counter("bad-name", "x"), /bad name/);
});

Deno.test("Counter.set() mirrors a status total and never goes down", () => {
  const m = new MetricRegistry();
  const c = m.counter("peerd_a_total", "a");
  c.set({}, 10);
  c.set({}, 4);
  assert.match(m.render(), /peerd_a_total 10\n/);
});

Deno.test("roleMetrics() counts events by name and reads the role's status", () => {
  const m = new MetricRegistry();
  const ring = roleMetrics(m, "ring");
  const ev = (ev: string, f: Record<string, unknown> = {}): EventRecord => ({
    ts: 1,
    node: "n1",
    role: "ring",
    ev,
    ...f,
  });
  ring.event(ev("lock.acquired", { waited_ms: 12 }));
  ring.event(ev("lock.acquired", { waited_ms: 2000 }));
  ring.event(ev("token.regenerated"));
  ring.status({ token: true, held: false, alive: ["n1", "n2"], down: ["n3"], passes: 7, gen: 2 });
  const text = m.render();
  assert.match(text, /peerd_events_total\{ev="lock.acquired"\} 2/);
  assert.match(text, /peerd_ring_grants_total 2/);
  assert.match(text, /peerd_ring_lock_wait_seconds_count 2/);
  assert.match(text, /peerd_ring_lock_wait_seconds_bucket\{le="0.05"\} 1/);
  assert.match(text, /peerd_ring_regenerations_total 1/);
  assert.match(text, /peerd_ring_token_here 1/);
  assert.match(text, /peerd_ring_members\{state="down"\} 1/);
  assert.match(text, /peerd_ring_token_passes_total 7/);

  const mc = roleMetrics(m, "multicast");
  mc.event({ ts: 1000, node: "m1", role: "multicast", ev: "mc.sent", id: "m1:1" });
  mc.event({ ts: 1004, node: "m1", role: "multicast", ev: "mc.delivered", id: "m1:1" });
  mc.event({ ts: 1005, node: "m1", role: "multicast", ev: "mc.delivered", id: "m2:1" });
  assert.match(m.render(), /peerd_multicast_deliveries_total 2/);
  assert.match(m.render(), /peerd_multicast_delivery_latency_seconds_count 1\n/);
  assert.match(m.render(), /peerd_multicast_delivery_latency_seconds_sum 0.004\n/);

  const unknown = roleMetrics(new MetricRegistry(), "no-such-role");
  unknown.event(ev("x"));
  unknown.status({});
});

Deno.test("readinessRule() judges ring quorum, multicast view, daemon link, replica status", () => {
  const ring = readinessRule("ring")!;
  assert.equal(ring({ ring: ["a", "b", "c"], alive: ["a", "b"] }).ready, true);
  assert.deepEqual(ring({ ring: ["a", "b", "c"], alive: ["a"] }), {
    ready: false,
    reason: "minority: 1 of 3 ring members alive",
  });
  assert.equal(readinessRule("multicast")!({ state: "joining" }).ready, false);
  assert.equal(readinessRule("multicast")!({ state: "member" }).ready, true);
  assert.match(readinessRule("daemon")!({ link: "down" }).reason!, /broker link down/);
  assert.equal(readinessRule("replica")!({ status: "ACTIVE" }).ready, true);
  assert.equal(readinessRule("frontend")!({ rms: [{ up: false }] }).ready, false);
  assert.equal(readinessRule("echo"), undefined);
});

Deno.test("parseHttpListen() takes host:port, :port or a port, loopback by default", () => {
  assert.deepEqual(parseHttpListen("9100"), { hostname: "127.0.0.1", port: 9100 });
  assert.deepEqual(parseHttpListen(":9100"), { hostname: "127.0.0.1", port: 9100 });
  assert.deepEqual(parseHttpListen("0.0.0.0:80"), { hostname: "0.0.0.0", port: 80 });
  assert.throws(() => parseHttpListen("localhost"), /not host:port or a port/);
  assert.throws(() => parseHttpListen("x:99999"), /out of range/);
});

Deno.test("httpToken() is HMAC-SHA256(secret, peerd-http) in hex; bearerMatches() checks it", async () => {
  const token = await httpToken("s3cret");
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(token, await httpToken("s3cret"));
  assert.notEqual(token, await httpToken("other"));
  const req = (auth?: string) =>
    new Request("http://x/", { headers: auth ? { authorization: auth } : {} });
  assert.equal(bearerMatches(req(`Bearer ${token}`), token), true);
  assert.equal(bearerMatches(req(`bearer ${token}`), token), true);
  assert.equal(bearerMatches(req(`Bearer ${token.slice(1)}`), token), false);
  assert.equal(bearerMatches(req(`Bearer ${token}0`), token), false);
  assert.equal(bearerMatches(req(), token), false);
  assert.equal(bearerMatches(req("Basic abc"), token), false);
  // the openssl command documented in docs/console.md gives the same token
  if (hasExecutable("/usr/bin/openssl")) {
    const out = await new Deno.Command("/usr/bin/openssl", {
      args: ["dgst", "-sha256", "-hmac", "s3cret", "-r"],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = out.stdin.getWriter();
    await w.write(new TextEncoder().encode("peerd-http"));
    await w.close();
    const { stdout } = await out.output();
    assert.equal(new TextDecoder().decode(stdout).split(" ")[0], token);
  }
});

Deno.test("SseStream drops a client whose buffer is full and never blocks the sender", async () => {
  let why = "";
  const s = new SseStream({ maxBufferBytes: 1000, onClose: (w) => why = w });
  let sent = 0;
  for (let i = 0; i < 100; i++) if (s.send({ i, pad: "x".repeat(50) })) sent++;
  assert.ok(sent > 5 && sent < 20, `sent ${sent}`);
  assert.equal(s.closed, true);
  assert.equal(why, "dropped");
  await assert.rejects(s.body.getReader().read(), /SSE client dropped/);
});

Deno.test("readSse() parses what SseStream writes: events, ids, multi-line data", async () => {
  const s = new SseStream();
  s.comment("hello");
  s.send({ a: 1 }, { id: 1 });
  s.send("two\nlines", { event: "note" });
  s.close();
  const got = [];
  for await (const e of readSse(s.body)) got.push(e);
  assert.deepEqual(got, [
    { event: "message", id: "1", data: '{"a":1}' },
    { event: "note", id: undefined, data: "two\nlines" },
  ]);
});

/** A source with an in-process event stream, for the server tests. */
function fakeSource(): NodeHttpSource & { emit(ev: string, f?: Record<string, unknown>): void } {
  const listeners = new Set<(e: EventRecord) => void>();
  return {
    status: () => Promise.resolve({ role: "echo", name: "e1", echoed: 3 }),
    readiness: () => Promise.resolve({ ready: false, reason: "testing" }),
    metrics: () => Promise.resolve("# HELP peerd_x x\n# TYPE peerd_x gauge\npeerd_x 1\n"),
    subscribe: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    emit(ev, f = {}) {
      for (const l of listeners) l({ ts: Date.now(), node: "e1", role: "echo", ev, ...f });
    },
  };
}

Deno.test("NodeHttpServer answers each path with its code and content type; 404, 405, 401", async () => {
  const source = fakeSource();
  const token = await httpToken("k");
  await using server = new NodeHttpServer(source, { hostname: "127.0.0.1", port: 0, token });
  const base = `http://${server.address}`;
  const auth = { authorization: `Bearer ${token}` };
  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(base + path, init);
    return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
  };
  assert.deepEqual(await get("/healthz"), {
    status: 200,
    type: "text/plain; charset=utf-8",
    body: "ok\n",
  });
  assert.equal((await get("/status")).status, 401);
  assert.equal((await get("/metrics", { headers: { authorization: "Bearer nope" } })).status, 401);
  const status = await get("/status", { headers: auth });
  assert.equal(status.status, 200);
  assert.equal(status.type, "application/json; charset=utf-8");
  assert.equal(JSON.parse(status.body).echoed, 3);
  const ready = await get("/readyz", { headers: auth });
  assert.deepEqual([ready.status, ready.body], [503, "not ready: testing\n"]);
  const metrics = await get("/metrics", { headers: auth });
  assert.equal(metrics.type, "text/plain; version=0.0.4; charset=utf-8");
  const missing = await get("/nope/../../etc", { headers: auth });
  assert.equal(missing.status, 404);
  assert.match(missing.body, /paths are \/healthz/);
  const post = await get("/status", { method: "POST", headers: auth, body: "x" });
  assert.equal(post.status, 405);
  // a header far past what any client sends: refused, the server still serves others
  const huge = await rawRequest(
    server.addr.port,
    `GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(1024 * 1024)}\r\n\r\n`,
  );
  // (a reset while the 1 MiB was still being written may swallow the answer)
  if (!huge.writeFailed || huge.text) assert.match(huge.text, /^HTTP\/1\.1 (400|431)/);
  assert.equal((await get("/healthz")).status, 200);
  // a request that is not HTTP at all
  const junk = await rawRequest(server.addr.port, "\x00\x01\x02 not http\r\n\r\n");
  assert.match(junk.text, /^HTTP\/1\.1 400/);
  assert.equal((await get("/healthz")).status, 200);
});

/** Sends raw bytes on a new connection; returns what comes back before the close (bounded). */
async function rawRequest(
  port: number,
  text: string,
): Promise<{ text: string; writeFailed: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = new TextEncoder().encode(text);
    let writeFailed = false;
    try {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    } catch {
      writeFailed = true; // the server closed on us mid-way: read what it said
    }
    const buf = new Uint8Array(4096);
    let out = "";
    const timer = setTimeout(() => conn.close(), 5_000);
    try {
      for (let i = 0; i < 100; i++) {
        const n = await conn.read(buf);
        if (n === null) break;
        out += new TextDecoder().decode(buf.subarray(0, n));
        if (out.includes("\r\n\r\n")) break;
      }
    } catch {
      // reset by the server
    } finally {
      clearTimeout(timer);
    }
    return { text: out, writeFailed };
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

Deno.test("NodeHttpServer /events streams events; past maxSseClients it answers 503", async () => {
  const source = fakeSource();
  await using server = new NodeHttpServer(source, {
    hostname: "127.0.0.1",
    port: 0,
    maxSseClients: 20,
  });
  const controllers: AbortController[] = [];
  const readers: Array<AsyncGenerator<{ data: string }>> = [];
  source.emit("mc.sent", { id: "m0:1" }); // before any client: only replayed when asked
  try {
    for (let i = 0; i < 20; i++) {
      const c = new AbortController();
      controllers.push(c);
      const res = await fetch(`http://${server.address}/events?ev=mc.`, { signal: c.signal });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      readers.push(readSse(res.body!));
    }
    const over = await fetch(`http://${server.address}/events`);
    assert.equal(over.status, 503);
    await over.body?.cancel();
    assert.equal(server.sseClients, 20);
    source.emit("other.event");
    source.emit("mc.delivered", { id: "m1:1" });
    for (const r of readers) {
      const hello = await r.next();
      assert.match(hello.value!.data, /"epoch":"\d+"/);
      const first = await r.next();
      assert.equal(JSON.parse(first.value!.data).id, "m1:1");
    }
  } finally {
    for (const r of readers) await r.return(undefined);
    for (const c of controllers) c.abort();
  }
});

Deno.test("NodeHttpServer /events?replay=N sends recent events first; after=ID skips seen ones", async () => {
  const source = fakeSource();
  await using server = new NodeHttpServer(source, {
    hostname: "127.0.0.1",
    port: 0,
    replayEvents: 3,
  });
  for (let i = 1; i <= 5; i++) source.emit("e", { i });
  const read = async (query: string, count: number) => {
    const c = new AbortController();
    const res = await fetch(`http://${server.address}/events?${query}`, { signal: c.signal });
    const got: Array<{ event: string; id?: string; data: string }> = [];
    const reader = readSse(res.body!);
    try {
      for (let k = 0; k < count; k++) got.push((await reader.next()).value!);
    } finally {
      await reader.return(undefined);
      c.abort();
    }
    return got;
  };
  const all = await read("replay=10", 4);
  const epoch = JSON.parse(all[0].data).epoch;
  assert.deepEqual(all.slice(1).map((e) => [e.id, JSON.parse(e.data).i]), [
    ["3", 3],
    ["4", 4],
    ["5", 5],
  ]);
  const later = read(`replay=10&epoch=${epoch}&after=4`, 3);
  await waitFor(() => server.sseClients === 1);
  source.emit("e", { i: 6 });
  assert.deepEqual((await later).slice(1).map((e) => e.id), ["5", "6"]);
  const otherEpoch = await read("replay=2&epoch=1&after=5", 3);
  assert.deepEqual(otherEpoch.slice(1).map((e) => e.id), ["5", "6"]);
});

Deno.test("NodeHttpServer drops a slow /events client; the sender and other clients go on", async () => {
  const source = fakeSource();
  let dropped = 0;
  await using server = new NodeHttpServer(source, {
    hostname: "127.0.0.1",
    port: 0,
    sseBufferBytes: 2 * 1024 * 1024,
    onSseDrop: () => dropped++,
  });
  // the slow client: asks for /events and then never reads
  const slow = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const fast = new AbortController();
  try {
    await slow.write(new TextEncoder().encode("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    await waitFor(() => server.sseClients === 1);
    const res = await fetch(`http://${server.address}/events`, { signal: fast.signal });
    await waitFor(() => server.sseClients === 2);
    // the fast client reads everything until "after"
    const fastCount = (async () => {
      let n = 0;
      for await (const e of readSse(res.body!)) {
        if (e.event === "hello") continue;
        n++;
        if (JSON.parse(e.data).ev === "after") return n;
      }
      return -1;
    })();
    const pad = "x".repeat(16 * 1024);
    let longest = 0;
    let sent = 0;
    // at most 64 MiB: far past the kernel's socket buffers and the 2 MiB per client
    for (let i = 0; i < 4096 && dropped === 0; i++) {
      const s = performance.now();
      source.emit("big", { i, pad });
      sent++;
      longest = Math.max(longest, performance.now() - s);
      if (i % 16 === 15) await new Promise((r) => setTimeout(r, 1)); // the server writes
    }
    assert.equal(dropped, 1, "the slow client was dropped");
    assert.ok(longest < 1_000, `one emit took ${longest} ms`);
    source.emit("after", {});
    assert.equal(await fastCount, sent + 1, "the fast client got every event");
    assert.equal(server.sseClients, 1);
  } finally {
    fast.abort();
    slow.close();
  }
});

Deno.test("parseEventSelection() reads ev and thin prefix lists and thin_ms; refuses bad ones", () => {
  const sel = parseEventSelection(new URLSearchParams("ev=lock.,token., ready&thin=lock."));
  assert.deepEqual(sel, {
    prefixes: ["lock.", "token.", "ready"],
    thin: ["lock."],
    thinMs: 250,
    thinKeep: 0,
  });
  assert.equal(parseEventSelection(new URLSearchParams("thin=x&thin_keep=40")).thinKeep, 40);
  assert.throws(
    () => parseEventSelection(new URLSearchParams("thin_keep=-1")),
    /Cannot read thin_keep/,
  );
  assert.equal(selects(sel, "lock.acquired"), true);
  assert.equal(selects(sel, "ready"), true);
  assert.equal(selects(sel, "rumor.learned"), false);
  assert.equal(thins(sel, "lock.acquired"), true);
  assert.equal(thins(sel, "token.created"), false);
  const all = parseEventSelection(new URLSearchParams(""));
  assert.equal(selects(all, "anything"), true);
  assert.equal(thins(all, "anything"), false);
  assert.equal(parseEventSelection(new URLSearchParams("thin=x&thin_ms=50")).thinMs, 50);
  for (const bad of ["0", "abc", "1.5", "9999999"]) {
    assert.throws(
      () => parseEventSelection(new URLSearchParams(`thin_ms=${bad}`)),
      /Cannot read thin_ms/,
    );
  }
  const many = Array.from({ length: 65 }, (_, i) => `p${i}`).join(",");
  assert.throws(() => parseEventSelection(new URLSearchParams(`ev=${many}`)), /more than 64/);
});

Deno.test("ThinWindow(keep) passes the first keep of a name per window whole, then counts", () => {
  const w = new ThinWindow<number>(2);
  assert.deepEqual([1, 2, 3, 4, 5].map((i) => w.add("mc.delivered", i, i)), [
    true,
    true,
    false,
    false,
    false,
  ]);
  assert.equal(w.add("mc.sent", 6, 6), true);
  assert.deepEqual(w.take(), [{ ev: "mc.delivered", id: 5, last: 5, count: 3 }]);
  // a fresh window: whole again
  assert.equal(w.add("mc.delivered", 7, 7), true);
  assert.deepEqual(w.take(), []);
});

Deno.test("ThinWindow keeps per name the last event and the exact count, by last id", () => {
  const w = new ThinWindow<string>();
  w.add("lock.requested", 1, "r1");
  w.add("lock.acquired", 2, "a1");
  w.add("lock.requested", 3, "r2");
  w.add("lock.released", 4, "x1");
  w.add("lock.acquired", 5, "a2");
  assert.equal(w.size, 3);
  assert.deepEqual(w.take(), [
    { ev: "lock.requested", id: 3, last: "r2", count: 2 },
    { ev: "lock.released", id: 4, last: "x1", count: 1 },
    { ev: "lock.acquired", id: 5, last: "a2", count: 2 },
  ]);
  assert.equal(w.size, 0);
  assert.deepEqual(w.take(), []);
});

Deno.test("NodeHttpServer /events?thin=P sends per window the last event and the count; others whole", async () => {
  const source = fakeSource();
  await using server = new NodeHttpServer(source, { hostname: "127.0.0.1", port: 0 });
  const bad = await fetch(`http://${server.address}/events?thin=lock.&thin_ms=nope`);
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /^bad request: Cannot read thin_ms/);
  const c = new AbortController();
  const res = await fetch(
    `http://${server.address}/events?ev=lock.,token.&thin=lock.&thin_ms=100`,
    { signal: c.signal },
  );
  const reader = readSse(res.body!);
  try {
    assert.equal((await reader.next()).value!.event, "hello");
    for (let i = 1; i <= 1000; i++) {
      source.emit("lock.acquired", { fence: i });
      source.emit("lock.released", { fence: i });
      source.emit("other", { i }); // not asked for
    }
    source.emit("token.created", { gen: 7 });
    const got: Array<{ event: string; id?: string; data: Record<string, unknown> }> = [];
    for (let k = 0; k < 3; k++) {
      const m = (await reader.next()).value!;
      got.push({ event: m.event, id: m.id, data: JSON.parse(m.data) });
    }
    // the token event goes out whole at once; the lock events as one summary per name
    assert.equal(got[0].event, "message");
    assert.equal(got[0].data.ev, "token.created");
    assert.equal(got[0].id, "3001");
    const summaries = got.slice(1);
    assert.deepEqual(summaries.map((s) => [s.event, s.id, s.data.ev, s.data.count]), [
      ["summary", "2998", "lock.acquired", 1000],
      ["summary", "2999", "lock.released", 1000],
    ]);
    assert.equal((summaries[0].data.last as Record<string, unknown>).fence, 1000);
    assert.equal((summaries[1].data.last as Record<string, unknown>).ev, "lock.released");
  } finally {
    await reader.return(undefined);
    c.abort();
  }
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), "condition not reached within 5 s");
}

Deno.test("RecentEvents keeps the last N events oldest first, lines as bytes, long lines and records by reference", () => {
  const rec = (ev: string, extra: Record<string, unknown> = {}): EventRecord => ({
    ts: 1,
    node: "n1",
    role: "ring",
    ev,
    ...extra,
  });
  const ring = new RecentEvents(3);
  assert.deepEqual(ring.tail(10), []);
  const long = JSON.stringify(rec("big", { pad: "x".repeat(RECENT_SLOT_BYTES) }));
  const record = rec("no.line", { n: 7 });
  ring.add(1, rec("a"), '{"ev":"a"}');
  ring.add(2, rec("b"), '{"ev":"b","name":"héllo ✓"}'); // multi-byte UTF-8 read back whole
  assert.deepEqual(ring.tail(10), [
    { id: 1, ev: "a", line: '{"ev":"a"}' },
    { id: 2, ev: "b", line: '{"ev":"b","name":"héllo ✓"}' },
  ]);
  ring.add(3, rec("big"), long);
  ring.add(4, record); // no events file: no line made, the record is kept
  assert.equal(ring.size, 3);
  assert.deepEqual(ring.tail(10), [
    { id: 2, ev: "b", line: '{"ev":"b","name":"héllo ✓"}' },
    { id: 3, ev: "big", line: long },
    { id: 4, ev: "no.line", event: record },
  ]);
  assert.deepEqual(ring.tail(1), [{ id: 4, ev: "no.line", event: record }]);
  // a slot reused: a short line after a long one and after a record is its own bytes
  ring.add(5, rec("c"), '{"ev":"c"}');
  ring.add(6, rec("d"), '{"ev":"d"}');
  ring.add(7, rec("e"), '{"ev":"e"}');
  assert.deepEqual(ring.tail(3).map((e) => [e.id, e.line]), [
    [5, '{"ev":"c"}'],
    [6, '{"ev":"d"}'],
    [7, '{"ev":"e"}'],
  ]);
  const none = new RecentEvents(0);
  none.add(1, rec("a"), "{}");
  assert.deepEqual(none.tail(5), []);
});

/**
 * The one reconnecting request/reply link (`PeerLink`, `PeerLinks`) that ratings, multicast
 * and ring use: backoff on a clock the test moves, one dial at a time, reset, nudge,
 * heartbeat give-up, patient requests; and the shared timeout timer of `RpcClient`.
 */
import assert from "node:assert/strict";
import {
  type Clock,
  ConnectionClosedError,
  type DialOptions,
  FrameServer,
  LinkDownError,
  type Message,
  type PeerAddress,
  PeerLink,
  PeerLinks,
  ProtocolError,
  RpcClient,
} from "../mod/wire/mod.ts";

/** A clock the test moves by hand: `sleep` resolves once `advance` passes its time. */
class ManualClock implements Clock {
  t = 10_000;
  sleeps: Array<{ at: number; ms: number; resolve: () => void }> = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { at: this.t + ms, ms, resolve };
      this.sleeps.push(entry);
      signal?.addEventListener("abort", () => {
        this.sleeps = this.sleeps.filter((s) => s !== entry);
        resolve();
      }, { once: true });
    });
  }
  advance(ms: number): void {
    this.t += ms;
    const due = this.sleeps.filter((s) => s.at <= this.t);
    this.sleeps = this.sleeps.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
  }
}

/** Lets pending promise callbacks and I/O run (bounded). */
async function until(what: string, ok: () => boolean, ms = 3_000): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function echoServer(name = "s", handlers: Record<string, (m: Message) => unknown> = {}) {
  let sessions = 0;
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name },
    handlers: { "t.echo": (m: Message) => ({ t: "t.echo.ok", n: m.n }), ...handlers } as never,
    onSession: () => {
      sessions++;
    },
  });
  return { server, sessions: () => sessions };
}

/** A dialer that refuses while `refusing` is set, and counts attempts. */
function switchableDialer() {
  const state = { refusing: true, attempts: 0 };
  const connect = (address: PeerAddress, options: DialOptions) => {
    state.attempts++;
    if (state.refusing) return Promise.reject(new Error("Connection refused (test)"));
    return RpcClient.connect(address, options);
  };
  return { state, connect };
}

Deno.test("PeerLink (persistent) redials after each failure with the capped backoff, on its clock", async () => {
  const clock = new ManualClock();
  const dialer = switchableDialer();
  const { server } = echoServer();
  let ups = 0;
  const link = new PeerLink({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "c",
    persistent: true,
    clock,
    backoff: { initialMs: 100, maxMs: 400, jitter: 0 },
    connect: dialer.connect,
    onUp: () => ups++,
  });
  try {
    link.start();
    link.start(); // idempotent: one loop
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      await until("a backoff wait", () => clock.sleeps.length === 1);
      assert.equal(dialer.state.attempts, i + 1, "one dial per turn");
      delays.push(clock.sleeps[0].ms);
      clock.advance(clock.sleeps[0].ms);
    }
    assert.deepEqual(delays, [100, 200, 400, 400]);
    assert.equal(link.failures, 4);
    await until("the fifth attempt", () => dialer.state.attempts === 5);
    await until("its wait", () => clock.sleeps.length === 1);
    // the peer was heard from: nudge ends the wait now, the dial succeeds, the backoff resets
    dialer.state.refusing = false;
    link.nudge();
    await until("up", () => link.up);
    assert.equal(ups, 1);
    assert.equal(link.failures, 0);
    assert.equal((await link.request({ t: "t.echo", n: 1 })).n, 1);
  } finally {
    await link.close();
    await server.close();
  }
  const attempts = dialer.state.attempts;
  clock.advance(10_000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(dialer.state.attempts, attempts, "no dial after close");
});

Deno.test("PeerLink (persistent): a request while down fails with LinkDownError at once; a patient one waits for the link", async () => {
  const clock = new ManualClock();
  const dialer = switchableDialer();
  const { server } = echoServer();
  const link = new PeerLink({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "c",
    peer: "s",
    persistent: true,
    clock,
    backoff: { initialMs: 100, maxMs: 100, jitter: 0 },
    connect: dialer.connect,
  });
  try {
    link.start();
    await until("the first wait", () => clock.sleeps.length === 1);
    await assert.rejects(
      link.request({ t: "t.echo" }),
      (e: Error) => e instanceof LinkDownError && e.peer === "s" && /not connected/.test(e.message),
    );
    const patient = link.request({ t: "t.echo", n: 7 }, { timeoutMs: 5_000, patient: true });
    dialer.state.refusing = false;
    clock.advance(100);
    assert.equal((await patient).n, 7);
  } finally {
    await link.close();
    await server.close();
  }
});

Deno.test("PeerLink (on demand): one shared dial; inside the backoff a request fails, a patient one waits it out", async () => {
  const clock = new ManualClock();
  const dialer = switchableDialer();
  const { server, sessions } = echoServer();
  const link = new PeerLink({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "c",
    clock,
    backoff: { initialMs: 100, maxMs: 100, jitter: 0 },
    connect: dialer.connect,
  });
  try {
    await assert.rejects(link.request({ t: "t.echo" }), LinkDownError);
    assert.equal(dialer.state.attempts, 1);
    await assert.rejects(
      link.request({ t: "t.echo" }),
      (e: Error) => e instanceof LinkDownError && /retrying in 100 ms/.test(e.message),
    );
    assert.equal(dialer.state.attempts, 1, "no dial inside the backoff");
    dialer.state.refusing = false;
    const patient = link.request({ t: "t.echo", n: 2 }, { patient: true });
    await until("the patient wait", () => clock.sleeps.length === 1);
    clock.advance(101);
    assert.equal((await patient).n, 2);
    // many requests at once share one connection
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, n) => link.request({ t: "t.echo", n })),
    );
    assert.deepEqual(replies.map((r) => r.n), Array.from({ length: 50 }, (_, n) => n));
    assert.equal(sessions(), 1);
    assert.equal(dialer.state.attempts, 2);
  } finally {
    await link.close();
    await server.close();
  }
});

Deno.test("PeerLink.reset() drops the connection (pending requests reject) and the link redials at once", async () => {
  let release = () => {};
  const stalled = new Promise<void>((r) => release = r);
  const { server, sessions } = echoServer("s", {
    "t.stall": async () => {
      await stalled;
      return undefined;
    },
  });
  const ups: number[] = [];
  const downs: number[] = [];
  const link = new PeerLink({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "c",
    persistent: true,
    backoff: { initialMs: 60_000, maxMs: 60_000 }, // a redial after reset must not wait this
    onUp: () => ups.push(performance.now()),
    onDown: () => downs.push(performance.now()),
  });
  try {
    link.start();
    await until("up", () => link.up);
    const waiting = link.request({ t: "t.stall" }, { timeoutMs: 30_000 });
    link.reset();
    assert.equal(link.up, false, "down at once");
    assert.equal(link.send({ t: "t.echo" }), false, "a send while down is dropped");
    await assert.rejects(waiting, ConnectionClosedError);
    await until("up again", () => link.up);
    assert.deepEqual([ups.length, downs.length, sessions()], [2, 1, 2]);
  } finally {
    release();
    await link.close();
    await server.close();
  }
});

Deno.test("PeerLink.request({resetOnTimeout}) closes a silent connection; a heartbeat gives up on a silent peer", async () => {
  let silent = false;
  let release = () => {};
  const stalled = new Promise<void>((r) => release = r);
  const stall = async () => {
    await stalled;
    return undefined;
  };
  const { server, sessions } = echoServer("s", {
    "t.ping": () => silent ? stall() : { t: "t.pong" },
    "t.stall": stall,
  });
  let downs = 0;
  const link = new PeerLink({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "c",
    persistent: true,
    backoff: { initialMs: 20, maxMs: 20 },
    heartbeat: { probe: { t: "t.ping" }, intervalMs: 20, silenceMs: 150 },
    onDown: () => downs++,
  });
  try {
    link.start();
    await until("up", () => link.up);
    await assert.rejects(
      link.request({ t: "t.stall" }, { timeoutMs: 100, resetOnTimeout: true }),
      (e: Error) => e instanceof ProtocolError && e.code === "timeout",
    );
    await until("a fresh connection", () => link.up && sessions() === 2);
    assert.equal(downs, 1);
    // the peer goes silent: the heartbeat closes the connection, the link redials
    silent = true;
    await until("the heartbeat to give up", () => downs === 2);
    silent = false;
    await until("up again", () => link.up && sessions() >= 3);
  } finally {
    release();
    await link.close();
    await server.close();
  }
});

Deno.test("PeerLinks routes by member name; unknown members act as down links", async () => {
  const a = echoServer("a");
  const b = echoServer("b");
  const up: string[] = [];
  const links = new PeerLinks([
    { name: "a", hostname: "127.0.0.1", port: a.server.port },
    { name: "b", hostname: "127.0.0.1", port: b.server.port },
  ], { role: "test", name: "c", persistent: true, onUp: (n) => up.push(n) });
  try {
    links.start();
    await until("both up", () => links.upNames().length === 2);
    assert.deepEqual(up.sort(), ["a", "b"]);
    assert.equal((await links.request("b", { t: "t.echo", n: 3 })).n, 3);
    assert.equal(links.connected("a"), true);
    assert.equal(links.send("zz", { t: "t.echo" }), false);
    await assert.rejects(links.request("zz", { t: "t.echo" }), LinkDownError);
  } finally {
    await links.close();
    await links.close(); // safe twice
    await a.server.close();
    await b.server.close();
  }
});

Deno.test("RpcClient.request() timeouts share one timer: each request still times out on its own deadline", async () => {
  let release = () => {};
  const stalled = new Promise<void>((r) => release = r);
  const { server } = echoServer("s", {
    "t.stall": async () => {
      await stalled;
      return undefined;
    },
  });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const t0 = performance.now();
    const order: string[] = [];
    // (the server answers one session's frames in order: the echo goes first)
    const answered = client.request({ t: "t.echo", n: 5 }, { timeoutMs: 50 });
    const late = client.request({ t: "t.stall" }, { timeoutMs: 300 }).catch((e) => {
      order.push("late");
      return e;
    });
    const early = client.request({ t: "t.stall" }, { timeoutMs: 80 }).catch((e) => {
      order.push(`early ${Math.round(performance.now() - t0) >= 79}`);
      return e;
    });
    assert.equal((await answered).n, 5);
    assert.ok((await early) instanceof ProtocolError);
    assert.ok((await late) instanceof ProtocolError);
    assert.deepEqual(order, ["early true", "late"]);
    assert.ok(performance.now() - t0 >= 299);
    assert.equal(client.pending, 0);
  } finally {
    release();
    await client.close();
    await server.close();
  }
});

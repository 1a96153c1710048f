import assert from "node:assert/strict";
import {
  ConnectionClosedError,
  FrameServer,
  heartbeat,
  type Message,
  ProtocolError,
  RpcClient,
} from "../mod/wire/mod.ts";

function server(handlers: Record<string, (m: Message) => unknown>) {
  return new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "test", name: "s" },
    handlers: handlers as never,
  });
}

Deno.test("heartbeat() keeps probing a peer that answers (an error reply counts) and stops on abort", async () => {
  let probes = 0;
  let refused = 0;
  const s = server({
    "t.ping": () => (probes++, { t: "t.pong" }),
    "t.refuse": () => {
      refused++;
      throw new ProtocolError("unavailable", "Cannot answer: refusing probes (test)");
    },
  });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: s.port });
  const stop = new AbortController();
  try {
    const beat = heartbeat(client, {
      probe: { t: "t.ping" },
      intervalMs: 20,
      silenceMs: 500,
      signal: stop.signal,
    });
    for (let i = 0; i < 200 && probes < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(probes >= 3);
    stop.abort();
    assert.equal(await beat, "stopped");
    assert.equal(client.conn.closed, false);
    // a probe the server refuses gets an error reply: still an answer; the link stays up
    // through many more probes than the silence allows unanswered
    const stop2 = new AbortController();
    const beat2 = heartbeat(client, {
      probe: { t: "t.refuse" },
      intervalMs: 20,
      silenceMs: 100,
      signal: stop2.signal,
    });
    for (let i = 0; i < 500 && refused < 10; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(refused >= 10, `refused ${refused} probes`);
    stop2.abort();
    assert.equal(await beat2, "stopped");
    assert.equal(client.conn.closed, false);
  } finally {
    await client.close();
    await s.close();
  }
});

Deno.test("heartbeat() closes a connection whose peer stays silent: pending requests fail at once", async () => {
  let release: () => void = () => {};
  const stalled = new Promise<void>((r) => (release = r));
  const s = server({
    "t.ping": async () => {
      await stalled; // like a peer behind a partition
      return { t: "t.pong" };
    },
    "t.work": () => ({ t: "t.done" }),
  });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    const beat = heartbeat(client, { probe: { t: "t.ping" }, intervalMs: 20, silenceMs: 200 });
    await new Promise((r) => setTimeout(r, 60));
    const work = client.request({ t: "t.work" }, { timeoutMs: 30_000 }); // queued behind the stall
    assert.equal(await beat, "silent");
    await assert.rejects(work, ConnectionClosedError);
    assert.equal(client.conn.closed, true);
  } finally {
    release();
    await client.close();
    await s.close();
  }
});

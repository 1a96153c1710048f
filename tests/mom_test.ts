import assert from "node:assert/strict";
import { LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import {
  MomClient,
  MomError,
  type MomMessage,
  type MomUser,
  topicMatches,
} from "../mod/mom/mod.ts";
import { FrameEncoder, RpcClient } from "../mod/wire/mod.ts";

const decoder = new TextDecoder();

function addr(port: number) {
  return { hostname: "127.0.0.1", port };
}

async function momCluster(daemons: number, extra: { secret?: string } = {}) {
  return await LocalCluster.start({
    nodes: [
      { name: "b1", role: "broker" },
      ...Array.from({ length: daemons }, (_, i) => ({ name: `d${i + 1}`, role: "daemon" })),
    ],
    ...extra,
  });
}

async function linked(cluster: LocalCluster, name: string) {
  await waitUntil(async () => (await cluster.node(name).ctl("status")).link === "up", {
    timeoutMs: 15_000,
    what: `${name} link up`,
  });
}

/** Receives until `want` returns true or `timeoutMs` passes; returns everything received. */
async function drain(
  user: MomUser,
  want: (got: MomMessage[]) => boolean,
  timeoutMs: number,
): Promise<MomMessage[]> {
  const got: MomMessage[] = [];
  const deadline = performance.now() + timeoutMs;
  while (!want(got) && performance.now() < deadline) {
    got.push(
      ...await user.receiveBatch({ timeout: Math.min(500, deadline - performance.now()) }),
    );
  }
  await user.ack();
  return got;
}

async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert(err instanceof MomError, `expected MomError, got ${String(err)}`);
    return err.code;
  }
  throw new Error("expected an error");
}

Deno.test("broker + 3 daemons, 6 users: each gets exactly its topics' publications, wildcards, none of its own, per-publisher order", async () => {
  await using cluster = await momCluster(3);
  for (const d of ["d1", "d2", "d3"]) await linked(cluster, d);
  const clients = await Promise.all(
    ["d1", "d2", "d3"].map((d) => MomClient.connect(addr(cluster.node(d).port))),
  );
  try {
    const users: MomUser[] = [];
    for (let i = 0; i < 6; i++) users.push(await clients[i % 3].create());
    assert.deepEqual(users.map((u) => u.id), [1, 2, 3, 4, 5, 6]);
    const subs: string[][] = [
      ["Museum/Doors/+"],
      ["Museum/#"],
      ["Museum/Doors/Door0", "Park/+/Gate"],
      ["Park/#"],
      ["+/Doors/Door1"],
      ["Museum/Doors/Door0", "Park/North/Gate"],
    ];
    for (let i = 0; i < 6; i++) for (const t of subs[i]) await users[i].subscribe(t);
    const topics = ["Museum/Doors/Door0", "Museum/Doors/Door1", "Museum/Lights", "Park/North/Gate"];
    // every user publishes 10 messages round-robin over the topics, interleaved
    const sent: Array<{ from: number; topic: string; n: number; id: string }> = [];
    const pending: Promise<void>[] = [];
    for (let n = 0; n < 10; n++) {
      for (const u of users) {
        const topic = topics[(n + u.id) % topics.length];
        pending.push(
          u.publish(topic, `${u.id}:${n}`).then((id) => {
            sent.push({ from: u.id, topic, n, id });
          }),
        );
      }
    }
    await Promise.all(pending);
    assert.equal(sent.length, 60);
    for (let i = 0; i < 6; i++) {
      const u = users[i];
      const expected = sent.filter((s) =>
        s.from !== u.id && subs[i].some((p) => topicMatches(p, s.topic))
      );
      const got = await drain(u, (g) => g.length >= expected.length, 15_000);
      // nothing more arrives
      const extra = await u.receiveBatch({ timeout: 300 });
      assert.equal(extra.length, 0, `user ${u.id} got extra ${JSON.stringify(extra)}`);
      assert.deepEqual(
        got.map((m) => m.id).sort(),
        expected.map((s) => s.id).sort(),
        `user ${u.id}`,
      );
      for (const m of got) {
        assert.notEqual(m.from, u.id, "own publication delivered");
        assert(subs[i].some((p) => topicMatches(p, m.topic)));
      }
      // per-publisher order: payload counters increase
      const lastBy = new Map<number, number>();
      for (const m of got) {
        const [from, n] = decoder.decode(m.payload).split(":").map(Number);
        assert.equal(from, m.from);
        assert((lastBy.get(from) ?? -1) < n, `user ${u.id}: ${from}:${n} out of order`);
        lastBy.set(from, n);
      }
    }
    // own publications only when asked
    await users[0].subscribe("Echo/me", { own: true });
    const id = await users[0].publish("Echo/me", "mine");
    const mine = await users[0].receive({ timeout: 5_000 });
    assert.equal(mine?.id, id);
    const status = await cluster.node("b1").ctl("status");
    assert.equal(status.users, 6);
    assert.deepEqual([...(status.daemons_connected as string[])].sort(), ["d1", "d2", "d3"]);
    assert.equal(status.messages_in, 61);
    const d1 = await cluster.node("d1").ctl("status");
    assert.equal(d1.link, "up");
    assert.deepEqual(d1.users, [1, 4]);
    const evs = cluster.node("b1").events().map((e) => e.ev);
    for (const ev of ["ready", "user.created", "sub.added", "msg.published", "link.up"]) {
      assert(evs.includes(ev), `broker event ${ev}`);
    }
    const delivered = cluster.node("d2").events().filter((e) => e.ev === "msg.delivered");
    assert(delivered.length > 0 && delivered.every((e) => typeof e.id === "string" && e.user));
    // destroy unsubscribes from everything; the id is never reused
    const gone = users[5];
    await gone.destroy();
    assert.equal(await errorCode(gone.publish("Park/North/Gate", "x")), "unknown_user");
    const after = await cluster.node("b1").ctl("status");
    assert.equal(after.users, 5);
    assert.equal(after.subscriptions, (status.subscriptions as number) - 2);
    const removed = cluster.node("b1").events().filter((e) =>
      e.ev === "sub.removed" && e.user === gone.id
    );
    assert.equal(removed.length, 2);
    assert.equal((await clients[0].create()).id, 7);
  } finally {
    for (const c of clients) await c.close();
  }
});

Deno.test("10,000 acknowledged publications survive kill -9 of the broker (twice) and of a subscriber's daemon: each received exactly once", async () => {
  await using cluster = await momCluster(2);
  await linked(cluster, "d1");
  await linked(cluster, "d2");
  const pubClient = await MomClient.connect(addr(cluster.node("d1").port));
  const localClient = await MomClient.connect(addr(cluster.node("d1").port));
  const remoteClient = await MomClient.connect(addr(cluster.node("d2").port));
  try {
    const publisher = await pubClient.create();
    const local = await localClient.create(); // on the publisher's daemon
    const remote = await remoteClient.create(); // its daemon is killed once
    await local.subscribe("load/+");
    await remote.subscribe("load/#");
    const total = 10_000;
    const acked: string[] = [];
    const receivedBy = new Map<number, string[]>([[local.id, []], [remote.id, []]]);
    let publishing = true;
    const receivers = [local, remote].map(async (u) => {
      const list = receivedBy.get(u.id)!;
      const deadline = performance.now() + 75_000;
      while (performance.now() < deadline) {
        if (!publishing && list.length >= acked.length) break;
        const batch = await u.receiveBatch({ timeout: 500 });
        for (const m of batch) list.push(m.id);
      }
      await u.ack();
    });
    const b1 = cluster.node("b1");
    const d2 = cluster.node("d2");
    const steps: Array<[number, () => Promise<unknown>]> = [
      [1500, async () => {
        await linked(cluster, "d1");
        await b1.kill("SIGKILL");
      }],
      [3000, () => b1.start()],
      [4500, () => d2.kill("SIGKILL")],
      [6000, () => d2.start()],
      [7000, async () => {
        await linked(cluster, "d1");
        await linked(cluster, "d2");
        await b1.kill("SIGKILL");
      }],
      [8000, () => b1.start()],
    ];
    const window = 200;
    const inFlight = new Set<Promise<void>>();
    let chain: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < total; i++) {
      if (steps.length > 0 && acked.length >= steps[0][0]) {
        // one kill or restart at a time, while publications keep flowing
        await chain;
        chain = steps.shift()![1]();
      }
      const p = publisher.publish(`load/${i % 7}`, `m${i}`).then((id) => {
        acked.push(id);
      });
      inFlight.add(p);
      p.finally(() => inFlight.delete(p));
      if (inFlight.size >= window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    await chain;
    for (const [, step] of steps) await step();
    publishing = false;
    assert.equal(acked.length, total);
    await Promise.all(receivers);
    if (Deno.env.get("MOM_DEBUG")) {
      for (const n of cluster.nodes) console.error(`== ${n.name}\n${n.stderr.slice(-3000)}`);
    }
    for (const [user, list] of receivedBy) {
      assert.equal(new Set(list).size, list.length, `user ${user} got duplicates`);
      const got = new Set(list);
      const missing = acked.filter((id) => !got.has(id));
      assert.equal(missing.length, 0, `user ${user} is missing ${missing.slice(0, 5)}…`);
      assert.equal(list.length, total);
      // per-publisher order
      const seqs = list.map((id) => Number(id.split(":")[1]));
      for (let i = 1; i < seqs.length; i++) assert(seqs[i] > seqs[i - 1], "out of order");
    }
    // subscriptions and users survived the restarts; the backlog is drained
    const status = await waitUntil(async () => {
      const s = await b1.ctl("status");
      const backlog = s.backlog as Record<string, number>;
      return backlog.d1 === 0 && backlog.d2 === 0 ? s : undefined;
    }, { timeoutMs: 10_000, what: "empty backlog" });
    assert.equal(status.users, 3);
    assert.equal(status.subscriptions, 2);
    await waitUntil(
      () => cluster.node("d1").events().filter((e) => e.ev === "link.down").length >= 2,
      { what: "two link.down events on d1" },
    );
  } finally {
    await pubClient.close();
    await localClient.close();
    await remoteClient.close();
  }
});

Deno.test("kill -9 of the publisher's daemon and the broker together: acknowledged publications arrive once, none twice", async () => {
  await using cluster = await momCluster(2);
  await linked(cluster, "d1");
  await linked(cluster, "d2");
  const pubClient = await MomClient.connect(addr(cluster.node("d1").port));
  const subClient = await MomClient.connect(addr(cluster.node("d2").port));
  try {
    const publisher = await pubClient.create();
    const subscriber = await subClient.create();
    await subscriber.subscribe("both/#");
    const acked = new Set<string>();
    const attempted = new Set<string>();
    let failures = 0;
    const d1 = cluster.node("d1");
    const b1 = cluster.node("b1");
    for (let i = 0; i < 3_000; i++) {
      if (i === 1_000) {
        await Promise.all([d1.kill("SIGKILL"), b1.kill("SIGKILL")]);
        await Promise.all([d1.start(), b1.start()]);
      }
      attempted.add(`p${i}`);
      try {
        await publisher.publish(`both/${i % 3}`, `p${i}`);
        acked.add(`p${i}`);
      } catch (err) {
        assert(err instanceof MomError && err.code === "unavailable", String(err));
        failures++;
      }
    }
    assert(acked.size >= 2_990, `only ${acked.size} acked (${failures} failures)`);
    const got = await drain(subscriber, (g) => {
      const payloads = new Set(g.map((m) => decoder.decode(m.payload)));
      return [...acked].every((p) => payloads.has(p));
    }, 30_000);
    const payloads = got.map((m) => decoder.decode(m.payload));
    assert.equal(new Set(payloads).size, payloads.length, "duplicates");
    for (const p of acked) assert(payloads.includes(p), `missing ${p}`);
    for (const p of payloads) assert(attempted.has(p), `unknown ${p}`);
  } finally {
    await pubClient.close();
    await subClient.close();
  }
});

Deno.test("bad input gets clear errors and loses nothing: topics, users, other daemon's user, garbage frames, a daemon gone mid-frame", async () => {
  await using cluster = await momCluster(2);
  await linked(cluster, "d1");
  await linked(cluster, "d2");
  const c1 = await MomClient.connect(addr(cluster.node("d1").port));
  const c2 = await MomClient.connect(addr(cluster.node("d2").port));
  try {
    const a = await c1.create();
    const b = await c2.create();
    await b.subscribe("ok/topic");
    assert.equal(await errorCode(a.publish("a/+/b", "x")), "bad_topic");
    assert.equal(await errorCode(a.publish("", "x")), "bad_topic");
    assert.equal(await errorCode(a.publish("t".repeat(256), "x")), "bad_topic");
    assert.equal(await errorCode(a.subscribe("a/#/b")), "bad_topic");
    assert.equal(await errorCode(a.subscribe("a+")), "bad_topic");
    assert.equal(await errorCode(b.subscribe("ok/topic")), "already_subscribed");
    assert.equal(await errorCode(b.unsubscribe("never/subscribed")), "not_subscribed");
    assert.equal(await errorCode(c1.user(9999).publish("ok/topic", "x")), "unknown_user");
    assert.equal(await errorCode(c1.attach(9999)), "unknown_user");
    assert.equal(await errorCode(c1.user(b.id).receive({ timeout: 0 })), "wrong_daemon");
    assert.equal(await errorCode(c1.attach(b.id)), "wrong_daemon");
    // wrong field types
    const raw = await RpcClient.connect(addr(cluster.node("d1").port));
    try {
      await assert.rejects(
        raw.request({ t: "publish", user: "x", topic: "ok/topic" }),
        /bad_field/,
      );
      await assert.rejects(
        raw.request({ t: "receive", user: a.id, after: -1, max: 1, wait: 0 }),
        /bad_field/,
      );
    } finally {
      await raw.close();
    }
    // garbage bytes to the daemon and to the broker
    for (const node of [cluster.node("d1"), cluster.node("b1")]) {
      const conn = await Deno.connect(addr(node.port));
      try {
        await conn.write(crypto.getRandomValues(new Uint8Array(2048)));
        const buf = new Uint8Array(4096);
        for (let i = 0; i < 50; i++) if ((await conn.read(buf)) === null) break;
      } finally {
        conn.close();
      }
    }
    // a "daemon" that says hello to the broker, starts a frame and disappears mid-frame
    {
      const conn = await Deno.connect(addr(cluster.node("b1").port));
      const enc = new FrameEncoder();
      await conn.write(enc.encode({ t: "hello", v: 1, role: "daemon", name: "dz" }));
      const pub = enc.encode({ t: "pub", seq: 1, user: a.id, topic: "ok/topic", payload: "half" });
      await conn.write(pub.subarray(0, pub.length - 5));
      conn.close();
    }
    // a pub from a connection that never attached is refused
    const sneaky = await RpcClient.connect(addr(cluster.node("b1").port), {
      role: "daemon",
      name: "d1",
    });
    try {
      await assert.rejects(
        sneaky.request({ t: "pub", seq: 1, user: a.id, topic: "ok/topic", payload: "x" }),
        /attach first/,
      );
    } finally {
      await sneaky.close();
    }
    // an attached daemon's malformed pubs frames are refused whole, with the reason
    const rogue = await RpcClient.connect(addr(cluster.node("b1").port), {
      role: "daemon",
      name: "dx",
    });
    try {
      await rogue.request({ t: "attach", epoch: "rogue", acked: 0 });
      const one = new Uint8Array([1]);
      for (
        const bad of [
          { users: [a.id, a.id], topics: ["ok/topic"], payloads: [one] },
          { users: [a.id], topics: ["ok/topic"], payloads: ["text"] },
          { users: [0], topics: ["ok/topic"], payloads: [one] },
          { users: "1", topics: [], payloads: [] },
        ]
      ) {
        await assert.rejects(rogue.request({ t: "pubs", seq: 1, ...bad }), /bad_field/);
      }
    } finally {
      await rogue.close();
    }
    // nothing lost, everyone still served
    const id = await a.publish("ok/topic", "still works");
    const got = await b.receive({ timeout: 10_000 });
    assert.equal(got?.id, id);
    assert.equal(decoder.decode(got!.payload), "still works");
    assert.equal((await cluster.node("b1").ctl("status")).messages_in, 1);
    assert(cluster.node("b1").events().some((e) => e.ev === "wire.error"));
  } finally {
    await c1.close();
    await c2.close();
  }
});

Deno.test("peerd mom: one-shot commands, a stdin script with S/P/R/E, usage errors exit 2, SIGTERM exits 0", async () => {
  await using cluster = await momCluster(1);
  await linked(cluster, "d1");
  const daemon = cluster.node("d1").address;
  const created = await runPeerd(["mom", "--daemon", daemon, "create"]);
  assert.equal(created.code, 0, created.stderr);
  const user = JSON.parse(created.stdout).user;
  assert.equal(user, 1);
  const sub = await runPeerd(["mom", "--daemon", daemon, "--user", "1", "subscribe", "news/+"]);
  assert.equal(sub.code, 0, sub.stderr);
  const script = await runPeerd(["mom", "--daemon", daemon], {
    stdin: "create\nP news/today hello from a script\nE\n",
  });
  assert.equal(script.code, 0, script.stderr);
  const lines = script.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines[0].user, 2);
  const recv = await runPeerd([
    "mom",
    "--daemon",
    daemon,
    "--user",
    "1",
    "receive",
    "--count",
    "1",
    "--timeout",
    "10",
  ]);
  assert.equal(recv.code, 0, recv.stderr);
  const msg = JSON.parse(recv.stdout.trim());
  assert.deepEqual(msg, {
    topic: "news/today",
    payload: "hello from a script",
    from: 2,
    id: lines[1].id,
  });
  const shell = await runPeerd(["mom", "--daemon", daemon, "--user", "1"], {
    stdin: "S own/t --own\nP own/t mine\nR 5\nU own/t\nU own/t\nE\n",
  });
  assert.equal(shell.code, 1, "one failed command makes the script exit 1");
  assert.match(shell.stdout, /"payload":"mine"/);
  assert.match(shell.stderr, /not_subscribed/);
  const usage = await runPeerd(["mom", "--daemon", daemon, "publish", "t", "x"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /needs --user/);
  const bad = await runPeerd(["mom", "--daemon", daemon, "frobnicate"]);
  assert.equal(bad.code, 2);
  const badTopic = await runPeerd(["mom", "--daemon", daemon, "--user", "1", "subscribe", "a/#/b"]);
  assert.equal(badTopic.code, 1);
  assert.match(badTopic.stderr, /bad_topic/);
  const noBroker = await runPeerd(["--role", "daemon", "--listen", "127.0.0.1:0"]);
  assert.equal(noBroker.code, 2);
  assert.match(noBroker.stderr, /--broker/);
  for (const name of ["d1", "b1"]) {
    const { code, ms } = await cluster.node(name).stop();
    assert.equal(code, 0, name);
    assert(ms < 5_000, `${name} took ${ms} ms`);
  }
  const unreachable = await runPeerd(["mom", "--daemon", daemon, "create"]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /Cannot connect to daemon/);
});

Deno.test("a daemon with --socket serves applications over a Unix socket too; a huge frame length is refused", async () => {
  const sockDir = await Deno.makeTempDir();
  const socket = `${sockDir}/d1.sock`;
  try {
    await using cluster = await LocalCluster.start({
      nodes: [
        { name: "b1", role: "broker" },
        { name: "d1", role: "daemon", args: ["--socket", socket] },
      ],
    });
    await linked(cluster, "d1");
    const viaSocket = await MomClient.connect({ path: socket });
    const viaTcp = await MomClient.connect(addr(cluster.node("d1").port));
    try {
      const a = await viaSocket.create();
      const b = await viaTcp.create();
      await b.subscribe("unix/+");
      const id = await a.publish("unix/x", "over the socket");
      const got = await b.receive({ timeout: 10_000 });
      assert.equal(got?.id, id);
      const cli = await runPeerd([
        "mom",
        "--daemon",
        socket,
        "--user",
        String(a.id),
        "publish",
        "unix/y",
        "cli",
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      // a length header of 4 GiB - 1: refused before any buffer is allocated
      const conn = await Deno.connect(addr(cluster.node("d1").port));
      try {
        await conn.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
        const buf = new Uint8Array(4096);
        let text = "";
        for (let i = 0; i < 50; i++) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        assert.match(text, /frame_too_large/);
      } finally {
        conn.close();
      }
      assert.equal((await b.receive({ timeout: 10_000 }))?.topic, "unix/y");
      assert.equal((await cluster.node("d1").ctl("status")).link, "up");
    } finally {
      await viaSocket.close();
      await viaTcp.close();
    }
  } finally {
    await Deno.remove(sockDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a subscriber that falls behind the daemon's in-memory inbox reads the rest from SQLite, in order, once", async () => {
  await using cluster = await momCluster(1);
  await linked(cluster, "d1");
  const client = await MomClient.connect(addr(cluster.node("d1").port));
  try {
    const pub = await client.create();
    const sub = await client.create();
    await sub.subscribe("big/#");
    // an empty receive: from here on the daemon keeps this user's deliveries in memory too
    assert.deepEqual(await sub.receiveBatch({ timeout: 0 }), []);
    // 12 MiB of payload, over the 8 MiB the daemon keeps in memory for one user
    const payload = new Uint8Array(128 * 1024);
    for (let i = 0; i < 96; i++) {
      payload[0] = i;
      pub.publishNoWait("big/blob", payload);
    }
    await pub.flush();
    const d1 = cluster.node("d1");
    const stored = await waitUntil(async () => {
      const s = await d1.ctl("status");
      return (s.inbox as Record<string, number>)[String(sub.id)] === 96 ? s : undefined;
    }, { timeoutMs: 15_000, what: "96 deliveries stored" });
    assert.ok(
      (stored.inbox_memory_bytes as number) <= 8 * 1024 * 1024,
      `in-memory inbox holds ${String(stored.inbox_memory_bytes)} bytes`,
    );
    const got: MomMessage[] = [];
    const deadline = performance.now() + 20_000;
    while (got.length < 96 && performance.now() < deadline) {
      got.push(...await sub.receiveBatch({ timeout: 500, max: 7 }));
    }
    assert.deepEqual(got.map((m) => m.payload[0]), Array.from({ length: 96 }, (_, i) => i));
    assert.ok(got.every((m) => m.payload.length === 128 * 1024));
    // caught up: nothing more, nothing twice
    assert.deepEqual(await sub.receiveBatch({ timeout: 300 }), []);
  } finally {
    await client.close();
  }
});

Deno.test("users of one daemon get each other's publications from the daemon itself: with the broker down, after a restart, and after an upgrade that had no local subscriptions", async () => {
  await using cluster = await momCluster(2);
  const b1 = cluster.node("b1");
  const d1 = cluster.node("d1");
  await linked(cluster, "d1");
  await linked(cluster, "d2");
  let client = await MomClient.connect(addr(d1.port));
  const remote = await MomClient.connect(addr(cluster.node("d2").port));
  try {
    const [pub, sub, gone] = [await client.create(), await client.create(), await client.create()];
    const far = await remote.create();
    await sub.subscribe("Local/+");
    await gone.subscribe("Local/#");
    await gone.unsubscribe("Local/#");
    await far.subscribe("Local/x");
    await pub.publish("Local/x", "one");
    assert.deepEqual((await drain(sub, (g) => g.length >= 1, 5_000)).map((m) => m.id), [
      `d1:${(await d1.ctl("status")).last_seq}`,
    ]);
    assert.equal((await drain(far, (g) => g.length >= 1, 5_000)).length, 1);
    assert.deepEqual(await gone.receiveBatch({ timeout: 200 }), []);
    // the broker routed it to d2 only
    const b = await b1.ctl("status");
    assert.equal(b.messages_out, 1);

    // broker down, daemon restarted: the local subscriptions are the daemon's own
    await b1.kill("SIGKILL");
    await client.close();
    await d1.kill("SIGKILL");
    await d1.start();
    client = await MomClient.connect(addr(d1.port));
    const pub2 = client.user(pub.id);
    const sub2 = client.user(sub.id);
    await pub2.publish("Local/y", "two");
    const got = await drain(sub2, (g) => g.length >= 1, 5_000);
    assert.deepEqual(got.map((m) => decoder.decode(m.payload)), ["two"]);
    assert.equal((await d1.ctl("status")).link, "down");

    // a data directory from before local subscriptions were kept: publications go through
    // the broker until the daemon has synced them, then stay local; nothing is lost either way
    await client.close();
    await d1.stop();
    {
      const { DatabaseSync } = await import("node:sqlite");
      const db = new DatabaseSync(`${d1.dataDir}/daemon.sqlite`);
      db.exec("DELETE FROM subs; DELETE FROM meta WHERE key='subs_synced';");
      db.close();
    }
    await d1.start();
    client = await MomClient.connect(addr(d1.port));
    const pub3 = client.user(pub.id);
    const sub3 = client.user(sub.id);
    await pub3.publish("Local/z", "three"); // broker down: waits in the outbox
    await b1.start();
    await linked(cluster, "d1");
    await waitUntil(async () => (await d1.ctl("status")).local_subscriptions === 1, {
      timeoutMs: 10_000,
      what: "local subscriptions synced",
    });
    await pub3.publish("Local/z", "four");
    const rest = await drain(sub3, (g) => g.length >= 2, 10_000);
    assert.deepEqual(rest.map((m) => decoder.decode(m.payload)), ["three", "four"]);
    assert.deepEqual(await sub3.receiveBatch({ timeout: 300 }), []);
  } finally {
    await client.close();
    await remote.close();
  }
});

Deno.test("publications of one daemon's users pipelined while subscribers wait in receive: every one arrives once, in order", async () => {
  await using cluster = await momCluster(1);
  await linked(cluster, "d1");
  const port = cluster.node("d1").port;
  const pubClient = await MomClient.connect(addr(port));
  const subClients = [];
  for (let i = 0; i < 3; i++) subClients.push(await MomClient.connect(addr(port)));
  try {
    const pub = await pubClient.create();
    const subs = await Promise.all(subClients.map((c) => c.create()));
    for (const s of subs) await s.subscribe("Pipe/+");
    const total = 12_000;
    const received = subs.map(() => [] as number[]);
    const loops = subs.map(async (s, i) => {
      // one receive in flight at a time, as applications do, while publications stream in
      for (let round = 0; round < 200_000 && received[i].length < total; round++) {
        const batch = await s.receiveBatch({ timeout: 2_000, max: i < 2 ? 1 : 500 });
        if (batch.length === 0) break;
        for (const m of batch) received[i].push(Number(decoder.decode(m.payload)));
      }
      await s.ack();
    });
    for (let n = 0; n < total; n++) {
      pub.publishNoWait(`Pipe/${n % 7}`, String(n));
      // small bursts at first (commits of a few messages: the low-load path, where a waiting
      // receive is answered before the commit), then a stream
      if (n < total * 0.8 && n % 2 === 1) await pub.flush();
    }
    await pub.flush();
    await Promise.all(loops);
    for (let i = 0; i < subs.length; i++) {
      assert.equal(received[i].length, total, `subscriber ${i} got ${received[i].length}`);
      assert.ok(received[i].every((v, k) => v === k), `subscriber ${i}: out of order or repeated`);
    }
    const status = await cluster.node("d1").ctl("status");
    assert.deepEqual(status.inbox, {});
  } finally {
    await pubClient.close();
    for (const c of subClients) await c.close();
  }
});

import assert from "node:assert/strict";
import type { EventRecord } from "../mod/events/mod.ts";
import { type ClusterNode, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import { FENCE_BASE, RING_FRAMES, RING_ROUTES } from "../mod/ring/mod.ts";
import { frameProblems, type Message, RemoteError, RpcClient } from "../mod/wire/mod.ts";

function ringNodes(n: number, args: string[] = []) {
  return Array.from({ length: n }, (_, i) => ({ name: `n${i + 1}`, role: "ring", args }));
}

async function ctlClient(node: ClusterNode): Promise<RpcClient> {
  return await RpcClient.connect({ hostname: "127.0.0.1", port: node.port }, {
    role: "ctl",
    name: "test",
  });
}

function ctl(client: RpcClient, cmd: string, args: string[] = []): Promise<Message> {
  return client.request({ t: "ctl", cmd, args }, { timeoutMs: 20_000 });
}

/** Waits until every node sees every other one up (and the token exists). */
async function waitMesh(cluster: LocalCluster): Promise<void> {
  const names = cluster.nodes.map((n) => n.name);
  await waitUntil(async () => {
    const statuses = await Promise.all(cluster.nodes.map((n) => n.ctl("status")));
    return statuses.every((s) => (s.alive as string[]).length === names.length);
  }, { what: "every member up everywhere", timeoutMs: 15_000 });
}

/** When `name` was seen dead: the first `peer.down` about it after `since` (the process is gone by then). */
function deathTime(cluster: LocalCluster, name: string, since: number): number {
  const downs = cluster.allEvents().filter((e) =>
    e.ev === "peer.down" && e.peer === name && e.ts >= since
  );
  assert.ok(downs.length > 0, `nobody saw ${name} go down`);
  return downs[0].ts;
}

/**
 * Once the ring is quiet (no pass in flight), exactly one node holds the token; polled
 * because the token may still be on its way to where it parks.
 */
async function assertOneToken(nodes: ClusterNode[]): Promise<Message[]> {
  let last: Message[] = [];
  try {
    return await waitUntil(async () => {
      last = await Promise.all(nodes.map((n) => n.ctl("status")));
      const quiet = last.every((s) => s.passing === false && s.waiting === 0);
      return quiet && last.filter((s) => s.token === true).length === 1 ? last : undefined;
    }, { what: "exactly one token at rest", timeoutMs: 5_000 });
  } catch (err) {
    throw new Error(
      `${String(err)}: ${JSON.stringify(last.map((s) => [s.name, s.token, s.passing, s.gen]))}`,
    );
  }
}

/** Lock intervals from events: [acquired ts, released ts, lost lease end, or end], per node and fence. */
function intervals(events: EventRecord[], end: Record<string, number> = {}) {
  const open = new Map<string, EventRecord>();
  const out: Array<{ node: string; fence: number; from: number; to: number }> = [];
  for (const e of [...events].sort((a, b) => a.ts - b.ts)) {
    if (e.ev === "lock.acquired") open.set(`${e.node}/${e.fence}`, e);
    if (e.ev === "lock.released" || e.ev === "lock.lost") {
      const a = open.get(`${e.node}/${e.fence}`);
      assert.ok(a, `${e.ev} of fence ${e.fence} at ${e.node} without acquire`);
      open.delete(`${e.node}/${e.fence}`);
      // A lost lock was held until its lease ended (noticed later if the node was paused).
      const to = e.ev === "lock.lost" ? Number(e.lease_end) : e.ts;
      out.push({ node: e.node, fence: Number(e.fence), from: a.ts, to });
    }
  }
  for (const a of open.values()) {
    out.push({ node: a.node, fence: Number(a.fence), from: a.ts, to: end[a.node] ?? Infinity });
  }
  return out.sort((a, b) => a.from - b.from);
}

function assertExclusive(list: ReturnType<typeof intervals>): void {
  for (let i = 1; i < list.length; i++) {
    const prev = list[i - 1];
    const cur = list[i];
    assert.ok(
      cur.from >= prev.to,
      `overlap: ${prev.node} fence ${prev.fence} [${prev.from}, ${prev.to}] and ${cur.node} fence ${cur.fence} from ${cur.from}`,
    );
    assert.ok(cur.fence > prev.fence, `fence ${cur.fence} after ${prev.fence} does not increase`);
  }
}

Deno.test("ring: 5 nodes with concurrent clients never overlap, fences increase, nobody starves", async () => {
  await using cluster = await LocalCluster.start({ nodes: ringNodes(5), peersFormat: "txt" });
  const nodes = cluster.nodes;
  await nodes[0].waitForEvent("token.created", { timeoutMs: 10_000 });
  await waitMesh(cluster);
  const clients = await Promise.all(
    nodes.flatMap((n) => [ctlClient(n), ctlClient(n)]),
  );
  const rounds = 8;
  const fences: number[] = [];
  try {
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < rounds; i++) {
        const got = await ctl(c, "lock", ["--timeout", "15"]);
        assert.equal(typeof got.fence, "number");
        fences.push(got.fence as number);
        await ctl(c, "unlock", [String(got.fence)]);
      }
    }));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  assert.equal(fences.length, clients.length * rounds, "every request was served");
  assert.equal(new Set(fences).size, fences.length);
  const events: EventRecord[] = await waitUntil(() => {
    const all = cluster.allEvents();
    return all.filter((e) => e.ev === "lock.released").length === fences.length ? all : undefined;
  }, { what: "all release events" });
  const list = intervals(events);
  assert.equal(list.length, fences.length);
  assertExclusive(list);
  // No starvation: while a request waits, no other node is granted more than
  // (requests ahead of it at its own node + 2) times: the token visits waiting nodes in
  // ring order, one grant per visit.
  const acquired = events.filter((e) => e.ev === "lock.acquired");
  for (const req of events.filter((e) => e.ev === "lock.requested")) {
    const got = acquired.find((a) => a.node === req.node && a.id === req.id);
    assert.ok(got, `request ${req.node}#${req.id} was never granted`);
    const counts = new Map<string, number>();
    for (const a of acquired) {
      if (a.node !== req.node && a.ts > req.ts && a.ts < got.ts) {
        counts.set(a.node, (counts.get(a.node) ?? 0) + 1);
      }
    }
    for (const [other, count] of counts) {
      assert.ok(
        count <= Number(req.ahead) + 2,
        `${req.node}#${req.id} (ahead ${req.ahead}) waited through ${count} grants at ${other}`,
      );
    }
  }
  // Exactly one token: one creation, no regeneration, and one holder now.
  assert.equal(events.filter((e) => e.ev === "token.created").length, 1);
  assert.equal(events.filter((e) => e.ev === "token.regenerated").length, 0);
  const statuses = await assertOneToken(nodes);
  for (const s of statuses) {
    assert.deepEqual(s.ring, ["n1", "n2", "n3", "n4", "n5"]);
    assert.equal(s.held, false);
  }
  const issued = statuses.reduce((sum, s) => sum + Number(s.fences_issued), 0);
  assert.equal(issued, fences.length);
});

Deno.test("ring: kill -9 of a non-holder and then of the holder; one regeneration; the node rejoins", async () => {
  await using cluster = await LocalCluster.start({
    nodes: ringNodes(5, ["--heartbeat-ms", "200"]),
    peersFormat: "txt",
  });
  const [n1, n2, n3, n4, n5] = cluster.nodes;
  await n1.waitForEvent("token.created", { timeoutMs: 10_000 });
  await waitMesh(cluster);

  // A non-holder dies: everybody else still gets the lock.
  const mark1 = cluster.nodes.map((n) => n.mark());
  await n5.kill("SIGKILL");
  await n1.waitForEvent((e) => e.ev === "peer.down" && e.peer === "n5", { from: mark1[0] });
  for (const n of [n1, n2, n3, n4]) {
    const got = await n.ctl("lock", ["--timeout", "10"]);
    await n.ctl("unlock", [String(got.fence)]);
  }

  // The holder dies while holding the lock.
  const held = await n3.ctl("lock", ["--timeout", "10"]);
  const heldFence = Number(held.fence);
  const marks = cluster.nodes.map((n) => n.mark());
  const killStart = Date.now();
  await n3.kill("SIGKILL");
  const after = await n4.ctl("lock", ["--timeout", "15"]);
  assert.ok(Number(after.fence) > heldFence, `fence ${after.fence} after ${heldFence}`);
  assert.ok(Number(after.gen) >= Math.floor(heldFence / FENCE_BASE) + 1);
  await n4.ctl("unlock");
  const since = cluster.nodes.flatMap((n, i) => n.events().slice(marks[i]));
  const regen = since.filter((e) => e.ev === "token.regenerated");
  assert.equal(regen.length, 1, `regenerations: ${JSON.stringify(regen)}`);
  const killedAt = deathTime(cluster, "n3", killStart);
  assert.ok(regen[0].ts >= killedAt, "regenerated only after the holder was seen dead");

  // Exactly one token afterwards, and the lock still moves.
  for (const n of [n1, n2]) {
    const got = await n.ctl("lock", ["--timeout", "10"]);
    await n.ctl("unlock", [String(got.fence)]);
  }
  const live = [n1, n2, n4];
  const statuses = await assertOneToken(live);
  assert.deepEqual(statuses[0].alive, ["n1", "n2", "n4"]);

  // n3 comes back and is taken back into the ring.
  const mark3 = n1.mark();
  await n3.start();
  await n1.waitForEvent((e) => e.ev === "peer.up" && e.peer === "n3", {
    from: mark3,
    timeoutMs: 10_000,
  });
  const back = await n3.ctl("lock", ["--timeout", "10"]);
  assert.ok(Number(back.fence) > Number(after.fence));
  await n3.ctl("unlock");
  await waitUntil(async () => {
    const s = await n1.ctl("status");
    return (s.alive as string[]).includes("n3");
  }, { what: "n3 alive in n1's view" });

  // Safety over the whole run, with the crashed holder's lock ending at its kill.
  const all = cluster.allEvents();
  assertExclusive(intervals(all, { n3: killedAt }));
  assert.equal(all.filter((e) => e.ev === "token.created").length, 1);
});

Deno.test("ring: bad input gets error frames and discard events, never a crash", async () => {
  await using cluster = await LocalCluster.start({
    nodes: ringNodes(2, ["--heartbeat-ms", "200"]),
    peersFormat: "txt",
  });
  const [n1, n2] = cluster.nodes;
  await n1.waitForEvent("token.created", { timeoutMs: 10_000 });
  const addr = { hostname: "127.0.0.1", port: n2.port };

  // Unknown peer names.
  const stranger = await RpcClient.connect(addr, { role: "ring", name: "zz" });
  try {
    await assert.rejects(
      stranger.request({
        t: "ring.token",
        gen: 1,
        fence: FENCE_BASE,
        hops: 0,
        want: [],
        from: "zz",
      }),
      (e: unknown) => e instanceof RemoteError && e.code === "unknown_peer",
    );
  } finally {
    await stranger.close();
  }
  await n2.waitForEvent((e) => e.ev === "ring.unknown_peer" && e.peer === "zz");

  // Move the ring to a later generation, then offer a token from an older one.
  const mark = n1.mark();
  await n1.kill("SIGKILL");
  await n1.start();
  await n1.ctl("lock", ["--timeout", "10"]); // n1 restarted: it must get the live token
  await n1.ctl("unlock");
  const gen = Number((await n2.ctl("status")).gen);
  assert.equal(
    cluster.node("n1").events().slice(mark).filter((e) => e.ev === "token.created").length,
    0,
  );
  const impostor = await RpcClient.connect(addr, { role: "ring", name: "n1" });
  try {
    const stale = {
      t: "ring.token",
      gen: gen - 1,
      fence: (gen - 1) * FENCE_BASE,
      hops: 1,
      want: [],
      from: "n1",
    };
    await assert.rejects(
      impostor.request(stale),
      (e: unknown) => e instanceof RemoteError && e.code === "stale_token",
    );
    await assert.rejects(
      impostor.request({ ...stale, gen: "x" }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_field",
    );
    await assert.rejects(
      impostor.request({ ...stale, gen, fence: 3, from: "n1" }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_field",
    );
    await assert.rejects(
      impostor.request({ ...stale, gen, from: "n2" }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_field",
    );
    await assert.rejects(
      impostor.request({ t: "ring.prepare", ballot: Number.MAX_SAFE_INTEGER }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_field",
    );
  } finally {
    await impostor.close();
  }
  await n2.waitForEvent((e) => e.ev === "token.stale" && e.gen === gen - 1 && e.from === "n1");

  // Garbage bytes.
  const raw = await Deno.connect(addr);
  try {
    await raw.write(new Uint8Array([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
    await raw.write(crypto.getRandomValues(new Uint8Array(2048)));
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 50; i++) if ((await raw.read(buf)) === null) break;
  } finally {
    raw.close();
  }

  // Bad ctl arguments and unlock without the lock.
  const bad = await runPeerd(["ctl", n2.address, "lock", "soon"]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /Cannot lock: seconds must be a number, above 0 and at most 86400, got "soon"/,
  );
  const notHeld = await runPeerd(["ctl", n2.address, "unlock"]);
  assert.equal(notHeld.code, 1);
  assert.match(notHeld.stderr, /does not hold the lock/);

  // A lock that cannot be had in time times out, and the node goes on serving.
  const got = await n1.ctl("lock");
  const timedOut = await runPeerd(["ctl", n2.address, "lock", "0.3"]);
  assert.equal(timedOut.code, 1);
  assert.match(timedOut.stderr, /not acquired within 300 ms/);
  // A client that gives up (ctl's own --timeout) takes its request away with it.
  const gaveUp = await runPeerd(["ctl", n2.address, "lock", "--timeout", "0.3"]);
  assert.equal(gaveUp.code, 1);
  await n2.waitForEvent((e) => e.ev === "lock.cancelled" && e.reason === "client gone");
  await n1.ctl("unlock", [String(got.fence)]);
  const ok = await runPeerd(["ctl", n2.address, "lock", "--timeout=5", "--compact"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(JSON.parse(ok.stdout).fence > Number(got.fence));
  await n2.ctl("unlock");
  assert.equal(n2.running, true);

  // --data that is a file: one line naming the store, exit 1.
  const file = `${cluster.dir}/not-a-dir`;
  await Deno.writeTextFile(file, "x");
  const badData = await runPeerd([
    "--role",
    "ring",
    "--name",
    "n1",
    "--peers",
    cluster.peersPath,
    "--listen",
    "127.0.0.1:0",
    "--data",
    file,
  ]);
  assert.equal(badData.code, 1, badData.stderr);
  assert.equal(badData.stderr.trim().split("\n").length, 1, badData.stderr);
  assert.match(badData.stderr, /Cannot use --data .*not-a-dir: it is a file, not a directory/);

  // A ring.db that is not a database: one line naming the file, exit 1, the file kept.
  const junkDir = `${cluster.dir}/junk-data`;
  await Deno.mkdir(junkDir);
  await Deno.writeTextFile(`${junkDir}/ring.db`, "not a database, but somebody's file");
  const badStore = await runPeerd([
    "--role",
    "ring",
    "--name",
    "n1",
    "--peers",
    cluster.peersPath,
    "--listen",
    "127.0.0.1:0",
    "--data",
    junkDir,
  ]);
  assert.equal(badStore.code, 1, badStore.stderr);
  assert.equal(badStore.stderr.trim().split("\n").length, 1, badStore.stderr);
  assert.match(badStore.stderr, /Cannot open database .*ring\.db/);
  assert.equal(
    await Deno.readTextFile(`${junkDir}/ring.db`),
    "not a database, but somebody's file",
  );

  // Unknown --name is a config error (exit 2, one line).
  const unknown = await runPeerd(["--role", "ring", "--name", "zz", "--peers", cluster.peersPath]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr.trim(), /zz/);

  // SIGTERM: graceful stop, exit 0, quickly.
  for (const n of [n1, n2]) {
    const { code, ms } = await n.stop();
    assert.equal(code, 0);
    assert.ok(ms < 5_000, `stop took ${ms} ms`);
  }
});

Deno.test("ring: the holder crashes while every other node contends; still one lock at a time", async () => {
  await using cluster = await LocalCluster.start({
    nodes: ringNodes(5, ["--heartbeat-ms", "200"]),
    peersFormat: "txt",
  });
  const nodes = cluster.nodes;
  await nodes[0].waitForEvent("token.created", { timeoutMs: 10_000 });
  await waitMesh(cluster);
  const victim = cluster.node("n2");
  const others = nodes.filter((n) => n !== victim);
  const clients = await Promise.all(others.map((n) => ctlClient(n)));
  let killedAt = 0;
  try {
    const held = await victim.ctl("lock", ["--timeout", "10"]);
    const work = Promise.all(clients.map(async (c) => {
      for (let i = 0; i < 6; i++) {
        const got = await ctl(c, "lock", ["--timeout", "15"]);
        await ctl(c, "unlock", [String(got.fence)]);
      }
    }));
    // Everybody is waiting behind the victim's lock when it dies.
    await waitUntil(async () => {
      const s = await Promise.all(others.map((n) => n.ctl("status")));
      return s.every((x) => Number(x.waiting) > 0);
    }, { what: "all others waiting" });
    const killStart = Date.now();
    await victim.kill("SIGKILL");
    await work;
    killedAt = deathTime(cluster, "n2", killStart);
    const all = cluster.allEvents();
    const regen = all.filter((e) => e.ev === "token.regenerated");
    assert.equal(regen.length, 1, JSON.stringify(regen));
    const firstAfter = all.find((e) => e.ev === "lock.acquired" && e.ts > killedAt);
    assert.ok(firstAfter && Number(firstAfter.fence) > Number(held.fence));
    assertExclusive(intervals(all, { n2: killedAt }));
    await assertOneToken(others);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

Deno.test("ring: a holder stopped (SIGSTOP) past its lease loses the lock; on SIGCONT it is told, one token remains", async () => {
  await using cluster = await LocalCluster.start({
    nodes: ringNodes(3, ["--heartbeat-ms", "200", "--lease", "1000"]),
    peersFormat: "txt",
  });
  const [n1, n2, n3] = cluster.nodes;
  await n1.waitForEvent("token.created", { timeoutMs: 10_000 });
  await waitMesh(cluster);
  const holder = await ctlClient(n1);
  const notices: Message[] = [];
  holder.onMessage = (msg) => notices.push(msg);
  const pid = n1.pid!;
  let stopped = false;
  try {
    const held = await ctl(holder, "lock", ["--timeout", "10"]);
    assert.equal(held.lease_ms, 1000);
    Deno.kill(pid, "SIGSTOP");
    stopped = true;
    // The others get the lock while n1 is stopped (after its lease ran out), many times.
    let grants = 0;
    let firstOther: Message | undefined;
    for (const n of [n2, n3, n2, n3, n2, n3]) {
      const got = await n.ctl("lock", ["--timeout", "15"]);
      firstOther ??= got;
      assert.ok(Number(got.fence) > Number(held.fence));
      await n.ctl("unlock", [String(got.fence)]);
      grants++;
    }
    assert.equal(grants, 6);
    Deno.kill(pid, "SIGCONT");
    stopped = false;
    const lost = await n1.waitForEvent("lock.lost", { timeoutMs: 10_000 });
    assert.equal(lost.fence, held.fence);
    assert.equal(lost.reason, "lease_expired");
    assert.ok(Number(lost.late_ms) > 0, "noticed after the lease ended (it was stopped)");
    const acquiredElsewhere = cluster.allEvents().find((e) =>
      e.ev === "lock.acquired" && e.fence === firstOther!.fence
    )!;
    assert.ok(
      Number(lost.lease_end) <= acquiredElsewhere.ts,
      `n1's lease ended at ${lost.lease_end}, ${acquiredElsewhere.node} acquired at ${acquiredElsewhere.ts}`,
    );
    // The client that holds the lock is told, status says so, unlock explains.
    const notice = await waitUntil(() => notices.find((m) => m.t === "lock.lost"), {
      what: "lock.lost notice",
    });
    // …with exactly the fields of the protocol catalogue (docs/ring.md's table).
    assert.deepEqual(frameProblems(RING_FRAMES, notice, { routes: [RING_ROUTES.holder] }), []);
    const status = await n1.ctl("status");
    assert.equal(status.held, false);
    assert.equal((status.lost as Record<string, unknown>).fence, held.fence);
    await assert.rejects(
      ctl(holder, "unlock", [String(held.fence)]),
      (e: unknown) => e instanceof RemoteError && /was lost/.test(e.message),
    );
    // After the resume exactly one token exists, and n1 is served again with a higher fence.
    const again = await n1.ctl("lock", ["--timeout", "15"]);
    assert.ok(Number(again.fence) > Number(firstOther!.fence));
    await n1.ctl("unlock");
    await assertOneToken(cluster.nodes);
    assertExclusive(intervals(cluster.allEvents()));
  } finally {
    if (stopped) Deno.kill(pid, "SIGCONT");
    await holder.close();
  }
});

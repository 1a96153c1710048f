import assert from "node:assert/strict";
import { type ClusterNode, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import type { EventRecord } from "../mod/events/mod.ts";
import { type Message, RemoteError, RpcClient } from "../mod/wire/mod.ts";

const FAST = ["--heartbeat-ms", "50", "--fail-timeout-ms", "800", "--flush-timeout-ms", "1500"];
/** For tests without crashes: a slow CI machine must not cause a false suspicion. */
const STEADY = ["--heartbeat-ms", "50", "--fail-timeout-ms", "4000"];

function delivered(node: ClusterNode, from = 0): EventRecord[] {
  return node.events().slice(from).filter((e) => e.ev === "mc.delivered");
}

function ids(node: ClusterNode, from = 0): string[] {
  return delivered(node, from).map((e) => String(e.id));
}

function sentIds(node: ClusterNode, from = 0): string[] {
  return node.events().slice(from).filter((e) => e.ev === "mc.sent").map((e) => String(e.id));
}

/** Every sender's messages appear in the order it sent them. */
function assertSenderFifo(sequence: string[]): void {
  const last = new Map<string, number>();
  for (const id of sequence) {
    const [from, seq] = [
      id.slice(0, id.lastIndexOf(":")),
      Number(id.slice(id.lastIndexOf(":") + 1)),
    ];
    assert.ok(seq > (last.get(from) ?? 0), `${id} delivered after ${from}:${last.get(from)}`);
    last.set(from, seq);
  }
}

/** Waits like `waitUntil`; on timeout prints what each node saw, to explain the failure. */
async function waitOrExplain<T>(
  cluster: LocalCluster,
  check: () => T | Promise<T>,
  options: { timeoutMs: number; what: string },
): Promise<void> {
  try {
    await waitUntil(check, options);
  } catch (err) {
    for (const n of cluster.nodes) {
      const notable = n.events().filter((e) => e.ev !== "mc.sent" && e.ev !== "mc.delivered");
      const status = n.running ? await n.ctl("status").catch((e) => String(e)) : "stopped";
      console.error(`--- ${n.name}: ${JSON.stringify(status)}`);
      console.error(`sent ${sentIds(n).length} delivered ${delivered(n).length}`);
      for (const e of notable.slice(-15)) console.error(JSON.stringify(e).slice(0, 300));
      console.error(n.stderr.slice(-1500));
    }
    throw err;
  }
}

async function waitForView(
  nodes: ClusterNode[],
  members: string[],
  options: { timeoutMs?: number; from?: number[] } = {},
) {
  await waitUntil(
    () =>
      nodes.every((n, i) =>
        n.events().slice(options.from?.[i] ?? 0).some((e) =>
          e.ev === "view.changed" && JSON.stringify(e.members) === JSON.stringify(members)
        )
      ),
    { timeoutMs: options.timeoutMs ?? 15_000, what: `view ${members.join(",")}` },
  );
}

Deno.test("multicast: 4 processes sending concurrently deliver every message in one identical order", async () => {
  const names = ["m1", "m2", "m3", "m4"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({
      name,
      role: "multicast",
      args: [...STEADY, "--generate", "50", "--generate-limit", "80"],
    })),
  });
  await waitOrExplain(cluster, () => cluster.nodes.every((n) => delivered(n).length >= 320), {
    timeoutMs: 30_000,
    what: "320 deliveries on every node",
  });
  const sequences = cluster.nodes.map((n) => ids(n));
  const allSent = cluster.nodes.flatMap((n) => sentIds(n)).sort();
  assert.equal(allSent.length, 320);
  for (const [i, seq] of sequences.entries()) {
    assert.deepEqual(seq, sequences[0], `${names[i]} delivered a different order`);
    assertSenderFifo(seq);
  }
  assert.deepEqual([...sequences[0]].sort(), allSent, "every sent message is delivered");
  // Delivery indexes are 1..n and Lamport stamps never go down.
  const evs = delivered(cluster.nodes[1]);
  evs.forEach((e, i) => assert.equal(e.idx, i + 1));
  for (let i = 1; i < evs.length; i++) {
    assert.ok(Number(evs[i].lamport) >= Number(evs[i - 1].lamport));
  }
  // stdout shows "[lamport] sender: text".
  assert.match(cluster.nodes[2].stdout, /^\[\d+\] m\d: m\d says #\d+$/m);
});

Deno.test("multicast: kill -9 of a member while all send; survivors agree, resume, and the restarted node rejoins with history", async () => {
  const names = ["m1", "m2", "m3", "m4"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({
      name,
      role: "multicast",
      args: [...FAST, "--generate", "80", "--generate-limit", "160", "--quiet"],
    })),
  });
  const [m1, m2, m3, m4] = cluster.nodes;
  const survivors = [m1, m2, m4];
  await waitUntil(() => delivered(m1).length >= 60, { timeoutMs: 20_000, what: "60 deliveries" });
  assert.notEqual(await m3.kill("SIGKILL"), 0);
  const marks = survivors.map((n) => n.mark());
  await waitForView(survivors, ["m1", "m2", "m4"], { from: marks });
  // Survivors finish: each delivers everything it sent, and nothing stays held back.
  await waitOrExplain(cluster, async () => {
    for (const n of survivors) {
      const got = new Set(ids(n));
      if (!sentIds(n).every((id) => got.has(id)) || sentIds(n).length < 160) return false;
      if ((await n.ctl("status")).held !== 0) return false;
    }
    const counts = survivors.map((n) => delivered(n).length);
    return counts.every((c) => c === counts[0]);
  }, { timeoutMs: 30_000, what: "survivors to deliver all their messages" });
  const sequences = survivors.map((n) => ids(n));
  for (const seq of sequences) {
    assert.deepEqual(seq, sequences[0]);
    assertSenderFifo(seq);
  }
  // Delivery resumed after the view change on every survivor.
  for (const [i, n] of survivors.entries()) {
    const after = n.events().slice(marks[i]);
    const change = after.findIndex((e) => e.ev === "view.changed");
    assert.ok(after.slice(change).some((e) => e.ev === "mc.delivered"), `${n.name} resumed`);
  }
  // The dead member's delivered messages are a prefix of what it sent.
  const deadSent = sentIds(m3);
  const deadDelivered = sequences[0].filter((id) => id.startsWith("m3:"));
  assert.deepEqual(deadDelivered, deadSent.slice(0, deadDelivered.length));

  // Restart: it rejoins with a new view and the history from a live member.
  const rejoinMarks = cluster.nodes.map((n) => n.mark());
  const mark3 = rejoinMarks[2];
  await m3.start();
  await waitForView(cluster.nodes, ["m1", "m2", "m3", "m4"], { from: rejoinMarks });
  await m3.waitForEvent("mc.history.fetched", { from: mark3, timeoutMs: 10_000 });
  const reply = await m3.ctl("send", ["back", "from", "the", "dead"]);
  const helloId = String(reply.id ?? "");
  await waitUntil(
    () =>
      cluster.nodes.every((n) =>
        ids(n).includes(helloId) || (n === m3 && ids(n, mark3).includes(helloId))
      ),
    { timeoutMs: 20_000, what: `delivery of ${helloId}` },
  );
  // Everyone ends with the same history (m3: persisted prefix + fetched + new).
  await waitOrExplain(cluster, async () => {
    const counts = await Promise.all(
      cluster.nodes.map(async (n) => (await n.ctl("status")).delivered),
    );
    const held = await Promise.all(cluster.nodes.map(async (n) => (await n.ctl("status")).held));
    return counts.every((c) => c === counts[0]) && held.every((h) => h === 0) &&
      sentIds(m3, mark3).length >= 161 && sentIds(m3, mark3).every((id) => ids(m1).includes(id));
  }, { timeoutMs: 30_000, what: "histories to converge" });
  const histories = await Promise.all(
    cluster.nodes.map(async (n) =>
      ((await n.ctl("history", ["100000"])).entries as Message[]).map((e) => String(e.id))
    ),
  );
  for (const [i, h] of histories.entries()) {
    const at = h.findIndex((id, k) => id !== histories[0][k]);
    assert.deepEqual(
      h,
      histories[0],
      `${names[i]} history differs from m1 at ${at}: ${h.slice(at - 2, at + 5)} vs ${
        histories[0].slice(at - 2, at + 5)
      } (lengths ${h.length}, ${histories[0].length}); dir ${cluster.dir}`,
    );
  }
  assert.ok(histories[0].includes(helloId));
});

async function expectRefusal(client: RpcClient, frame: Message, code: string): Promise<void> {
  let refused: unknown;
  try {
    await client.request(frame, { timeoutMs: 5_000 });
  } catch (err) {
    refused = err;
  }
  assert(refused instanceof RemoteError, `expected an error frame, got ${String(refused)}`);
  assert.equal(refused.code, code, refused.message);
}

Deno.test("multicast: non-members, forged and duplicate ids, bad fields and garbage are refused; order is unaffected", async () => {
  const names = ["m1", "m2", "m3"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({ name, role: "multicast", args: STEADY })),
  });
  const [m1, m2] = cluster.nodes;
  await waitForView(cluster.nodes, names);
  const first = await m2.ctl("send", ["first"]);
  assert.equal(first.id, "m2:1");
  await waitOrExplain(cluster, () => cluster.nodes.every((n) => ids(n).includes("m2:1")), {
    timeoutMs: 10_000,
    what: "m2:1 delivered",
  });
  const view = Number((await m1.ctl("view")).view);
  const addr = { hostname: "127.0.0.1", port: m1.port };
  const msg = (over: Record<string, unknown>) => ({
    id: "m2:2",
    from: "m2",
    seq: 2,
    lamport: 1_000_000,
    body: "evil",
    ...over,
  });
  const intruder = await RpcClient.connect(addr, { role: "multicast", name: "intruder" });
  const spoof = await RpcClient.connect(addr, { role: "multicast", name: "m2" });
  try {
    await expectRefusal(
      intruder,
      { t: "mc.data", view, msgs: [msg({ from: "intruder", id: "intruder:1", seq: 1 })] },
      "not_member",
    );
    await expectRefusal(spoof, {
      t: "mc.data",
      view,
      msgs: [msg({ from: "m3", id: "m3:1", seq: 1 })],
    }, "forged");
    await expectRefusal(spoof, { t: "mc.data", view, msgs: [msg({ id: "m3:7" })] }, "forged");
    await expectRefusal(
      spoof,
      { t: "mc.data", view, msgs: [msg({ id: "m2:1", seq: 1 })] },
      "duplicate",
    );
    await expectRefusal(spoof, { t: "mc.data", view, msgs: [msg({ id: "m2:9", seq: 9 })] }, "gap");
    await expectRefusal(spoof, { t: "mc.data", view: "x", msgs: [] }, "bad_field");
    await expectRefusal(spoof, { t: "mc.data", view, msgs: [{ id: 5 }] }, "bad_field");
    await expectRefusal(spoof, { t: "mc.ack", view, lamport: -1 }, "bad_field");
    await expectRefusal(spoof, { t: "mc.propose", num: 99, members: ["zz"] }, "bad_field");
  } finally {
    await intruder.close();
    await spoof.close();
  }
  // Garbage bytes on a raw connection: an error frame, then the connection is closed.
  const raw = await Deno.connect(addr);
  try {
    await raw.write(new Uint8Array([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
    await raw.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    const buf = new Uint8Array(4096);
    let got = 0;
    for (let i = 0; i < 50; i++) {
      const n = await raw.read(buf);
      if (n === null) break;
      got += n;
    }
    assert.ok(got > 0, "expected an error frame");
  } finally {
    raw.close();
  }
  const discards = m1.events().filter((e) => e.ev === "mc.discard").map((e) => e.reason);
  for (const reason of ["not_member", "forged", "duplicate", "gap"]) {
    assert.ok(discards.includes(reason), `no mc.discard for ${reason}: ${discards}`);
  }
  await m1.waitForEvent("wire.error", { timeoutMs: 5_000 });
  // The group goes on: everyone delivers the same real messages and none of the fakes.
  for (const n of cluster.nodes) await n.ctl("send", [`after from ${n.name}`]);
  await waitOrExplain(cluster, () => cluster.nodes.every((n) => ids(n).length >= 4), {
    timeoutMs: 10_000,
    what: "4 deliveries everywhere",
  });
  const sequences = cluster.nodes.map((n) => ids(n));
  for (const seq of sequences) assert.deepEqual(seq, sequences[0]);
  assert.deepEqual([...sequences[0]].sort(), ["m1:1", "m2:1", "m2:2", "m3:1"]);
  assert.ok(delivered(m1).every((e) => e.body !== "evil"));
});

Deno.test("multicast: ctl send/history/view/status, usage errors, and SIGTERM exits 0 (with a secret)", async () => {
  await using cluster = await LocalCluster.start({
    nodes: ["m1", "m2"].map((name) => ({ name, role: "multicast", args: FAST })),
    secret: "chat-secret",
  });
  const env = { PEERD_SECRET: "chat-secret" };
  const [m1, m2] = cluster.nodes;
  await waitForView(cluster.nodes, ["m1", "m2"]);
  const sent = await runPeerd(["ctl", m1.address, "send", "hello", "world", "--compact"], { env });
  assert.equal(sent.code, 0, sent.stderr);
  const { id, lamport } = JSON.parse(sent.stdout);
  assert.equal(id, "m1:1");
  const ev = await m2.waitForEvent((e) => e.ev === "mc.delivered" && e.id === id);
  assert.deepEqual([ev.idx, ev.from, ev.lamport, ev.body], [1, "m1", lamport, "hello world"]);
  await waitUntil(() => m2.stdout.includes(`[${lamport}] m1: hello world`), {
    what: "stdout line",
  });
  const sentEv = m1.events().find((e) => e.ev === "mc.sent");
  assert.deepEqual([sentEv?.id, sentEv?.lamport], [id, lamport]);
  const history = await runPeerd(["ctl", m2.address, "history", "5", "--compact"], { env });
  assert.equal(history.code, 0, history.stderr);
  const entries = JSON.parse(history.stdout).entries;
  assert.deepEqual(entries.map((e: Message) => [e.idx, e.id, e.body]), [[
    1,
    "m1:1",
    "hello world",
  ]]);
  const view = await m1.ctl("view");
  assert.deepEqual(view.members, ["m1", "m2"]);
  assert.equal(view.coordinator, "m1");
  const status = await m2.ctl("status");
  assert.equal(status.delivered, 1);
  assert.equal(status.state, "member");
  // generate <rate> [limit] starts the generator at run time (the original asked for it).
  assert.deepEqual((await m2.ctl("generate", ["200", "10"])).rate, 200);
  await waitUntil(() => delivered(m1).filter((e) => e.from === "m2").length === 10, {
    what: "10 generated messages from m2",
  });
  assert.equal(delivered(m1).find((e) => e.from === "m2")?.body, "m2 says #1");
  const empty = await runPeerd(["ctl", m1.address, "send"], { env });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /Cannot send: missing <text> \(usage: send <text…>\)/);
  const badN = await runPeerd(["ctl", m1.address, "history", "lots"], { env });
  assert.equal(badN.code, 1);
  assert.match(badN.stderr, /n must be an integer/);
  // The history survives a restart (SQLite), and SIGTERM is a clean exit.
  const stopped = await m2.stop();
  assert.equal(stopped.code, 0);
  assert.ok(stopped.ms < 5000, `took ${stopped.ms} ms`);
  const restartMark = m2.mark();
  await m2.start();
  await waitForView([m2], ["m1", "m2"], { from: [restartMark] });
  const again = await m2.ctl("history");
  assert.deepEqual(
    (again.entries as Message[]).map((e) => e.id),
    ["m1:1", ...Array.from({ length: 10 }, (_, i) => `m2:${i + 1}`)],
  );
  const noSecret = await runPeerd(["ctl", m1.address, "status"]);
  assert.equal(noSecret.code, 1);
  assert.match(noSecret.stderr, /needs a cluster secret/);
  const code = await m1.stop();
  assert.equal(code.code, 0);
});

Deno.test("multicast: a name outside the peers file's multicast nodes exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/peers.json`,
      JSON.stringify({ nodes: [{ name: "e1", host: "127.0.0.1", port: 1, role: "echo" }] }),
    );
    const r = await runPeerd([
      "--role",
      "multicast",
      "--name",
      "e1",
      "--peers",
      `${dir}/peers.json`,
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a multicast node/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("multicast: a paused member is excluded, notices, and rejoins; all histories end identical", async () => {
  const names = ["m1", "m2", "m3"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({
      name,
      role: "multicast",
      args: [...FAST, "--generate", "30", "--generate-limit", "90", "--quiet"],
    })),
  });
  const [m1, m2, m3] = cluster.nodes;
  await waitOrExplain(cluster, () => delivered(m1).length > 30, {
    timeoutMs: 10_000,
    what: "30 deliveries",
  });
  Deno.kill(m3.pid!, "SIGSTOP");
  try {
    await waitForView([m1, m2], ["m1", "m2"]);
  } finally {
    Deno.kill(m3.pid!, "SIGCONT");
  }
  await m3.waitForEvent("mc.excluded", { timeoutMs: 10_000 });
  await waitOrExplain(
    cluster,
    () =>
      m3.events().some((e) =>
        e.ev === "view.changed" && Number(e.view) > 2 && (e.members as string[]).length === 3
      ),
    { timeoutMs: 15_000, what: "m3 back in a view of 3" },
  );
  await waitOrExplain(cluster, async () => {
    const s = await Promise.all(cluster.nodes.map((n) => n.ctl("status")));
    return s.every((x) => x.held === 0 && x.delivered === s[0].delivered && x.outbox === 0) &&
      [m1, m2, m3].every((n) => sentIds(n).length === 90);
  }, { timeoutMs: 20_000, what: "quiet, equal histories" });
  const histories = await Promise.all(
    cluster.nodes.map(async (n) =>
      ((await n.ctl("history", ["100000"])).entries as Message[]).map((e) => String(e.id))
    ),
  );
  for (const h of histories) assert.deepEqual(h, histories[0]);
  // Everything the two that stayed sent is there; m3 lost at most what it sent while out.
  for (const id of [...sentIds(m1), ...sentIds(m2)]) assert.ok(histories[0].includes(id), id);
});

Deno.test("multicast: kill -9 of the coordinator; the next member takes over and survivors agree", async () => {
  const names = ["m1", "m2", "m3"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({
      name,
      role: "multicast",
      args: [...FAST, "--generate", "80", "--generate-limit", "120", "--quiet"],
    })),
  });
  const [m1, m2, m3] = cluster.nodes;
  await waitOrExplain(cluster, () => delivered(m2).length >= 40, {
    timeoutMs: 10_000,
    what: "40 deliveries",
  });
  await m1.kill("SIGKILL");
  await waitForView([m2, m3], ["m2", "m3"]);
  assert.equal((await m2.ctl("view")).coordinator, "m2");
  await waitOrExplain(cluster, async () => {
    if (![m2, m3].every((n) => sentIds(n).length === 120)) return false;
    const s = await Promise.all([m2, m3].map((n) => n.ctl("status")));
    return s.every((x) => x.held === 0) && s[0].delivered === s[1].delivered &&
      [m2, m3].every((n) => sentIds(n).every((id) => ids(m2).includes(id)));
  }, { timeoutMs: 20_000, what: "survivors to finish" });
  assert.deepEqual(ids(m3), ids(m2));
  assertSenderFifo(ids(m2));
});

Deno.test("multicast: a member left alone by two crashes reports no_quorum and refuses send; a restart brings the primary back", async () => {
  const names = ["m1", "m2", "m3"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({ name, role: "multicast", args: FAST })),
  });
  const [m1, m2, m3] = cluster.nodes;
  await waitForView(cluster.nodes, names);
  const first = await m1.ctl("send", ["before"]);
  await m3.waitForEvent((e) => e.ev === "mc.delivered" && e.id === first.id);
  const mark = m1.mark();
  await m2.kill("SIGKILL");
  await m3.kill("SIGKILL");
  await m1.waitForEvent((e) => e.ev === "view.installed" && e.primary === false, {
    from: mark,
    timeoutMs: 10_000,
  });
  assert.equal((await m1.ctl("status")).state, "no_quorum");
  await assert.rejects(
    m1.ctl("send", ["alone"]),
    (err: unknown) => err instanceof RemoteError && err.code === "no_quorum",
  );
  const back = m1.mark();
  await m2.start();
  await m1.waitForEvent(
    (e) =>
      e.ev === "view.installed" && e.primary === true &&
      JSON.stringify(e.members) === JSON.stringify(["m1", "m2"]),
    { from: back, timeoutMs: 15_000 },
  );
  assert.equal((await m1.ctl("status")).state, "member");
  const after = await m1.ctl("send", ["after"]);
  await m2.waitForEvent((e) => e.ev === "mc.delivered" && e.id === after.id, { timeoutMs: 10_000 });
  const history = (await m2.ctl("history")).entries as Message[];
  assert.deepEqual(history.map((e) => e.body), ["before", "after"]);
});

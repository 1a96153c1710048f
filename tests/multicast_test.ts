import assert from "node:assert/strict";
import { type ClusterNode, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import type { EventRecord } from "../mod/events/mod.ts";
import { type Message, RemoteError, RpcClient } from "../mod/wire/mod.ts";

const FAST = ["--heartbeat-ms", "50", "--fail-timeout-ms", "800", "--flush-timeout-ms", "1500"];

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

async function waitForView(nodes: ClusterNode[], members: string[], timeoutMs = 15_000) {
  await waitUntil(
    () =>
      nodes.every((n) =>
        n.events().some((e) =>
          e.ev === "view.changed" && JSON.stringify(e.members) === JSON.stringify(members)
        )
      ),
    { timeoutMs, what: `view ${members.join(",")}` },
  );
}

Deno.test("multicast: 4 processes sending concurrently deliver every message in one identical order", async () => {
  const names = ["m1", "m2", "m3", "m4"];
  await using cluster = await LocalCluster.start({
    nodes: names.map((name) => ({
      name,
      role: "multicast",
      args: [...FAST, "--generate", "50", "--generate-limit", "80"],
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
      args: [...FAST, "--generate", "40", "--generate-limit", "160", "--quiet"],
    })),
  });
  const [m1, m2, m3, m4] = cluster.nodes;
  const survivors = [m1, m2, m4];
  await waitUntil(() => delivered(m1).length >= 60, { timeoutMs: 20_000, what: "60 deliveries" });
  assert.notEqual(await m3.kill("SIGKILL"), 0);
  const marks = survivors.map((n) => n.mark());
  await waitForView(survivors, ["m1", "m2", "m4"]);
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
  const mark3 = m3.mark();
  await m3.start();
  await waitForView([m1, m2, m3, m4], ["m1", "m2", "m3", "m4"]);
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

import assert from "node:assert/strict";
import type { EventRecord } from "../mod/events/mod.ts";
import { freePort, LocalCluster, runPeerd } from "./harness/mod.ts";

function readEvents(path: string): EventRecord[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

Deno.test("leader --spawn 8 prints 8 identical lists and IT WORKS!, and no two grant→write turns overlap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-leader-" });
  try {
    const eventsPath = `${dir}/events.jsonl`;
    const r = await runPeerd([
      "--role",
      "leader",
      "--spawn",
      "8",
      "--listen",
      "127.0.0.1:0",
      "--data",
      `${dir}/data`,
      "--events",
      eventsPath,
    ], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.at(-1), "IT WORKS!");
    const lists = lines.slice(0, -1);
    assert.equal(lists.length, 8);
    const parsed = lists.map((l) => {
      const m = l.match(/^follower (f\d+): \[(.*)\]$/);
      assert.ok(m, `bad line ${l}`);
      return { id: m[1], values: m[2].split(", ").map(Number) };
    });
    assert.deepEqual(parsed.map((p) => p.id), ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"]);
    for (const p of parsed) {
      assert.deepEqual(p.values, parsed[0].values);
      assert.equal(p.values.length, 8);
      assert.ok(p.values.every((v) => Number.isInteger(v) && v >= 0 && v <= 1000));
    }
    const events = readEvents(eventsPath).sort((a, b) => a.ts - b.ts);
    const grants = events.filter((e) => e.ev === "grant");
    const writes = events.filter((e) => e.ev === "write");
    assert.equal(grants.length, 8);
    assert.equal(writes.length, 8);
    assert.deepEqual(new Set(grants.map((g) => g.follower)).size, 8);
    // turns in time order: grant(i) ≤ write(i) < grant(i+1), the writer is the grantee
    for (let i = 0; i < grants.length; i++) {
      const w = writes.find((e) => e.turn === grants[i].turn)!;
      assert.ok(w, `no write for turn ${grants[i].turn}`);
      assert.equal(w.follower, grants[i].follower);
      assert.ok(w.ts >= grants[i].ts, `turn ${grants[i].turn}: write before grant`);
      if (i + 1 < grants.length) {
        assert.ok(w.ts < grants[i + 1].ts, `turn ${grants[i].turn} overlaps the next`);
      }
    }
    // the written values, in turn order, are the list everyone holds
    assert.deepEqual(
      grants.map((g) => writes.find((w) => w.turn === g.turn)!.value),
      parsed[0].values,
    );
    const finals = events.filter((e) => e.ev === "list.final");
    assert.equal(finals.length, 8);
    const verdict = events.find((e) => e.ev === "verdict");
    assert.equal(verdict?.ok, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a follower killed while it holds the turn: the leader moves on after its timeout, survivors agree", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [
      {
        name: "lead",
        role: "leader",
        args: ["--followers", "4", "--turn-timeout", "1500", "--final-timeout", "5000"],
      },
    ],
  });
  const leader = cluster.node("lead");
  for (const id of ["f1", "f2", "f3", "f4"]) {
    cluster.add({
      name: id,
      role: "follower",
      unlisted: true,
      args: ["--queue", leader.address, "--write-delay", "700"],
    });
  }
  await Promise.all(["f1", "f2", "f3", "f4"].map((id) => cluster.node(id).start()));
  const grant = await leader.waitForEvent("grant", { timeoutMs: 20_000 });
  const victim = cluster.node(String(grant.follower));
  await victim.kill("SIGKILL");
  const verdict = await leader.waitForEvent("verdict", { timeoutMs: 30_000 });
  assert.equal(verdict.ok, false);
  const code = await leader.exited(10_000);
  assert.equal(code, 1);
  const timeouts = leader.events().filter((e) => e.ev === "grant.timeout");
  assert.deepEqual(timeouts.map((e) => e.follower), [victim.name]);
  const grants = leader.events().filter((e) => e.ev === "grant");
  assert.equal(grants.length, 4);
  const survivors = ["f1", "f2", "f3", "f4"].filter((id) => id !== victim.name);
  const lists = [];
  for (const id of survivors) {
    const node = cluster.node(id);
    const final = await node.waitForEvent("list.final", { timeoutMs: 10_000 });
    lists.push(final.values as number[]);
    assert.equal(await node.exited(10_000), 0);
  }
  assert.equal(lists[0].length, 3);
  for (const l of lists) assert.deepEqual(l, lists[0]);
  assert.match(leader.stdout, new RegExp(`follower ${victim.name}: no list \\(turn timed out\\)`));
  assert.match(leader.stdout, /FAILED: .*did not write in time/);
  for (const id of survivors) {
    assert.match(leader.stdout, new RegExp(`follower ${id}: \\[${lists[0].join(", ")}\\]`));
  }
});

Deno.test("leader --spawn 0 and --followers 2000 are usage errors naming the value (exit 2, one line)", async () => {
  for (
    const [args, line] of [
      [["--spawn", "0"], 'peerd: --spawn must be an integer, 1 to 1000, got "0"'],
      [["--followers", "2000"], 'peerd: --followers must be an integer, 1 to 1000, got "2000"'],
      [[], "peerd: --spawn N or --followers N (1..1000) is required"],
    ] as const
  ) {
    const out = await runPeerd(["--role", "leader", "--listen", "127.0.0.1:0", ...args]);
    assert.equal(out.code, 2, out.stderr);
    assert.equal(out.stderr.trim(), line);
  }
});

Deno.test("a follower whose queue never comes up gives up after --connect-timeout with the address and the cause (exit 1)", async () => {
  const port = freePort();
  const out = await runPeerd([
    "--role",
    "follower",
    "--name",
    "f1",
    "--listen",
    "127.0.0.1:0",
    "--queue",
    `127.0.0.1:${port}`,
    "--connect-timeout",
    "300",
  ], { timeoutMs: 20_000 });
  assert.equal(out.code, 1, out.stderr);
  assert.match(
    out.stderr,
    new RegExp(`Cannot reach the queue at 127\\.0\\.0\\.1:${port}: .*refused`),
  );
});

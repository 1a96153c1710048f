/**
 * The multicast protocol core (the daemon's own `MulticastMember`) in virtual time over the
 * in-memory network: the partition scenarios of issue 14 replayed, and randomized schedules
 * of partitions, one-way cuts, resets, pauses and crashes, each run checked by
 * `checkMulticastEvents` (prefix-consistent deliveries, nothing outside a primary view) and
 * ending in one view with identical histories.
 */
import assert from "node:assert/strict";
import { checkMulticastEvents, SimGroup } from "../mod/multicast/mod.ts";

function assertSafe(g: SimGroup, final = true): void {
  const problems = checkMulticastEvents(g.events, {
    quorum: g.quorum,
    histories: final ? g.historyIds() : undefined,
  });
  assert.deepEqual(problems, [], problems.slice(0, 5).join("\n"));
}

function formed(g: SimGroup): void {
  g.runUntil(() =>
    g.names.every((n) =>
      g.members.get(n)!.view.primary &&
      g.members.get(n)!.view.members.length === g.names.length
    ), "first view");
}

function delivered(g: SimGroup, node: string, from = 0): string[] {
  return g.events.slice(from).filter((e) => e.node === node && e.ev === "mc.delivered")
    .map((e) => String(e.id));
}

Deno.test("MulticastMember: an isolated member of three stops delivering, refuses send with no_quorum, and rejoins with the primary's history", () => {
  const g = new SimGroup({ n: 3, seed: 1 });
  formed(g);
  g.run(500, { sendEveryMs: 40 });
  const mark = g.events.length;
  g.net.partition(["m3"], ["m1", "m2"], "hold");
  g.run(100, { sendEveryMs: 40 }); // m3 sends before it notices: never delivered anywhere
  g.runUntil(() => g.members.get("m3")!.reportedState === "no_quorum", "m3 in no_quorum");
  assert.equal(g.send("m3", "alone"), false);
  assert.equal((g.members.get("m3")!.status() as { state: string }).state, "no_quorum");
  g.runUntil(
    () => ["m1", "m2"].every((n) => g.members.get(n)!.view.members.join() === "m1,m2"),
    "majority view",
  );
  assert.ok(g.events.some((e) => e.node === "m3" && e.ev === "view.installed" && !e.primary));
  const m3Before = delivered(g, "m3", mark).length;
  g.run(1_000, { sendEveryMs: 40 });
  assert.ok(delivered(g, "m1", mark).length > 10, "the majority goes on");
  // While cut off, m3 delivers nothing new beyond what the old view had already acked.
  const m3During = delivered(g, "m3", mark);
  assert.ok(m3During.length - m3Before <= 5, `m3 delivered ${m3During.length - m3Before}`);
  g.net.healAll();
  g.runUntil(() => g.settled(), "heal");
  assertSafe(g);
  assert.ok(g.events.some((e) => e.node === "m3" && e.ev === "mc.excluded"));
  assert.ok(!g.historyIds().get("m1")!.some((id) => id === "alone"));
});

Deno.test("MulticastMember: a paused coordinator resumed after the timeout makes no second primary", () => {
  for (const mode of ["hold", "reset"] as const) {
    const g = new SimGroup({ n: 3, seed: 2 });
    formed(g);
    g.run(300, { sendEveryMs: 30 });
    const coord = g.members.get("m2")!.coordinator!;
    assert.equal(coord, "m1");
    g.pause("m1");
    if (mode === "reset") g.net.partition(["m1"], ["m2", "m3"], "reset");
    g.runUntil(
      () => ["m2", "m3"].every((n) => g.members.get(n)!.view.members.join() === "m2,m3"),
      "view without m1",
    );
    g.run(600, { sendEveryMs: 30 });
    if (mode === "reset") g.net.healAll();
    g.resume("m1");
    g.run(50, { sendEveryMs: 30 });
    assertSafe(g, false);
    g.runUntil(() => g.settled(), "m1 back");
    assertSafe(g);
  }
});

Deno.test("MulticastMember: two halves of four never both deliver; neither is primary until the heal", () => {
  const g = new SimGroup({ n: 4, seed: 3 });
  formed(g);
  g.run(300, { sendEveryMs: 30 });
  g.net.partition(["m1", "m2"], ["m3", "m4"], "reset");
  g.runUntil(
    () => g.names.every((n) => g.members.get(n)!.reportedState === "no_quorum"),
    "no quorum",
  );
  const mark = g.events.length;
  g.run(2_000, { sendEveryMs: 30 });
  const late = g.events.slice(mark).filter((e) => e.ev === "mc.delivered");
  assert.deepEqual(late, []);
  assert.ok(g.names.every((n) => !g.send(n)));
  g.net.healAll();
  g.runUntil(() => g.settled(), "heal");
  g.run(300, { sendEveryMs: 30 });
  g.runUntil(() => g.settled(), "quiet");
  assertSafe(g);
});

Deno.test("MulticastMember: a one-way cut (m1's frames to m3 lost) keeps one order", () => {
  const g = new SimGroup({ n: 3, seed: 4 });
  formed(g);
  g.net.cut("m1", "m3", "reset");
  g.run(3_000, { sendEveryMs: 30 });
  assertSafe(g, false);
  g.net.healAll();
  g.runUntil(() => g.settled(), "heal");
  assertSafe(g);
});

Deno.test("MulticastMember: randomized partitions, one-way cuts, pauses and crashes never break prefix consistency (60 seeds; MC_SIM_SEEDS=n for more)", () => {
  const seeds = Number(Deno.env.get("MC_SIM_SEEDS") ?? "60");
  for (let seed = 10; seed < 10 + seeds; seed++) {
    const n = seed % 2 === 0 ? 3 : 5;
    const g = new SimGroup({ n, seed });
    formed(g);
    const r = g.random;
    const pick = () => g.names[Math.floor(r() * n)];
    for (let round = 0; round < 6; round++) {
      const fault = Math.floor(r() * 5);
      const victim = pick();
      const mode = r() < 0.5 ? "hold" : "reset";
      if (fault === 0) {
        const shuffled = [...g.names].sort(() => r() - 0.5);
        const k = 1 + Math.floor(r() * (n - 1));
        g.net.partition(shuffled.slice(0, k), shuffled.slice(k), mode);
      } else if (fault === 1) {
        g.net.partition([victim], g.names.filter((x) => x !== victim), mode);
      } else if (fault === 2) {
        let other = pick();
        if (other === victim) other = g.names[(g.names.indexOf(victim) + 1) % n];
        g.net.cut(victim, other, mode);
      } else if (fault === 3) {
        g.pause(victim);
      } else if (!g.down.has(victim)) {
        g.crash(victim);
      }
      g.run(200 + r() * 1_500, { sendEveryMs: 25 });
      if (r() < 0.6) g.net.healAll();
      for (const p of [...g.paused]) if (r() < 0.7) g.resume(p);
      for (const d of [...g.down]) if (r() < 0.6) g.restart(d);
      g.run(r() * 800, { sendEveryMs: 25 });
      const problems = checkMulticastEvents(g.events, { quorum: g.quorum });
      assert.deepEqual(
        problems,
        [],
        `seed ${seed} round ${round}: ${problems.slice(0, 3).join("; ")}`,
      );
    }
    g.net.healAll();
    for (const p of [...g.paused]) g.resume(p);
    for (const d of [...g.down]) g.restart(d);
    try {
      g.runUntil(() => g.settled(), `seed ${seed}: one view after the heal`, 60_000);
    } catch (err) {
      const states = g.names.map((x) => JSON.stringify(g.members.get(x)!.status()));
      throw new Error(`${(err as Error).message}\n${states.join("\n")}`);
    }
    const problems = checkMulticastEvents(g.events, {
      quorum: g.quorum,
      histories: g.historyIds(),
    });
    assert.deepEqual(problems, [], `seed ${seed}: ${problems.slice(0, 3).join("; ")}`);
    const counts = [...g.historyIds().values()].map((h) => h.length);
    assert.ok(counts.every((c) => c === counts[0]) && counts[0] > 0, `seed ${seed}: ${counts}`);
  }
});

Deno.test("checkMulticastEvents() catches the bug of issue 14: with quorum 1 an isolated member delivers alone", () => {
  const g = new SimGroup({ n: 3, seed: 5, quorum: 1 });
  formed(g);
  g.run(300, { sendEveryMs: 30 });
  g.net.partition(["m3"], ["m1", "m2"], "reset");
  g.run(2_000, { sendEveryMs: 30 });
  const alone = g.events.filter((e) =>
    e.node === "m3" && e.ev === "view.installed" && e.primary === true &&
    (e.members as string[]).join() === "m3"
  );
  assert.ok(alone.length > 0, "m3 formed a view of its own");
  g.net.healAll();
  g.run(3_000, { sendEveryMs: 30 });
  const problems = checkMulticastEvents(g.events, { quorum: 1, histories: g.historyIds() });
  assert.ok(problems.length > 0, "the checker must see the divergence");
});

Deno.test("MulticastMember: a failing history store is an event and a failed state, not a crash", () => {
  const g = new SimGroup({ n: 3, seed: 6 });
  formed(g);
  g.histories.get("m2")!.failNext = new Error("disk I/O error");
  g.send("m1", "hello");
  g.runUntil(() => g.events.some((e) => e.ev === "mc.store.failed"), "store failure event");
  const ev = g.events.find((e) => e.ev === "mc.store.failed")!;
  assert.deepEqual([ev.node, ev.message], ["m2", "disk I/O error"]);
  assert.equal(g.members.get("m2")!.reportedState, "failed");
  assert.equal(g.send("m2", "more"), false);
  assertSafe(g, false);
});

Deno.test("HistoryStore: a version 1 file (before last_view) opens at version 2 with its history", async () => {
  const { DatabaseSync } = await import("node:sqlite");
  const { HistoryStore } = await import("../mod/multicast/history_store.ts");
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mc-store-" });
  try {
    const raw = new DatabaseSync(`${dir}/multicast.db`);
    raw.exec(`
      CREATE TABLE history (idx INTEGER PRIMARY KEY, id TEXT NOT NULL, sender TEXT NOT NULL,
        seq INTEGER NOT NULL, lamport INTEGER NOT NULL, body TEXT NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO history VALUES (1, 'm1:1', 'm1', 1, 3, 'hello');
      INSERT INTO meta VALUES ('next_seq', 2);
      PRAGMA user_version = 1;`);
    raw.close();
    const store = new HistoryStore(`${dir}/multicast.db`);
    try {
      assert.equal(store.count, 1);
    } finally {
      store.close();
    }
    const check = new DatabaseSync(`${dir}/multicast.db`);
    try {
      const v = check.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(v.user_version, 2);
    } finally {
      check.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

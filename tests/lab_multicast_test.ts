/**
 * Multicast under network faults, in the lab (namespaces, one IP a node): the isolated
 * member of issue 14 replayed, halves, one-way loss, a pause of the coordinator past the
 * failure timeout, kill -9 and restart. After each fault and heal: one view of everyone, and
 * `checkMulticastEvents` over every node's events and final history (prefix-consistent
 * deliveries, nothing delivered outside a primary view).
 */
import assert from "node:assert/strict";
import { Lab, type LabNodeSpec, labTest } from "./harness/lab.ts";
import { waitUntil } from "./harness/mod.ts";
import { checkMulticastEvents } from "../mod/multicast/mod.ts";
import type { Message } from "../mod/wire/mod.ts";

const FAST = [
  "--heartbeat-ms",
  "50",
  "--fail-timeout-ms",
  "600",
  "--flush-timeout-ms",
  "1200",
  "--bootstrap-ms",
  "1500",
  "--quiet",
];

function nodes(n: number, rate = 20): LabNodeSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `m${i + 1}`,
    role: "multicast",
    port: 7301,
    args: [...FAST, "--generate", String(rate)],
  }));
}

async function statuses(lab: Lab, names: readonly string[]): Promise<Message[]> {
  return await Promise.all(names.map((n) => lab.ctl(n, "status")));
}

/** Waits until every node in `names` is a member of one primary view with `members`. */
async function viewOf(lab: Lab, names: readonly string[], members: readonly string[]) {
  let last: Message[] = [];
  try {
    await waitUntil(async () => {
      last = await statuses(lab, names);
      return last.every((s) =>
        s.state === "member" && (s.members as string[]).join() === members.join()
      );
    }, { timeoutMs: 20_000, intervalMs: 100, what: `view ${members.join(",")}` });
  } catch {
    assert.fail(
      `no view ${members.join(",")} at ${names.join(",")}:\n  ${
        last.map((s) => `${s.name}: ${s.state} ${JSON.stringify(s.members)} v${s.view}`)
          .join("\n  ")
      }`,
    );
  }
}

/** Stops the generators, waits for one quiet view of all, and runs the checker. */
async function settleAndCheck(lab: Lab): Promise<string[][]> {
  const all = lab.names;
  await viewOf(lab, all, all);
  await Promise.all(all.map((n) => lab.ctl(n, "generate", ["0"])));
  await waitUntil(async () => {
    const s = await statuses(lab, all);
    return s.every((x) =>
      x.state === "member" && x.held === 0 && x.outbox === 0 && x.delivered === s[0].delivered
    );
  }, { timeoutMs: 20_000, intervalMs: 150, what: "quiet, equal histories" });
  const histories = await Promise.all(
    all.map(async (n) =>
      ((await lab.ctl(n, "history", ["100000"])).entries as Message[]).map((e) => String(e.id))
    ),
  );
  const problems = checkMulticastEvents(lab.allEvents(), {
    quorum: Math.floor(all.length / 2) + 1,
    histories: new Map(all.map((n, i) => [n, histories[i]])),
  });
  assert.deepEqual(problems, [], problems.slice(0, 10).join("\n"));
  for (const h of histories) assert.deepEqual(h, histories[0]);
  assert.ok(histories[0].length > 0);
  const views = lab.allEvents().filter((e) => e.ev === "view.installed");
  console.log(
    `  ${histories[0].length} delivered everywhere; views: ${
      views.map((e) => `${e.node}:${e.view}${e.primary ? "" : "(non-primary)"}`).join(" ")
    }`,
  );
  return histories;
}

function delivered(lab: Lab, node: string, from: number): number {
  return lab.events(node).slice(from).filter((e) => e.ev === "mc.delivered").length;
}

labTest(
  "lab multicast: an isolated member stops delivering, refuses send (no_quorum), and rejoins with the primary's history",
  async () => {
    await using lab = await Lab.up({ prefix: "mc1", peers: nodes(3) });
    await viewOf(lab, lab.names, lab.names);
    await waitUntil(() => delivered(lab, "m3", 0) > 20, { timeoutMs: 10_000, what: "traffic" });
    const mark3 = lab.mark("m3");
    await lab.isolate("m3");
    await lab.waitForEvent(
      "m3",
      (e) => e.ev === "view.installed" && e.primary === false,
      { from: mark3, timeoutMs: 10_000 },
    );
    assert.equal((await lab.ctl("m3", "status")).state, "no_quorum");
    await assert.rejects(
      lab.ctl("m3", "send", ["alone"]),
      (err: Error & { code?: string }) =>
        err.code === "no_quorum" || /no_quorum|fewer than/.test(err.message),
    );
    await viewOf(lab, ["m1", "m2"], ["m1", "m2"]);
    const majority = lab.mark("m1");
    await waitUntil(() => delivered(lab, "m1", majority) > 20, {
      timeoutMs: 10_000,
      what: "the majority goes on delivering",
    });
    // m3 delivers nothing the primary did not (checked below); its primary view is gone.
    await lab.heal();
    await lab.waitForEvent("m3", "mc.excluded", { from: mark3, timeoutMs: 15_000 });
    const histories = await settleAndCheck(lab);
    assert.ok(!histories[0].includes("alone"));
  },
  { timeoutMs: 90_000 },
);

labTest(
  "lab multicast: halves of five — the side of three goes on, the side of two (with the coordinator) stops",
  async () => {
    await using lab = await Lab.up({ prefix: "mc2", peers: nodes(5, 10) });
    await viewOf(lab, lab.names, lab.names);
    const left = ["m1", "m2"];
    const right = ["m3", "m4", "m5"];
    await lab.partition(left, right);
    await viewOf(lab, right, right);
    await waitUntil(async () => (await statuses(lab, left)).every((s) => s.state === "no_quorum"), {
      timeoutMs: 10_000,
      what: "no quorum on the left",
    });
    const marks = left.map((n) => lab.mark(n));
    const r = lab.mark("m3");
    await waitUntil(() => delivered(lab, "m3", r) > 10, {
      timeoutMs: 10_000,
      what: "right delivers",
    });
    await lab.heal();
    await settleAndCheck(lab);
    for (const [i, n] of left.entries()) {
      assert.ok(lab.events(n).slice(marks[i]).some((e) => e.ev === "mc.excluded"), `${n} rejoined`);
    }
  },
  { timeoutMs: 90_000 },
);

labTest("lab multicast: one-way loss (m1's packets to m3 dropped) keeps one order", async () => {
  await using lab = await Lab.up({ prefix: "mc3", peers: nodes(3) });
  await viewOf(lab, lab.names, lab.names);
  await lab.oneway("m1", "m3");
  const mark = lab.mark("m2");
  await waitUntil(
    () => lab.events("m2").slice(mark).some((e) => e.ev === "view.installed" && e.primary),
    { timeoutMs: 15_000, what: "a view change after the one-way cut" },
  );
  await waitUntil(() => delivered(lab, "m2", mark) > 10, { timeoutMs: 15_000, what: "delivery" });
  await lab.heal();
  await settleAndCheck(lab);
}, { timeoutMs: 90_000 });

labTest(
  "lab multicast: the coordinator paused past the timeout, then resumed, makes no second primary; kill -9 and restart rejoins",
  async () => {
    await using lab = await Lab.up({ prefix: "mc4", peers: nodes(3) });
    await viewOf(lab, lab.names, lab.names);
    await waitUntil(async () => (await lab.ctl("m2", "view")).coordinator === "m1", {
      timeoutMs: 5_000,
      what: "m1 coordinates",
    });
    const mark1 = lab.mark("m1");
    await lab.pause("m1");
    try {
      await viewOf(lab, ["m2", "m3"], ["m2", "m3"]);
      const m = lab.mark("m2");
      await waitUntil(() => delivered(lab, "m2", m) > 10, { timeoutMs: 10_000, what: "delivery" });
    } finally {
      await lab.resume("m1");
    }
    await lab.waitForEvent("m1", "mc.excluded", { from: mark1, timeoutMs: 15_000 });
    await viewOf(lab, lab.names, lab.names);
    await lab.kill("m2");
    await viewOf(lab, ["m1", "m3"], ["m1", "m3"]);
    await lab.restart("m2");
    await settleAndCheck(lab);
  },
  { timeoutMs: 90_000 },
);

/**
 * The lottery under network faults, in the lab: agencies started while cut off, a server
 * paused in the middle of the uploads, an agency cut off while it waits for its winners, and
 * one-way loss. Checker: every bet stored exactly once (no batch stored twice, the total
 * matches the files), every agency gets exactly its own winners and exits 0.
 */
import assert from "node:assert/strict";
import { Lab, type LabNodeSpec, labTest } from "./harness/lab.ts";
import { waitUntil } from "./harness/mod.ts";
import { sameMultiset } from "../mod/lab/checkers.ts";
import {
  type Bet,
  DEFAULT_WINNING_NUMBER,
  formatBetsCsv,
  generateBets,
} from "../mod/lottery/mod.ts";
import type { EventRecord } from "../mod/events/mod.ts";

const AGENCIES = 3;
const BETS = 3_000;
const FILES = await Deno.makeTempDir({ prefix: "peerd-lab-lottery-" });
const EXPECTED: string[][] = [];
for (let a = 1; a <= AGENCIES; a++) {
  const bets: Bet[] = generateBets(a, BETS, 17);
  // a few sure winners per agency, so every agency has some
  for (let i = 0; i < a; i++) bets[i * 97][4] = DEFAULT_WINNING_NUMBER;
  await Deno.writeTextFile(`${FILES}/agency-${a}.csv`, formatBetsCsv(bets));
  EXPECTED.push(bets.filter((b) => b[4] === DEFAULT_WINNING_NUMBER).map((b) => b[2]));
}
addEventListener("unload", () => {
  try {
    Deno.removeSync(FILES, { recursive: true });
  } catch {
    // gone
  }
});

function specs(): LabNodeSpec[] {
  return [
    { name: "lottery", role: "lottery-server", port: 7601, args: ["--agencies", String(AGENCIES)] },
    ...Array.from({ length: AGENCIES }, (_, i) => ({
      name: `agency${i + 1}`,
      role: "agency",
      unlisted: true,
      deferred: true,
      // small batches, one in flight: the upload lasts long enough to be cut in the middle
      args: [
        "--agency",
        String(i + 1),
        "--bets",
        `${FILES}/agency-${i + 1}.csv`,
        "--server",
        "{addr:lottery}",
        "--batch-max",
        "10",
        "--in-flight",
        "1",
      ],
    })),
  ];
}

/** Every agency exits 0 with exactly its winners; the server stored every bet exactly once. */
async function check(lab: Lab): Promise<void> {
  for (let a = 1; a <= AGENCIES; a++) {
    const code = await lab.exited(`agency${a}`, { timeoutMs: 40_000 });
    assert.equal(code, 0, lab.log(`agency${a}`).slice(-2000));
    const winners = lab.events(`agency${a}`).filter((e) => e.ev === "winners");
    assert.equal(winners.length, 1);
    assert.deepEqual(sameMultiset(EXPECTED[a - 1], winners[0].documents as string[]), []);
  }
  const stored = lab.events("lottery").filter((e) => e.ev === "batch.stored");
  const keys = stored.map((e) => `${e.agency}/${e.seq}`);
  assert.equal(new Set(keys).size, keys.length, "a batch stored twice");
  assert.equal(stored.reduce((n, e) => n + Number(e.count), 0), AGENCIES * BETS);
  const status = await lab.ctl("lottery", "status");
  assert.equal(status.bets, AGENCIES * BETS);
  assert.equal(status.drawn, true);
}

function storedFor(lab: Lab, agency: number): number {
  return lab.events("lottery").filter((e: EventRecord) =>
    e.ev === "batch.stored" && e.agency === agency
  )
    .length;
}

labTest(
  "lab lottery: an agency started while cut off, and a server paused mid-upload: every bet once, every agency its winners",
  async () => {
    await using lab = await Lab.up({ prefix: "avl1", peers: specs() });
    await lab.isolate("agency3");
    await Promise.all(["agency1", "agency2", "agency3"].map((a) => lab.start(a)));
    // agency 1 and 2 upload; pause the server in the middle, past the agencies' heartbeat
    await waitUntil(() => storedFor(lab, 1) >= 20, {
      timeoutMs: 20_000,
      what: "agency 1 uploading",
    });
    await lab.pause("lottery");
    await lab.waitForEvent("agency1", (e) => e.ev === "link.down", { timeoutMs: 10_000 });
    await lab.resume("lottery");
    await lab.heal(); // agency 3 gets through now, after retrying for seconds
    await check(lab);
    assert.ok(lab.events("agency1").some((e) => e.ev === "link.down" && e.reason === "heartbeat"));
  },
  { timeoutMs: 90_000 },
);

labTest(
  "lab lottery: one-way loss during the upload, an agency cut off while it waits for the draw: all finish",
  async () => {
    await using lab = await Lab.up({ prefix: "avl2", peers: specs() });
    await Promise.all(["agency1", "agency2"].map((a) => lab.start(a)));
    await waitUntil(() => storedFor(lab, 1) >= 20, {
      timeoutMs: 20_000,
      what: "agency 1 uploading",
    });
    // the server's packets to agency 1 are lost: its acknowledgements never arrive
    await lab.oneway("lottery", "agency1");
    await lab.waitForEvent("agency1", (e) => e.ev === "link.down", { timeoutMs: 10_000 });
    await lab.heal();
    // agency 2 is done and waits for the draw; cut it off, then let the last agency finish
    await lab.waitForEvent("lottery", (e) => e.ev === "agency.done" && e.agency === 2, {
      timeoutMs: 30_000,
    });
    await lab.isolate("agency2");
    await lab.start("agency3");
    await lab.waitForEvent("lottery", "draw", { timeoutMs: 30_000 });
    await lab.waitForEvent("agency2", (e) => e.ev === "link.down", { timeoutMs: 10_000 });
    await lab.heal();
    await check(lab);
  },
  { timeoutMs: 90_000 },
);

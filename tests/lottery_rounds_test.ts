/**
 * Lottery rounds, conflicting resends and refusal log lines: the store alone, and real
 * server and agency processes sharing one data directory across runs, as the course's
 * test harness does.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type ClusterNode, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import { type Message, RemoteError, RpcClient } from "../mod/wire/mod.ts";
import { type Bet, LotteryStore } from "../mod/lottery/mod.ts";
import { writeAgencyFile } from "../mod/lottery/demo.ts";

function winnersOf(stdout: string): string[] {
  return [...stdout.matchAll(/^ganador: (\d+)$/gm)].map((m) => m[1]);
}

function bet(document: string, number = 1): Bet {
  return ["Ana", "Pérez", document, "1990-01-02", number];
}

Deno.test("LotteryStore: a resend is a duplicate only with the same bets; otherwise a conflict naming the first difference", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-lottery-store-" });
  const store = new LotteryStore(`${dir}/lottery.db`);
  try {
    assert.deepEqual(store.currentRound(), { round: 1, drawn: false, winningNumber: null });
    const first = [bet("1"), bet("2"), bet("3")];
    assert.deepEqual(store.storeBatches([{ round: 1, agency: 1, seq: 0, bets: first }]), [
      { kind: "stored" },
    ]);
    // another agency's batch in between, so batch rowids interleave with others
    store.storeBatches([{ round: 1, agency: 2, seq: 0, bets: [bet("9")] }]);
    const outcomes = store.storeBatches([
      { round: 1, agency: 1, seq: 0, bets: first.map((b) => [...b] as Bet) },
      { round: 1, agency: 1, seq: 0, bets: [bet("1"), bet("2"), bet("4")] },
      { round: 1, agency: 1, seq: 0, bets: [bet("1"), bet("2")] },
      { round: 1, agency: 1, seq: 1, bets: [bet("5")] },
      { round: 1, agency: 1, seq: 1, bets: [bet("6")] }, // same key twice in one transaction
    ]);
    assert.deepEqual(outcomes, [
      { kind: "duplicate" },
      {
        kind: "conflict",
        difference: {
          storedCount: 3,
          sentCount: 3,
          index: 2,
          stored: "Ana,Pérez,3,1990-01-02,1",
          sent: "Ana,Pérez,4,1990-01-02,1",
        },
      },
      { kind: "conflict", difference: { storedCount: 3, sentCount: 2 } },
      { kind: "stored" },
      {
        kind: "conflict",
        difference: {
          storedCount: 1,
          sentCount: 1,
          index: 0,
          stored: "Ana,Pérez,5,1990-01-02,1",
          sent: "Ana,Pérez,6,1990-01-02,1",
        },
      },
    ]);
    assert.equal(store.roundBets(1), 5);
    assert.equal(store.draw(1, 1), 5);
    store.startRound(2);
    assert.deepEqual(store.currentRound(), { round: 2, drawn: false, winningNumber: null });
    assert.deepEqual(store.round(1), { round: 1, drawn: true, winningNumber: 1 });
    assert.equal(store.compareBatch(2, 1, 0, first), undefined, "round 2 starts empty");
    store.storeBatches([{ round: 2, agency: 1, seq: 0, bets: [bet("7", 5)] }]);
    assert.equal(store.draw(2, 5), 1);
    assert.deepEqual(store.winners(1, 1), ["1", "2", "3", "5"]);
    assert.deepEqual(store.winners(2, 1), ["7"]);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("LotteryStore: a version 1 file (no rounds) opens as round 1 with its bets, done agencies and draw", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-lottery-store-" });
  try {
    const db = new DatabaseSync(`${dir}/lottery.db`);
    db.exec(`
      CREATE TABLE bets (agency INTEGER NOT NULL, seq INTEGER NOT NULL, first_name TEXT NOT NULL,
        last_name TEXT NOT NULL, document TEXT NOT NULL, birthdate TEXT NOT NULL, number INTEGER NOT NULL);
      CREATE TABLE batches (agency INTEGER NOT NULL, seq INTEGER NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (agency, seq)) WITHOUT ROWID;
      CREATE TABLE agencies_done (agency INTEGER PRIMARY KEY, batches INTEGER NOT NULL, at REAL NOT NULL);
      CREATE TABLE draw (agency INTEGER NOT NULL, document TEXT NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO bets VALUES (1, 0, 'A', 'B', '10', '1990-01-01', 7574), (1, 0, 'C', 'D', '11', '1990-01-01', 3),
        (2, 0, 'E', 'F', '20', '1990-01-01', 7574);
      INSERT INTO batches VALUES (1, 0, 2), (2, 0, 1);
      INSERT INTO agencies_done VALUES (1, 1, 0), (2, 1, 0);
      INSERT INTO draw VALUES (1, '10'), (2, '20');
      INSERT INTO meta VALUES ('drawn', '7574');
      PRAGMA user_version = 1;`);
    db.close();
    const store = new LotteryStore(`${dir}/lottery.db`);
    try {
      assert.deepEqual(store.currentRound(), { round: 1, drawn: true, winningNumber: 7574 });
      assert.deepEqual([...store.doneAgencies(1)].sort(), [1, 2]);
      assert.deepEqual(store.winners(1, 1), ["10"]);
      assert.equal(store.roundBets(1), 3);
      assert.equal(
        store.compareBatch(1, 1, 0, [["A", "B", "10", "1990-01-01", 7574], [
          "C",
          "D",
          "11",
          "1990-01-01",
          3,
        ]]),
        "same",
        "the converted batch knows where its bets are",
      );
    } finally {
      store.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Agency nodes for `files` in `cluster` (deferred), pointed at `server`. */
function addAgencies(
  cluster: LocalCluster,
  server: ClusterNode,
  files: string[],
  tag: string,
  extra: string[] = [],
): ClusterNode[] {
  return files.map((file, i) =>
    cluster.add({
      name: `${tag}-agency${i + 1}`,
      role: "agency",
      unlisted: true,
      deferred: true,
      readyEvent: null,
      args: ["--agency", String(i + 1), "--bets", file, "--server", server.address, ...extra],
    })
  );
}

Deno.test("lottery: two runs in a row on one data directory each get their own winners; the closed round refuses, loudly", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "lottery", role: "lottery-server", args: ["--agencies", "3"] }],
  });
  const server = cluster.node("lottery");
  // run 1: 3 agencies, winners planted at rows {0, 99}, {50}, {}
  const plan1 = [[0, 99], [50], []];
  const expected1: string[][] = [];
  const files1: string[] = [];
  for (let a = 1; a <= 3; a++) {
    const file = `${cluster.dir}/run1-agency-${a}.csv`;
    const bets = await writeAgencyFile(file, a, 100, plan1[a - 1], 1);
    expected1.push(plan1[a - 1].map((row) => bets[row][2]));
    files1.push(file);
  }
  const run1 = addAgencies(cluster, server, files1, "run1");
  await Promise.all(run1.map((n) => n.start()));
  assert.deepEqual(await Promise.all(run1.map((n) => n.exited(30_000))), [0, 0, 0]);
  run1.forEach((n, i) => assert.deepEqual(winnersOf(n.stdout), expected1[i], n.name));

  // run 2, different files (seed 2), 5 agencies, the same (agency, seq) keys
  const plan2 = [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14, 15]];
  const expected2: string[][] = [];
  const files2: string[] = [];
  for (let a = 1; a <= 5; a++) {
    const file = `${cluster.dir}/run2-agency-${a}.csv`;
    const bets = await writeAgencyFile(file, a, 100, plan2[a - 1], 2);
    expected2.push(plan2[a - 1].map((row) => bets[row][2]));
    files2.push(file);
  }

  // the server restarted as before: round 1 is drawn, so run 2's bets are refused, not dropped
  assert.equal((await server.stop()).code, 0);
  server.spec.args = ["--agencies", "5"];
  await server.start();
  const early = addAgencies(cluster, server, files2.slice(0, 1), "early");
  const outBefore = server.stdout.length;
  await early[0].start();
  assert.equal(await early[0].exited(30_000), 1, "an agency refused must exit non-zero");
  assert.match(early[0].stderr, /the server refused: draw_done: .*round 1 is drawn/);
  assert.match(
    server.stdout.slice(outBefore),
    /action: apuesta_recibida \| result: fail \| cantidad: \d+/,
  );
  assert.equal((await server.ctl("status")).round, 1);

  // a new round is explicit: --round 2 opens it (round 1 is drawn)
  assert.equal((await server.stop()).code, 0);
  server.spec.args = ["--agencies", "5", "--round", "2"];
  const ready = server.mark();
  await server.start();
  await server.waitForEvent("round.started", { from: ready });
  const run2 = addAgencies(cluster, server, files2, "run2");
  await Promise.all(run2.map((n) => n.start()));
  assert.deepEqual(
    await Promise.all(run2.map((n) => n.exited(30_000))),
    [0, 0, 0, 0, 0],
    run2.map((n) => n.stderr).join("\n"),
  );
  run2.forEach((n, i) => assert.deepEqual(winnersOf(n.stdout), expected2[i], n.name));
  const status = await server.ctl("status");
  assert.equal(status.round, 2);
  assert.equal(status.bets, 500);
  assert.equal(status.bets_all_rounds, 800);

  // round 1's results stay queryable per round
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "t",
  });
  try {
    const r1 = await client.request({ t: "winners", agency: 1, round: 1 });
    assert.deepEqual(r1.documents, expected1[0]);
    const r2 = await client.request({ t: "winners", agency: 1 });
    assert.deepEqual(r2.documents, expected2[0]);
    await assert.rejects(
      client.request({ t: "winners", agency: 1, round: 3 }),
      (e: unknown) => e instanceof RemoteError && e.code === "round_not_open",
    );
  } finally {
    await client.close();
  }

  // going back is a usage error naming the round
  assert.equal((await server.stop()).code, 0);
  const back = await runPeerd([
    "--role",
    "lottery-server",
    "--listen",
    "127.0.0.1:0",
    "--data",
    server.dataDir,
    "--agencies",
    "5",
    "--round",
    "1",
  ]);
  assert.equal(back.code, 2);
  assert.equal(
    back.stderr.trim(),
    "peerd: --round 1: Cannot open round 1: it is closed; the current round is 2 (drawn)",
  );
});

Deno.test("lottery: a different batch under a stored (agency, seq) is a conflict: refused, logged, the agency exits 1 with one line", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "lottery", role: "lottery-server", args: ["--agencies", "2"] }],
  });
  const server = cluster.node("lottery");
  const fileA = `${cluster.dir}/a.csv`;
  const fileB = `${cluster.dir}/b.csv`;
  await writeAgencyFile(fileA, 1, 40, [3], 1);
  await writeAgencyFile(fileB, 1, 40, [3], 5);
  const [first] = addAgencies(cluster, server, [fileA], "first", ["--batch-max", "10"]);
  // agency 2 never comes, so round 1 stays open and agency 1 waits for the draw
  await first.start();
  await waitStored(server, 40);
  assert.equal(await first.kill("SIGTERM"), 0, "SIGTERM while waiting for the draw exits 0");

  // the same file again: every batch a duplicate, acknowledged (resume is idempotent)
  const [again] = addAgencies(cluster, server, [fileA], "again", ["--batch-max", "10"]);
  await again.start();
  await waitUntilSent(again);
  await waitStored(server, 40);
  assert.equal(await again.kill("SIGTERM"), 0);

  // another file under the same keys: refused as a conflict
  const before = server.stdout.length;
  const [other] = addAgencies(cluster, server, [fileB], "other", ["--batch-max", "10"]);
  await other.start();
  assert.equal(await other.exited(30_000), 1);
  const lines = other.stderr.trim().split("\n").filter((l) => l.includes("refused"));
  assert.equal(lines.length, 1, other.stderr);
  assert.match(
    lines[0],
    /the server refused: conflict: Cannot store batch \d+ of agency 1 in round 1: a different batch \d+ is stored: bet \d+ differs/,
  );
  const fails = server.stdout.slice(before).match(
    /action: apuesta_recibida \| result: fail \| cantidad: 10/g,
  );
  assert.ok(fails && fails.length >= 1, server.stdout.slice(before));
  assert.ok(server.events().some((e) => e.ev === "batch.refused" && e.code === "conflict"));
  const status = await server.ctl("status");
  assert.equal(status.bets, 40, "nothing of the conflicting file was stored");
});

Deno.test("lottery: a bad bet, an unknown agency and a closed round each log a fail line with the batch size", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "lottery", role: "lottery-server", args: ["--agencies", "1"] }],
  });
  const server = cluster.node("lottery");
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port }, {
    role: "test",
    name: "t",
  });
  try {
    const refused = async (frame: Message, code: string) => {
      await assert.rejects(
        client.request(frame),
        (e: unknown) => e instanceof RemoteError && e.code === code,
      );
    };
    const good = "Ana,Pérez,1,1990-01-02,7574\nLuis,Gómez,2,1991-02-03,5\n";
    await refused({ t: "bets", agency: 1, seq: 0, csv: good + "x,y,z\n" }, "bad_bet");
    await refused({ t: "bets", agency: 7, seq: 0, csv: good }, "unknown_agency");
    await refused({ t: "bets", agency: 1, seq: 0, round: 2, csv: good }, "round_not_open");
    const ok = await client.request({ t: "bets", agency: 1, seq: 0, csv: good });
    assert.equal(ok.round, 1);
    await refused({ t: "bets", agency: 1, seq: 0, csv: good.replace("7574", "7575") }, "conflict");
    await client.request({ t: "done", agency: 1, batches: 1 });
    await refused({ t: "bets", agency: 1, seq: 1, csv: good }, "draw_done");
    // the stored batch sent again after the draw is still acknowledged as a duplicate
    const dup = await client.request({ t: "bets", agency: 1, seq: 0, csv: good });
    assert.equal(dup.duplicate, true);
    await assert.rejects(
      server.ctl("new-round", ["1"]),
      /round_closed|Cannot open round 1/,
    );
    const opened = await server.ctl("new-round");
    assert.equal(opened.round, 2);
    const other = good.replace("Ana", "Eva");
    await refused({ t: "bets", agency: 1, seq: 0, round: 1, csv: other }, "draw_done");
    await client.request({ t: "bets", agency: 1, seq: 0, csv: other });
    await assert.rejects(server.ctl("new-round"), /Cannot open round 3: round 2 is not drawn/);
  } finally {
    await client.close();
  }
  const fails = server.stdout.match(
    /^action: apuesta_recibida \| result: fail \| cantidad: (\d+)$/gm,
  );
  // bad bet (3 lines), unknown agency, round not open, conflict, draw_done, draw_done again
  assert.deepEqual(fails?.map((l) => Number(l.split(": ").pop())), [3, 2, 2, 2, 2, 2]);
  assert.match(server.stdout, /action: nueva_ronda \| result: success \| ronda: 2/);
});

async function waitStored(server: ClusterNode, bets: number): Promise<void> {
  await waitUntil(async () => (await server.ctl("status")).bets === bets, {
    what: `${bets} stored bets`,
  });
}

/** Waits until `agency` has had every batch acknowledged (it then waits for the draw). */
async function waitUntilSent(agency: ClusterNode): Promise<void> {
  await waitUntil(() => agency.stdout.includes("apuestas_enviadas"), {
    what: `${agency.name} to have every batch acknowledged`,
  });
}

import assert from "node:assert/strict";
import { type ClusterNode, LocalCluster, runPeerd } from "./harness/mod.ts";
import { RemoteError, RpcClient } from "../mod/wire/mod.ts";
import { FrameEncoder } from "../mod/wire/mod.ts";
import {
  type Bet,
  composeYaml,
  DEFAULT_WINNING_NUMBER,
  formatBetsCsv,
  generateBets,
  MAX_BATCH_FRAME_BYTES,
  parseBetBatch,
  parseBetsCsv,
  splitCsvBatches,
} from "../mod/lottery/mod.ts";
import { writeAgencyFile } from "../mod/lottery/demo.ts";

function winnersOf(stdout: string): string[] {
  return [...stdout.matchAll(/^ganador: (\d+)$/gm)].map((m) => m[1]);
}

/** Independent recount: documents of the rows whose number is the winning one. */
function recount(bets: Bet[]): string[] {
  return bets.filter((b) => b[4] === DEFAULT_WINNING_NUMBER).map((b) => b[2]);
}

async function runLottery(
  dir: string,
  files: string[],
  options: { serverArgs?: string[]; agencyArgs?: string[] } = {},
): Promise<{ cluster: LocalCluster; server: ClusterNode; agencies: ClusterNode[] }> {
  const cluster = await LocalCluster.start({
    dir,
    nodes: [
      {
        name: "lottery",
        role: "lottery-server",
        args: ["--agencies", String(files.length), ...(options.serverArgs ?? [])],
      },
      ...files.map((_, i) => ({
        name: `agency${i + 1}`,
        role: "agency",
        unlisted: true,
        deferred: true,
        readyEvent: null,
      })),
    ],
  });
  const server = cluster.node("lottery");
  const agencies = files.map((file, i) => {
    const node = cluster.node(`agency${i + 1}`);
    node.spec.args = [
      "--agency",
      String(i + 1),
      "--bets",
      file,
      "--server",
      server.address,
      ...(options.agencyArgs ?? []),
    ];
    return node;
  });
  return { cluster, server, agencies };
}

Deno.test("lottery: 3 agencies × 100 bets → 2, 1, 0 winners; 5 × 60 → 1..5; stored before the draw, answered after", async () => {
  for (
    const plan of [[[0, 99], [50], []], [[0], [1, 2], [3, 4, 5], [6, 7, 8, 9], [
      10,
      20,
      30,
      40,
      59,
    ]]]
  ) {
    const dir = await Deno.makeTempDir({ prefix: "peerd-lottery-" });
    const count = plan.length === 3 ? 100 : 60;
    const expected: string[][] = [];
    const files: string[] = [];
    for (let a = 1; a <= plan.length; a++) {
      const file = `${dir}/agency-${a}.csv`;
      const bets = await writeAgencyFile(file, a, count, plan[a - 1]);
      expected.push(plan[a - 1].map((row) => bets[row][2]));
      files.push(file);
    }
    const { cluster, server, agencies } = await runLottery(dir, files);
    await using _ = cluster;
    await Promise.all(agencies.map((n) => n.start()));
    const codes = await Promise.all(agencies.map((n) => n.exited(30_000)));
    assert.deepEqual(codes, agencies.map(() => 0), agencies.map((n) => n.stderr).join("\n"));
    agencies.forEach((n, i) => {
      assert.match(
        n.stdout,
        new RegExp(
          `action: consulta_ganadores \\| result: success \\| cant_ganadores: ${
            expected[i].length
          }`,
        ),
      );
      assert.deepEqual(winnersOf(n.stdout), expected[i], n.name);
    });
    const events = server.events();
    const draw = events.find((e) => e.ev === "draw");
    assert.ok(draw, "no draw event");
    assert.equal(draw.winners, expected.flat().length);
    const stored = events.filter((e) => e.ev === "batch.stored");
    assert.equal(stored.reduce((n, e) => n + Number(e.count), 0), plan.length * count);
    assert.ok(stored.every((e) => e.ts <= draw.ts), "a batch was stored after the draw");
    const sent = events.filter((e) => e.ev === "winners.sent");
    assert.equal(sent.length, plan.length);
    assert.ok(sent.every((e) => e.ts >= draw.ts), "winners answered before the draw");
    assert.match(server.stdout, /action: apuesta_recibida \| result: success \| cantidad: \d+/);
    assert.match(server.stdout, /action: sorteo \| result: success/);
    const { code } = await server.stop();
    assert.equal(code, 0);
    assert.match(server.stdout, /action: shutdown \| result: success/);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lottery: 5 generated agencies × 25,000 bets in parallel; stored count and winners match a recount", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-lottery-" });
  const gen = await runPeerd([
    "lottery-gen",
    "--agencies",
    "5",
    "--bets",
    "25000",
    "--out",
    dir,
    "--seed",
    "42",
  ]);
  assert.equal(gen.code, 0, gen.stderr);
  const files = [1, 2, 3, 4, 5].map((a) => `${dir}/agency-${a}.csv`);
  const parsed = files.map((f) => parseBetsCsv(Deno.readTextFileSync(f)));
  assert.ok(parsed.every((p) => p.invalid.length === 0 && p.bets.length === 25_000));
  const { cluster, server, agencies } = await runLottery(dir, files);
  await using _ = cluster;
  await Promise.all(agencies.map((n) => n.start()));
  const codes = await Promise.all(agencies.map((n) => n.exited(60_000)));
  assert.deepEqual(codes, [0, 0, 0, 0, 0], agencies.map((n) => n.stderr).join("\n"));
  const status = await server.ctl("status");
  assert.equal(status.bets, 125_000);
  agencies.forEach((n, i) =>
    assert.deepEqual(winnersOf(n.stdout), recount(parsed[i].bets), n.name)
  );
  assert.ok(
    parsed.some((p) => recount(p.bets).length > 0),
    "the generated files should hold some winners",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lottery: server kill -9 in the middle of the upload; agencies resume; nothing lost or duplicated", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-lottery-" });
  const files: string[] = [];
  const all: Bet[][] = [];
  for (let a = 1; a <= 3; a++) {
    const bets = generateBets(a, 20_000, 9);
    all.push(bets);
    files.push(`${dir}/agency-${a}.csv`);
    await Deno.writeTextFile(files[a - 1], formatBetsCsv(bets));
  }
  // small batches so the upload lasts long enough to be interrupted
  const { cluster, server, agencies } = await runLottery(dir, files, {
    agencyArgs: ["--batch-max", "20", "--in-flight", "2"],
  });
  await using _ = cluster;
  await Promise.all(agencies.map((n) => n.start()));
  await server.waitForEvent((e) => e.ev === "batch.stored" && Number(e.seq) >= 40, {
    timeoutMs: 20_000,
  });
  await server.kill("SIGKILL");
  const before = server.events().filter((e) => e.ev === "batch.stored").length;
  assert.ok(before < 3 * 1000, "the upload finished before the kill");
  await server.start();
  const codes = await Promise.all(agencies.map((n) => n.exited(60_000)));
  assert.deepEqual(codes, [0, 0, 0], agencies.map((n) => n.stderr.slice(-2000)).join("\n"));
  const status = await server.ctl("status");
  assert.equal(status.bets, 60_000, "bets lost or duplicated");
  const stored = server.events().filter((e) => e.ev === "batch.stored");
  const keys = stored.map((e) => `${e.agency}:${e.seq}`);
  assert.equal(new Set(keys).size, keys.length, "a batch was stored twice");
  agencies.forEach((n, i) => assert.deepEqual(winnersOf(n.stdout), recount(all[i]), n.name));
  assert.ok(
    agencies.some((n) => n.events().some((e) => e.ev === "link.down")),
    "no agency saw the server go",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lottery: bad input gets clear errors and disturbs nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-lottery-" });
  const good = `${dir}/agency-1.csv`;
  await writeAgencyFile(good, 1, 10, [3]);
  const bad = `${dir}/agency-2.csv`;
  await Deno.writeTextFile(
    bad,
    "Ana,Pérez,123,1990-01-01,5\r\nBad,Row,12a,1990-01-01,5\r\nNo,Date,123,1990-02-30,5\r\nToo,Big,123,1990-01-01,10000\r\nShort,row\r\nÉva,Núñez,456,1985-12-31,7574\r\n",
  );
  const { cluster, server, agencies } = await runLottery(dir, [good, bad]);
  await using _ = cluster;
  // invalid rows: reported with line numbers, nothing sent, exit 2
  const refused = await runPeerd([
    "--role",
    "agency",
    "--agency",
    "2",
    "--bets",
    bad,
    "--server",
    server.address,
  ]);
  assert.equal(refused.code, 2);
  for (const line of [2, 3, 4, 5]) {
    assert.match(refused.stderr, new RegExp(`agency-2\\.csv:${line}: `));
  }
  assert.match(refused.stderr, /4 invalid lines; nothing sent/);
  const missing = await runPeerd([
    "--role",
    "agency",
    "--agency",
    "2",
    "--bets",
    `${dir}/nope.csv`,
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.csv: cannot read: no such file/);
  assert.equal((await server.ctl("status")).bets, 0);

  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port }, {
    name: "probe",
  });
  try {
    const ok: Bet = ["Ana", "Pérez", "123", "1990-01-01", 5];
    await assert.rejects(
      client.request({
        t: "bets",
        agency: 1,
        seq: 900,
        bets: [ok, ok, ["X", "Y", "1", "1990-01-01", 99999], ok],
      }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_bet" && e.frame.index === 2,
    );
    assert.equal((await server.ctl("status")).bets, 0, "part of a bad batch was stored");
    await assert.rejects(
      client.request({
        t: "bets",
        agency: 1,
        seq: 901,
        csv: "Ana,Pérez,123,1990-01-01,5\nAna,Pérez,12a,1990-01-01,5\n",
      }),
      (e: unknown) =>
        e instanceof RemoteError && e.code === "bad_bet" && e.frame.index === 1 &&
        /document "12a"/.test(e.message),
    );
    await assert.rejects(
      client.request({ t: "bets", agency: 1, seq: 901, csv: 42 }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_field",
    );
    assert.equal((await server.ctl("status")).bets, 0, "part of a bad CSV batch was stored");
    await assert.rejects(
      client.request({ t: "bets", agency: 9, seq: 0, bets: [ok] }),
      (e: unknown) => e instanceof RemoteError && e.code === "unknown_agency",
    );
    await assert.rejects(
      client.request({ t: "bets", agency: "1", seq: 0, bets: [ok] }),
      (e: unknown) => e instanceof RemoteError && e.code === "bad_field",
    );
    await assert.rejects(
      client.request({ t: "winners", agency: 1 }),
      (e: unknown) => e instanceof RemoteError && e.code === "not_drawn",
    );
    // a batch resent is stored once
    const first = await client.request({ t: "bets", agency: 1, seq: 900, bets: [ok] });
    const again = await client.request({ t: "bets", agency: 1, seq: 900, bets: [ok] });
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.equal((await server.ctl("status")).bets, 1);
    await assert.rejects(
      client.request({ t: "done", agency: 1, batches: 5 }),
      (e: unknown) => e instanceof RemoteError && e.code === "missing_batches",
    );
    assert.equal((await client.request({ t: "done", agency: 1, batches: 1 })).t, "done.ok");
    await assert.rejects(
      client.request({ t: "done", agency: 1 }),
      (e: unknown) => e instanceof RemoteError && e.code === "already_done",
    );
  } finally {
    await client.close();
  }
  // garbage frames: an error, and the server keeps serving
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await raw.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  const buf = new Uint8Array(4096);
  for (let i = 0; i < 20; i++) if ((await raw.read(buf)) === null) break;
  raw.close();
  const echo = await runPeerd(["echo-check", server.address]);
  assert.equal(echo.code, 0);
  assert.equal(echo.stdout.trim(), "action: test_echo_server | result: success");
  // agency 2 with --skip-invalid sends the two good rows; then the draw happens
  agencies[1].spec.args = [...agencies[1].spec.args!, "--skip-invalid"];
  await agencies[1].start();
  assert.equal(await agencies[1].exited(30_000), 0, agencies[1].stderr);
  assert.deepEqual(winnersOf(agencies[1].stdout), ["456"]);
  assert.equal((await server.ctl("status")).bets, 3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lottery: lottery-gen is deterministic, compose renders N = 0 and N = 3, echo-check fails cleanly", async () => {
  assert.deepEqual(generateBets(2, 50, 7), generateBets(2, 50, 7));
  assert.notDeepEqual(generateBets(2, 50, 7), generateBets(2, 50, 8));
  const zero = composeYaml(0);
  assert.match(zero, /^services:$/m);
  assert.match(zero, /^ {2}server:$/m);
  assert.doesNotMatch(zero, /agency1:/);
  const three = composeYaml(3);
  for (const a of [1, 2, 3]) {
    assert.match(three, new RegExp(`^  agency${a}:$`, "m"));
    assert.match(three, new RegExp(`"--bets", "/config/agency-${a}.csv"`));
  }
  assert.match(three, /- \.\/config:\/config:ro/);
  assert.match(three, /^networks:\n {2}lottery_net:/m);
  const dir = await Deno.makeTempDir();
  try {
    const r = await runPeerd(["compose", "--agencies", "2", "--out", `${dir}/c.yaml`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(Deno.readTextFileSync(`${dir}/c.yaml`), composeYaml(2));
    assert.equal(
      (await runPeerd(["compose", "--agencies", "-1", "--out", `${dir}/c.yaml`])).code,
      2,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const fail = await runPeerd(["echo-check", "127.0.0.1:1", "--timeout", "1"]);
  assert.equal(fail.code, 1);
  assert.match(fail.stdout, /action: test_echo_server \| result: fail/);
});

Deno.test("splitCsvBatches() keeps every bets frame within 8 KiB and every valid line exactly once", () => {
  const long: Bet = ["Á".repeat(100), "Ñ".repeat(100), "12345678901234567890", "1999-12-31", 9999];
  const bets = [...generateBets(1, 3000, 3), ...Array.from({ length: 50 }, () => long)];
  const text = "\uFEFF" + formatBetsCsv(bets).replace(/\n/g, "\r\n") +
    "\r\nbad,line\r\n" + formatBetsCsv(bets.slice(0, 10));
  const { batches, invalid, valid } = splitCsvBatches(1, text, MAX_BATCH_FRAME_BYTES, 100_000);
  assert.deepEqual(invalid, [{ line: 3052, reason: "expected 5 comma-separated fields, got 2" }]);
  assert.equal(valid, bets.length + 10);
  const encoder = new FrameEncoder();
  const back: Bet[] = [];
  for (const [seq, batch] of batches.entries()) {
    const frame = encoder.encode({ t: "bets", agency: 1, seq, csv: batch.csv, rid: 2 ** 31 - 1 });
    assert.ok(frame.length <= MAX_BATCH_FRAME_BYTES, `batch ${seq}: ${frame.length} bytes`);
    const parsed = parseBetBatch(batch.csv, 10_000);
    assert.ok("bets" in parsed, `batch ${seq} does not parse`);
    assert.equal(parsed.bets.length, batch.count);
    back.push(...parsed.bets);
  }
  assert.deepEqual(back, [...bets, ...bets.slice(0, 10)]);
  const small = splitCsvBatches(1, text, MAX_BATCH_FRAME_BYTES, 10).batches;
  assert.ok(small.every((b) => b.count <= 10 && b.count > 0));
});

Deno.test("parseBetBatch() names the first bad line by index and refuses blank lines", () => {
  const cases: Array<[string, number, unknown]> = [
    [
      "A,B,1,2020-01-01,7\nA,B,1,2020-13-01,7\n",
      10,
      { index: 1, problem: 'birthdate "2020-13-01" is not a YYYY-MM-DD date' },
    ],
    [
      "A,B,1,2020-01-01,7\n\nA,B,1,2020-01-01,7",
      10,
      { index: 1, problem: "expected 5 comma-separated fields, got 1" },
    ],
    ["A,B,1,2020-01-01,10000", 10, {
      index: 0,
      problem: 'number "10000" is not an integer 0..9999',
    }],
    ["A,B,x1,2020-01-01,1", 10, { index: 0, problem: 'document "x1" is not 1 to 20 digits' }],
    [
      "A,B,1,2020-01-01,1\nA,B,1,2020-01-01,2",
      1,
      { index: 1, problem: "more than 1 bets in one batch" },
    ],
    [
      " Zoë , Ünal ,007, 2001-02-28 , 12 \r\n",
      10,
      { bets: [["Zoë", "Ünal", "007", "2001-02-28", 12]] },
    ],
  ];
  for (const [csv, max, expected] of cases) {
    assert.deepEqual(parseBetBatch(csv, max), expected, JSON.stringify(csv));
  }
});

Deno.test("parseBetsCsv() reads CRLF/LF with accents and names bad lines", () => {
  const { bets, invalid } = parseBetsCsv(
    "José,Núñez,30904465,1999-03-17,7574\r\n\nA,B,1,2020-01-01,0\nA,,1,2020-01-01,0\n",
  );
  assert.deepEqual(bets, [["José", "Núñez", "30904465", "1999-03-17", 7574], [
    "A",
    "B",
    "1",
    "2020-01-01",
    0,
  ]]);
  assert.deepEqual(invalid, [{ line: 4, reason: "last_name is empty" }]);
});

Deno.test("lottery-server without --agencies exits 2", async () => {
  const r = await runPeerd(["--role", "lottery-server", "--listen", "127.0.0.1:0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--agencies/);
});

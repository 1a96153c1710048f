/**
 * The course's TP0 checks (exercises 4–8) that apply to the lottery, as integration tests
 * with real server and agency processes: graceful SIGTERM (ej4), batch sizes in the
 * server's log (ej6), every bet stored before the draw and every winners answer after it
 * (ej7), each agency's own winners with 3 and 5 agencies in parallel (ej8).
 */
import assert from "node:assert/strict";
import { type ClusterNode, LocalCluster, runPeerd } from "./harness/mod.ts";
import { type Bet, DEFAULT_WINNING_NUMBER, parseBetsCsv } from "../mod/lottery/mod.ts";

function winnersOf(stdout: string): string[] {
  return [...stdout.matchAll(/^ganador: (\d+)$/gm)].map((m) => m[1]);
}

/** Independent recount: documents of the rows whose number is the winning one. */
function recount(bets: Bet[]): string[] {
  return bets.filter((b) => b[4] === DEFAULT_WINNING_NUMBER).map((b) => b[2]);
}

async function generate(dir: string, agencies: number, bets: number, seed: number) {
  const gen = await runPeerd([
    "lottery-gen",
    "--agencies",
    String(agencies),
    "--bets",
    String(bets),
    "--out",
    dir,
    "--seed",
    String(seed),
  ]);
  assert.equal(gen.code, 0, gen.stderr);
  return Array.from({ length: agencies }, (_, i) => `${dir}/agency-${i + 1}.csv`);
}

function addAgencies(
  cluster: LocalCluster,
  server: ClusterNode,
  files: string[],
  extra: string[] = [],
  tag = "",
): ClusterNode[] {
  return files.map((file, i) =>
    cluster.add({
      name: `agency${i + 1}${tag}`,
      role: "agency",
      unlisted: true,
      deferred: true,
      readyEvent: null,
      args: ["--agency", String(i + 1), "--bets", file, "--server", server.address, ...extra],
    })
  );
}

Deno.test("course ej4: SIGTERM exits 0 for a server without agencies, a server during an upload, and an agency during an upload", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "lottery", role: "lottery-server", args: ["--agencies", "2"] }],
  });
  const server = cluster.node("lottery");
  const { code, ms } = await server.stop();
  assert.equal(code, 0);
  assert.ok(ms < 5_000, `shutdown took ${ms} ms`);
  assert.match(server.stdout, /^action: shutdown \| result: success$/m);

  const files = await generate(cluster.dir, 2, 40_000, 3);
  await server.start();
  const agencies = addAgencies(cluster, server, files, ["--batch-max", "50"]);
  await Promise.all(agencies.map((a) => a.start()));
  // agency 1 itself is uploading (so it has its signal handlers): one of its batches is stored
  await server.waitForEvent((e) => e.ev === "batch.stored" && e.agency === 1, {
    timeoutMs: 30_000,
  });
  // an agency in the middle of its upload
  assert.equal(await agencies[0].kill("SIGTERM"), 0, agencies[0].stderr);
  assert.match(agencies[0].stdout, /action: shutdown \| result: success/);
  // the server in the middle of the other agency's upload
  const out = server.stdout.length;
  assert.equal(await server.kill("SIGTERM"), 0, server.stderr);
  assert.match(server.stdout.slice(out), /^action: shutdown \| result: success$/m);
  // what it acknowledged survived: a restarted server and agencies finish the round
  await server.start();
  for (const a of agencies) {
    if (a.running) await a.kill("SIGTERM");
  }
  for (const a of agencies) await a.start();
  const codes = await Promise.all(agencies.map((a) => a.exited(60_000)));
  assert.deepEqual(codes, [0, 0], agencies.map((a) => a.stderr).join("\n"));
  assert.equal((await server.ctl("status")).bets, 80_000);
});

Deno.test("course ej6: every batch's cantidad adds up to the bets sent, only the last batch short, for several batch sizes", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "lottery", role: "lottery-server", args: ["--agencies", "1"] }],
  });
  const server = cluster.node("lottery");
  const [file] = await generate(cluster.dir, 1, 123, 4);
  const total = parseBetsCsv(await Deno.readTextFile(file)).bets.length;
  assert.equal(total, 123);
  for (const [i, batchMax] of [1, 7, 50, 123].entries()) {
    // a fresh round per batch size, so the same file is stored again
    if (i > 0) assert.equal((await server.ctl("new-round")).round, i + 1);
    const [agency] = addAgencies(
      cluster,
      server,
      [file],
      ["--batch-max", String(batchMax)],
      `-b${batchMax}`,
    );
    const out = server.stdout.length;
    const mark = server.mark();
    await agency.start();
    assert.equal(await agency.exited(30_000), 0, agency.stderr);
    const counts = [
      ...server.stdout.slice(out).matchAll(
        /^action: apuesta_recibida \| result: success \| cantidad: (\d+)$/gm,
      ),
    ].map((m) => Number(m[1]));
    assert.equal(counts.reduce((a, b) => a + b, 0), total, `batch-max ${batchMax}`);
    assert.equal(counts.length, Math.ceil(total / batchMax), `batch-max ${batchMax}`);
    // by sequence number: every batch full but the last
    const stored = server.events().slice(mark).filter((e) => e.ev === "batch.stored")
      .sort((a, b) => Number(a.seq) - Number(b.seq)).map((e) => Number(e.count));
    const full = stored.slice(0, -1);
    assert.ok(full.every((c) => c === batchMax), `batch-max ${batchMax}: ${stored}`);
    assert.equal(stored.at(-1), total - batchMax * full.length);
    assert.doesNotMatch(server.stdout.slice(out), /result: fail/);
  }
});

for (const agencies of [3, 5]) {
  Deno.test(`course ej7 and ej8: ${agencies} agencies in parallel; stored before the sorteo, answered after it; each gets its own winners`, async () => {
    await using cluster = await LocalCluster.start({
      nodes: [{
        name: "lottery",
        role: "lottery-server",
        args: ["--agencies", String(agencies)],
      }],
    });
    const server = cluster.node("lottery");
    const files = await generate(cluster.dir, agencies, 3_000, 10 + agencies);
    const expected = await Promise.all(
      files.map(async (f) => recount(parseBetsCsv(await Deno.readTextFile(f)).bets)),
    );
    assert.ok(expected.some((w) => w.length > 0), "the generated files should hold winners");
    const nodes = addAgencies(cluster, server, files);
    await Promise.all(nodes.map((n) => n.start()));
    const codes = await Promise.all(nodes.map((n) => n.exited(60_000)));
    assert.deepEqual(codes, nodes.map(() => 0), nodes.map((n) => n.stderr).join("\n"));
    nodes.forEach((n, i) => {
      assert.match(
        n.stdout,
        new RegExp(
          `^action: consulta_ganadores \\| result: success \\| cant_ganadores: ${
            expected[i].length
          }$`,
          "m",
        ),
      );
      assert.deepEqual(winnersOf(n.stdout), expected[i], n.name);
    });
    const lines = server.stdout.split("\n");
    const sorteo = lines.findIndex((l) => l === "action: sorteo | result: success");
    assert.ok(sorteo > 0, server.stdout);
    assert.equal(lines.filter((l) => l === "action: sorteo | result: success").length, 1);
    const received = lines.flatMap((l, i) => l.startsWith("action: apuesta_recibida") ? [i] : []);
    const answered = lines.flatMap((l, i) => l.startsWith("action: consulta_ganadores") ? [i] : []);
    assert.ok(received.length > 0 && received.every((i) => i < sorteo), "a bet after the sorteo");
    assert.equal(answered.length, agencies);
    assert.ok(answered.every((i) => i > sorteo), "winners answered before the sorteo");
  });
}

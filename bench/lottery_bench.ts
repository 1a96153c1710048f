/**
 * Lottery benchmark: end-to-end bets/s for 5 agencies × 100,000 bets (real server and
 * agency processes, 8 KiB batches, from start of the agencies to the last agency's
 * winners), next to the ceiling: the same rows inserted into SQLite by one process, in
 * the server's schema, in transactions of the same batches.
 *
 * `deno run -A bench/lottery_bench.ts [--agencies 5] [--bets 100000] [--reps 3]`
 *
 * @module
 */
import { LocalCluster } from "../mod/harness/mod.ts";
import {
  type Bet,
  formatBetsCsv,
  generateBets,
  LotteryStore,
  MAX_BATCH_FRAME_BYTES,
  parseBetBatch,
  splitCsvBatches,
} from "../mod/lottery/mod.ts";

const arg = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const agencies = arg("--agencies", 5);
const perAgency = arg("--bets", 100_000);
const reps = arg("--reps", 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = await Deno.makeTempDir({ prefix: "peerd-lottery-bench-" });
try {
  const all: Bet[][] = [];
  const texts: string[] = [];
  for (let a = 1; a <= agencies; a++) {
    const bets = generateBets(a, perAgency, 2026);
    all.push(bets);
    texts.push(formatBetsCsv(bets));
    await Deno.writeTextFile(`${dir}/agency-${a}.csv`, texts[a - 1]);
  }
  const total = agencies * perAgency;
  const ceilings: number[] = [];
  const endToEnd: number[] = [];
  for (let r = 0; r < reps; r++) {
    // ceiling: one process, the server's store, the same batches, one transaction per 64 batches
    const path = `${dir}/ceiling-${r}.db`;
    const store = new LotteryStore(path);
    // the batches the agencies send, parsed as the server parses them (outside the timing)
    const batches = texts.flatMap((text, i) =>
      splitCsvBatches(i + 1, text, MAX_BATCH_FRAME_BYTES, 1000).batches.map((b, seq) => {
        const parsed = parseBetBatch(b.csv, 10_000);
        if (!("bets" in parsed)) throw new Error(`batch ${seq}: ${parsed.problem}`);
        return { round: 1, agency: i + 1, seq, bets: parsed.bets };
      })
    );
    const t0 = performance.now();
    for (let i = 0; i < batches.length; i += 64) store.storeBatches(batches.slice(i, i + 64));
    ceilings.push(total / ((performance.now() - t0) / 1000));
    store.close();
    // every repetition starts from the same disk state: no earlier database left behind
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});

    await using cluster = await LocalCluster.start({
      dir: `${dir}/run-${r}`,
      nodes: [
        { name: "lottery", role: "lottery-server", args: ["--agencies", String(agencies)] },
        ...all.map((_, i) => ({
          name: `agency${i + 1}`,
          role: "agency",
          unlisted: true,
          deferred: true,
          readyEvent: null,
        })),
      ],
    });
    const server = cluster.node("lottery");
    const nodes = all.map((_, i) => {
      const n = cluster.node(`agency${i + 1}`);
      n.spec.args = [
        "--agency",
        String(i + 1),
        "--bets",
        `${dir}/agency-${i + 1}.csv`,
        "--server",
        server.address,
      ];
      return n;
    });
    const t1 = performance.now();
    await Promise.all(nodes.map((n) => n.start()));
    const codes = await Promise.all(nodes.map((n) => n.exited(120_000)));
    const secs = (performance.now() - t1) / 1000;
    if (codes.some((c) => c !== 0)) throw new Error(`agency exit codes ${codes.join(",")}`);
    if (Deno.args.includes("--cpu")) {
      const stat = Deno.readTextFileSync(`/proc/${server.pid}/stat`).split(") ")[1].split(" ");
      console.error(
        `server cpu user ${Number(stat[11]) / 100}s sys ${Number(stat[12]) / 100}s, wall ${
          secs.toFixed(2)
        }s`,
      );
    }
    const status = await server.ctl("status");
    if (Deno.args.includes("--cpu")) console.error(`transactions ${String(status.transactions)}`);
    if (status.bets !== total) throw new Error(`server stored ${String(status.bets)} of ${total}`);
    endToEnd.push(total / secs);
    await cluster.stop();
    await Deno.remove(`${dir}/run-${r}`, { recursive: true }).catch(() => {});
  }
  const e = median(endToEnd);
  const c = median(ceilings);
  const line = (figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
    console.log(
      JSON.stringify({ bench: "lottery", figure, value: Math.round(value), unit, ...extra }),
    );
  line("end_to_end", e, "bets/s", {
    agencies,
    bets_per_agency: perAgency,
    runs: endToEnd.map(Math.round),
    includes: "process start, CSV parse, upload, draw, winners",
  });
  line("sqlite_ceiling", c, "bets/s", { runs: ceilings.map(Math.round) });
  console.log(
    JSON.stringify({
      bench: "lottery",
      figure: "end_to_end_vs_ceiling",
      value: Number((e / c).toFixed(3)),
      target: ">= 0.5",
    }),
  );
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

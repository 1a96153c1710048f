/**
 * Lab benchmark (Linux, root, `ip`, `nft`): time to reconverge after the heal of a
 * partition, in network namespaces, one IP a node.
 *
 * - gossip, 5 nodes, default timings: one node isolated until every side has declared the
 *   other dead, a key written on each side, heal → every member alive everywhere and every
 *   key the same everywhere; and the same with a 2 | 3 partition;
 * - ratings, 3 replicas + 2 front ends, default timings: a 1 RM + 1 FE | 2 RM + 1 FE
 *   partition, writes on both sides, heal → one checksum and value timestamp everywhere;
 * - MOM, broker + 2 daemons: a publisher's daemon cut off for 5 s while it accepts
 *   publications, heal → every publication received by a subscriber on the other daemon.
 *
 * Each figure is the median of `--reps` cycles (default 5) in one lab; polling every 25 ms.
 * One JSON line per figure; without root (or ip/nft) one line `{"skipped": reason}`.
 *
 *     deno run -A bench/lab_bench.ts [--reps 5]
 *
 * @module
 */
import { Lab, labAvailable } from "../mod/lab/mod.ts";
import { allEqual, membershipConverged, valuesConverged } from "../mod/lab/checkers.ts";
import { pause } from "../mod/harness/mod.ts";
import {
  generateDataset,
  RatingsClient,
  RatingsSession,
  writeDatasetDir,
} from "../mod/ratings/mod.ts";
import { MomClient } from "../mod/mom/mod.ts";
import type { Message } from "../mod/wire/mod.ts";

const repsArg = Deno.args.indexOf("--reps");
const REPS = repsArg >= 0 ? Number(Deno.args[repsArg + 1]) : 5;

function emit(figure: string, values: number[], extra: Record<string, unknown> = {}) {
  const s = [...values].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  console.log(JSON.stringify({
    bench: "lab",
    figure,
    value: Math.round(median),
    unit: "ms",
    median_of: s.length,
    min: Math.round(s[0]),
    max: Math.round(s[s.length - 1]),
    ...extra,
  }));
}

/** Polls `problems` every 25 ms until it returns none; the time taken, or throws after `timeoutMs`. */
async function timeTo(
  what: string,
  problems: () => Promise<string[]>,
  timeoutMs = 60_000,
): Promise<number> {
  const t0 = performance.now();
  let last: string[] = [];
  while (performance.now() - t0 < timeoutMs) {
    last = await problems();
    if (last.length === 0) return performance.now() - t0;
    await pause(25);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms: ${last.slice(0, 5).join("; ")}`);
}

async function gossipViews(lab: Lab, nodes: string[]) {
  const out: Record<string, Record<string, string>> = {};
  await Promise.all(nodes.map(async (n) => {
    const r = await lab.ctl(n, "members");
    out[n] = Object.fromEntries(
      (r.members as Array<{ name: string; state: string }>).map((m) => [m.name, m.state]),
    );
  }));
  return out;
}

async function gossipValues(lab: Lab, nodes: string[], keys: string[]) {
  const out: Record<string, Record<string, unknown>> = {};
  await Promise.all(nodes.map(async (n) => {
    out[n] = {};
    for (const k of keys) {
      try {
        const r = await lab.ctl(n, "get", [k]);
        out[n][k] = r.version;
      } catch {
        // missing
      }
    }
  }));
  return out;
}

async function gossipBench(): Promise<void> {
  const nodes = ["g1", "g2", "g3", "g4", "g5"];
  await using lab = await Lab.up({
    prefix: "avbg",
    peers: nodes.map((name) => ({ name, role: "gossip", port: 7201 })),
  });
  const converged = async (keys: string[]) => [
    ...membershipConverged(await gossipViews(lab, nodes), nodes),
    ...valuesConverged(await gossipValues(lab, nodes, keys), keys),
  ];
  await timeTo("joined", () => converged([]));
  for (
    const [figure, left, right] of [
      ["gossip_reconverge_after_isolation", ["g3"], ["g1", "g2", "g4", "g5"]],
      ["gossip_reconverge_after_halves", ["g1", "g2"], ["g3", "g4", "g5"]],
    ] as const
  ) {
    const times: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      await lab.partition([...left], [...right]);
      await timeTo("cut detected", async () => {
        const v = await gossipViews(lab, nodes);
        const p: string[] = [];
        for (const a of left) {
          for (const b of right) {
            if (v[a][b] !== "dead" || v[b][a] !== "dead") p.push(`${a}|${b}`);
          }
        }
        return p;
      });
      const keys = [`${figure}-${rep}-l`, `${figure}-${rep}-r`];
      await lab.ctl(left[0], "spread", [keys[0], "x"]);
      await lab.ctl(right[0], "spread", [keys[1], "y"]);
      await lab.heal();
      times.push(await timeTo("reconverged", () => converged(keys)));
    }
    emit(figure, times, { nodes: 5, timings: "defaults" });
  }
}

async function ratingsBench(): Promise<void> {
  const data = await Deno.makeTempDir({ prefix: "peerd-lab-bench-ratings-" });
  try {
    await writeDatasetDir(
      data,
      generateDataset({ seed: 5, users: 40, movies: 300, ratings: 2_000 }),
    );
    const movies = (await Deno.readTextFile(`${data}/movies.csv`)).trim().split("\n").slice(1)
      .map((l) => Number(l.split(",")[0]));
    const rms = ["rm1", "rm2", "rm3"];
    await using lab = await Lab.up({
      prefix: "avbr",
      peers: [
        ...rms.map((name) => ({ name, role: "replica", port: 7701, args: ["--dataset", data] })),
        { name: "fe1", role: "frontend", port: 7711 },
        { name: "fe2", role: "frontend", port: 7711 },
      ],
    });
    const diverged = async () => {
      const st = await Promise.all(rms.map((n) => lab.ctl(n, "status")));
      const by = (f: (s: Message) => unknown) =>
        Object.fromEntries(rms.map((n, i) => [n, f(st[i])]));
      return [...allEqual(by((s) => s.checksum)), ...allEqual(by((s) => s.value_ts))];
    };
    await timeTo("FEs ready", async () => {
      const st = await Promise.all(["fe1", "fe2"].map((f) => lab.ctl(f, "status")));
      return st.flatMap((s) =>
        (s.rms as Message[]).filter((r) => r.status !== "ACTIVE").map((r) => String(r.name))
      );
    });
    const west = new RatingsClient(lab.hostPort("fe1"));
    const east = new RatingsClient(lab.hostPort("fe2"));
    try {
      const times: number[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        await lab.partition(["rm1", "fe1"], ["rm2", "rm3", "fe2"]);
        const w = new RatingsSession(`${lab.dir}/w${rep}.json`, 100 + rep);
        const e = new RatingsSession(`${lab.dir}/e${rep}.json`, 200 + rep);
        for (let i = 0; i < 5; i++) {
          await west.send(w, {
            t: "ratings.update",
            kind: "create",
            user: w.user,
            movie: movies[i],
            rating: 3,
          });
          await east.send(e, {
            t: "ratings.update",
            kind: "create",
            user: e.user,
            movie: movies[i],
            rating: 4,
          });
        }
        await lab.heal();
        times.push(await timeTo("one checksum", diverged));
      }
      emit("ratings_reconverge_after_partition", times, { rms: 3, fes: 2, writes_per_side: 5 });
    } finally {
      await west.close();
      await east.close();
    }
  } finally {
    await Deno.remove(data, { recursive: true }).catch(() => {});
  }
}

async function momBench(): Promise<void> {
  await using lab = await Lab.up({
    prefix: "avbm",
    peers: [
      { name: "b1", role: "broker", port: 7401 },
      { name: "d1", role: "daemon", port: 7411 },
      { name: "d2", role: "daemon", port: 7411 },
    ],
  });
  for (const d of ["d1", "d2"]) {
    await timeTo(
      `${d} linked`,
      async () => (await lab.ctl(d, "status")).link === "up" ? [] : ["down"],
    );
  }
  const pubClient = await MomClient.connect(lab.hostPort("d1"));
  const subClient = await MomClient.connect(lab.hostPort("d2"));
  try {
    const pub = await pubClient.create();
    const sub = await subClient.create();
    await sub.subscribe("bench/#");
    const times: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      await lab.isolate("d1");
      const ids = new Set<string>();
      const until = performance.now() + 5_000;
      while (performance.now() < until) {
        for (let i = 0; i < 10; i++) ids.add(await pub.publish("bench/x", `r${rep}`));
        await pause(50);
      }
      await lab.heal();
      const t0 = performance.now();
      while (ids.size > 0 && performance.now() - t0 < 60_000) {
        for (const m of await sub.receiveBatch({ timeout: 200 })) ids.delete(m.id);
      }
      await sub.ack();
      if (ids.size > 0) throw new Error(`mom: ${ids.size} publications not delivered`);
      times.push(performance.now() - t0);
    }
    emit("mom_deliver_all_after_heal", times, { cut_ms: 5_000 });
  } finally {
    await pubClient.close();
    await subClient.close();
  }
}

const reason = await labAvailable();
if (reason) {
  console.log(JSON.stringify({ bench: "lab", skipped: reason }));
  console.error(`skipped: ${reason}`);
} else {
  await gossipBench();
  await ratingsBench();
  await momBench();
}

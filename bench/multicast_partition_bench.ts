/**
 * Multicast under partition, in the lab (network namespaces; needs root, `ip`, `nft`):
 * time from cutting a member off to a new primary view on the majority side, and from the
 * heal to one view of everyone again, with the default timing (`--heartbeat-ms 100`,
 * `--fail-timeout-ms 1500`) while every node sends 50 msgs/s. Cases: the coordinator
 * isolated from 3, and 2 of 5 (coordinator included) cut from the other 3. Median of REPS.
 *
 * Run: `deno run -A bench/multicast_partition_bench.ts` (or `deno task bench multicast`).
 * Without root it prints one `skipped` line and exits 0.
 *
 * @module
 */
import { Lab, labAvailable } from "../mod/lab/mod.ts";
import type { EventRecord } from "../mod/events/mod.ts";

const REPS = Number(Deno.env.get("REPS") ?? "3");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
}

function figure(name: string, values: number[], extra: Record<string, unknown>): void {
  console.log(JSON.stringify({
    bench: "multicast",
    figure: name,
    value: Math.round(median(values)),
    unit: "ms",
    runs: values.map(Math.round),
    ...extra,
  }));
}

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = performance.now() + ms;
  while (!(await pred())) {
    if (performance.now() > end) throw new Error(`bench: no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function oneView(lab: Lab, names: string[], members: string[]): Promise<boolean> {
  const s = await Promise.all(names.map((n) => lab.ctl(n, "status")));
  return s.every((x) => x.state === "member" && (x.members as string[]).join() === members.join());
}

/** The first event at or after `mark` matching `pred` at each of `nodes`; its latest ts. */
function lastFirst(
  lab: Lab,
  nodes: string[],
  marks: Map<string, number>,
  pred: (e: EventRecord) => boolean,
): number | undefined {
  let latest = -Infinity;
  for (const n of nodes) {
    const e = lab.events(n).slice(marks.get(n)).find(pred);
    if (!e) return undefined;
    latest = Math.max(latest, e.ts);
  }
  return latest;
}

async function run(n: number, cut: string[], prefix: string): Promise<void> {
  const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
  const rest = names.filter((x) => !cut.includes(x));
  await using lab = await Lab.up({
    prefix,
    peers: names.map((name) => ({
      name,
      role: "multicast",
      port: 7301,
      args: ["--generate", "50", "--quiet"],
    })),
    logLevel: "warn",
  });
  await waitFor("first view", () => oneView(lab, names, names));
  const toPrimary: number[] = [];
  const toRejoin: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const marks = new Map(names.map((x) => [x, lab.mark(x)]));
    const t0 = Date.now();
    await lab.partition(cut, rest);
    await waitFor("majority view", () => oneView(lab, rest, rest));
    const primaryAt = lastFirst(
      lab,
      rest,
      marks,
      (e) => e.ev === "view.installed" && e.primary === true,
    );
    toPrimary.push((primaryAt ?? Date.now()) - t0);
    await new Promise((r) => setTimeout(r, 1_000));
    const healMarks = new Map(names.map((x) => [x, lab.mark(x)]));
    const t1 = Date.now();
    await lab.heal();
    await waitFor("one view after the heal", () => oneView(lab, names, names));
    const allAt = lastFirst(
      lab,
      names,
      healMarks,
      (e) =>
        e.ev === "view.installed" && e.primary === true &&
        (e.members as string[]).length === n,
    );
    toRejoin.push((allAt ?? Date.now()) - t1);
  }
  const extra = { nodes: n, cut: cut.join(","), fail_timeout_ms: 1500, reps: REPS };
  figure(`new_primary_after_partition_${n}_nodes`, toPrimary, extra);
  figure(`one_view_after_heal_${n}_nodes`, toRejoin, extra);
}

const reason = await labAvailable();
if (reason) {
  console.log(JSON.stringify({ bench: "multicast", figure: "partition", skipped: reason }));
} else {
  await run(3, ["m1"], "mcb3");
  await run(5, ["m1", "m2"], "mcb5");
}

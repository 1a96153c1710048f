/**
 * pika (Debian's python3-pika, unmodified) runs the original leader/follower job's shape
 * against `peerd --role queue --amqp`: `masters_queue`, auto-delete `slave<i>_queue`
 * queues bound to the fanout `fan_logs`, ids, `permission_granted`, equal lists.
 */
import assert from "node:assert/strict";
import { freePort, LocalCluster } from "./harness/mod.ts";

const PYTHON = "/usr/bin/python3";
const JOB = new URL("./fixtures/pika_job.py", import.meta.url).pathname;

async function pikaMissing(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(PYTHON, { args: ["-c", "import pika"], stderr: "null" })
      .output();
    return out.code === 0 ? undefined : "python3-pika is not installed";
  } catch {
    return `${PYTHON} not found`;
  }
}

/** Runs `script` with `args` under Debian's python3, killed after `timeoutMs`. */
async function runScript(script: string, args: string[], timeoutMs: number) {
  const child = new Deno.Command(PYTHON, {
    args: [script, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, timeoutMs);
  try {
    const out = await child.output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("pika runs the original leader/follower job against peerd's AMQP listener", async () => {
  const missing = await pikaMissing();
  if (missing) {
    console.log(`skipped: ${missing}`);
    return;
  }
  const port = freePort();
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "q1", role: "queue", args: ["--amqp", `127.0.0.1:${port}`] }],
  });
  const url = `amqp://guest:guest@127.0.0.1:${port}/%2F`;
  const n = 4;
  const leader = runScript(JOB, ["leader", url, String(n)], 60_000);
  const followers = Array.from(
    { length: n },
    (_, i) => runScript(JOB, ["follower", url, String(i + 1)], 60_000),
  );
  const [l, ...fs] = await Promise.all([leader, ...followers]);
  assert.equal(l.code, 0, `leader: ${l.stdout}\n${l.stderr}`);
  assert.match(l.stdout, /IT WORKS!/);
  const lists = fs.map((f, i) => {
    assert.equal(f.code, 0, `follower ${i + 1}: ${f.stdout}\n${f.stderr}`);
    const m = /follower \d+: (\[.*\])/.exec(f.stdout);
    assert.ok(m, f.stdout);
    return JSON.parse(m[1]) as number[];
  });
  for (const list of lists) assert.deepEqual(list, lists[0]);
  assert.equal(lists[0].length, n);
  // the followers' auto-delete queues went with their consumers; masters_queue stays
  const q1 = cluster.node("q1");
  const deleted = q1.events().filter((e) => e.ev === "q.deleted").map((e) => e.queue).sort();
  assert.deepEqual(deleted, Array.from({ length: n }, (_, i) => `slave${i + 1}_queue`));
});

const DEATHS = new URL("./fixtures/pika_deaths.py", import.meta.url).pathname;

function runDeaths(args: string[], timeoutMs: number) {
  return runScript(DEATHS, args, timeoutMs);
}

Deno.test("pika sees x-death as RabbitMQ writes it, and redelivered=true after a kill -9 for what it held", async () => {
  const missing = await pikaMissing();
  if (missing) {
    console.log(`skipped: ${missing}`);
    return;
  }
  const port = freePort();
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "q1", role: "queue", args: ["--amqp", `127.0.0.1:${port}`] }],
  });
  const url = `amqp://guest:guest@127.0.0.1:${port}/%2F`;
  const d = await runDeaths(["deaths", url], 30_000);
  assert.equal(d.code, 0, d.stderr);
  const [first, second, third] = JSON.parse(d.stdout);
  assert.equal(first, null);
  const brief = (e: Record<string, unknown>) => [e.queue, e.reason, e.count, e.exchange];
  assert.deepEqual(second.map(brief), [
    ["pd.retry", "expired", 1, "pd.dlx"],
    ["pd.work", "rejected", 1, ""],
  ]);
  assert.deepEqual(third.map(brief), [
    ["pd.retry", "expired", 2, "pd.dlx"],
    ["pd.work", "rejected", 2, ""],
  ]);
  // an AMQP timestamp ('T'), which pika gives as a datetime
  assert.equal(second[0].time_type, "datetime");
  assert.deepEqual(second[1]["routing-keys"], ["pd.work"]);

  // hold 4 of 10 unacked, kill -9 the broker, restart: those 4 come back redelivered
  const holder = new Deno.Command(PYTHON, {
    args: [DEATHS, "hold", url],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = holder.stdout.getReader();
    let text = "";
    const deadline = Date.now() + 30_000;
    while (!text.includes("HELD") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    assert.match(text, /HELD/);
    await cluster.node("q1").kill("SIGKILL");
  } finally {
    holder.kill("SIGKILL");
    await holder.stdin.close().catch(() => {});
    await holder.output().catch(() => {});
  }
  await cluster.node("q1").start();
  const r = await runDeaths(["drain", url], 30_000);
  assert.equal(r.code, 0, r.stderr);
  const got: Array<[string, boolean]> = JSON.parse(r.stdout);
  assert.deepEqual(
    got.map(([b]) => b).sort(),
    Array.from({ length: 10 }, (_, i) => `p${i}`).sort(),
  );
  assert.deepEqual(
    got.filter(([, re]) => re).map(([b]) => b).sort(),
    ["p0", "p1", "p2", "p3"],
  );
});

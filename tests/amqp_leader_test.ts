/**
 * The leader/follower job over AMQP 0-9-1 (`--amqp-url`), through peerd's own listener
 * and through a real RabbitMQ: the same `IT WORKS!` both ways.
 */
import assert from "node:assert/strict";
import { freePort, LocalCluster, runPeerd } from "./harness/mod.ts";
import { RabbitMq } from "./harness/rabbitmq.ts";

async function runJob(url: string, followers: number) {
  const dir = await Deno.makeTempDir({ prefix: "peerd-amqp-leader-" });
  try {
    const r = await runPeerd([
      "--role",
      "leader",
      "--spawn",
      String(followers),
      "--amqp-url",
      url,
      "--listen",
      "127.0.0.1:0",
      "--data",
      `${dir}/data`,
    ], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.at(-1), "IT WORKS!");
    const lists = lines.slice(0, -1).map((l) => l.replace(/^follower f\d+: /, ""));
    assert.equal(lists.length, followers);
    assert.ok(lists.every((l) => l === lists[0]), lists.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("leader --amqp-url runs the job through peerd's AMQP listener: IT WORKS!", async () => {
  const port = freePort();
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "q1", role: "queue", args: ["--amqp", `127.0.0.1:${port}`] }],
  });
  await runJob(`amqp://guest:guest@127.0.0.1:${port}/`, 4);
  const q1 = cluster.node("q1");
  // five AMQP connections (the leader, four followers) opened and closed
  assert.equal(q1.events().filter((e) => e.ev === "amqp.open").length, 5);
});

Deno.test("leader --amqp-url runs the same job through a real RabbitMQ: IT WORKS!", async () => {
  const missing = await RabbitMq.missing();
  if (missing) {
    console.log(`skipped: ${missing}`);
    return;
  }
  await using rabbit = await RabbitMq.start();
  await runJob(rabbit.url, 4);
});

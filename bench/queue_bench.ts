/**
 * Queue benchmark: a real `peerd --role queue` process and clients using `QueueClient`,
 * 100-byte bodies, the workloads of peers-bench (`../shared/peers-bench`) so the
 * figures compare with RabbitMQ's there.
 *
 * Figures (median of `--reps` runs):
 * - transient fan-out through a fanout exchange, delivered/s with 1 and 4 consumers
 *   (exclusive queues, auto-ack; publisher batches of 1,000 each ended by a round trip, at
 *   most 20,000 published but not yet received by the slowest consumer);
 * - persistent publish with confirms into a durable queue (≤ 1,000 unconfirmed), msgs/s;
 * - consume with one ack per message from that backlog (prefetch 500), msgs/s;
 * - both at once (a consumer running while as many more are published), end-to-end msgs/s;
 * - server CPU µs per message for each.
 *
 * `deno run -A bench/queue_bench.ts [--n 100000] [--reps 3]` prints one JSON line per figure.
 *
 * @module
 */
import { LocalCluster } from "../mod/harness/mod.ts";
import { QueueClient } from "../mod/queue/mod.ts";

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const N = Number(argValue("--n", "100000"));
const QN = Number(argValue("--queue-n", "50000"));
const REPS = Number(argValue("--reps", "3"));
const BODY = new Uint8Array(100).fill(42);

function emit(figure: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  console.log(
    JSON.stringify({
      bench: "queue",
      figure,
      value: Math.round(value * 100) / 100,
      unit,
      ...extra,
    }),
  );
}

function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function fanout(address: string, subs: number, n: number): Promise<number> {
  const pub = await QueueClient.connect(address, { name: "bench-pub" });
  const consumers = await Promise.all(
    Array.from({ length: subs }, () => QueueClient.connect(address, { name: "bench-sub" })),
  );
  try {
    await pub.assertExchange("bench.fanout", "fanout", { durable: false });
    const counts = new Array(subs).fill(0);
    let wake: (() => void) | undefined;
    for (let i = 0; i < subs; i++) {
      const ch = consumers[i];
      const { queue } = await ch.assertQueue("", { durable: false, exclusive: true });
      await ch.bindQueue(queue, "bench.fanout");
      await ch.consume(queue, () => {
        counts[i]++;
        if (wake && counts[i] % 1000 === 0) wake();
      }, { noAck: true });
    }
    const slowest = () => Math.min(...counts);
    const waitSlowest = (target: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (slowest() >= target) {
            wake = undefined;
            resolve();
          }
        };
        wake = check;
        check();
      });
    const run = async (count: number) => {
      const base = slowest();
      let sent = 0;
      let flush: Promise<void> | undefined;
      while (sent < count) {
        if (sent - (slowest() - base) > 20_000) await waitSlowest(base + sent - 20_000);
        const batch = Math.min(1000, count - sent);
        for (let i = 0; i < batch; i++) pub.publish("bench.fanout", "", BODY);
        sent += batch;
        await flush;
        flush = pub.sync();
      }
      await flush;
      await waitSlowest(base + count);
    };
    await run(10_000); // warm-up
    const t0 = performance.now();
    await run(n);
    const s = (performance.now() - t0) / 1000;
    return (subs * n) / s;
  } finally {
    await pub.close();
    for (const c of consumers) await c.close();
  }
}

async function publishConfirmed(ch: QueueClient, queue: string, n: number): Promise<void> {
  const window: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    window.push(ch.publishConfirmed("", queue, BODY, { persistent: true }));
    if (window.length >= 1000) await window.shift();
  }
  await Promise.all(window);
}

async function durable(
  address: string,
  n: number,
): Promise<{ publish: number; consume: number; both: number }> {
  const ch = await QueueClient.connect(address, { name: "bench-pub" });
  const sub = await QueueClient.connect(address, { name: "bench-sub" });
  try {
    await ch.assertQueue("bench.durable", { durable: true });
    await ch.purgeQueue("bench.durable");
    await ch.confirmSelect();
    await publishConfirmed(ch, "bench.durable", 5_000); // warm-up
    await ch.purgeQueue("bench.durable");
    let t0 = performance.now();
    await publishConfirmed(ch, "bench.durable", n);
    const publish = n / ((performance.now() - t0) / 1000);

    let got = 0;
    let done: (() => void) | undefined;
    await sub.prefetch(500);
    t0 = performance.now();
    const { consumerTag } = await sub.consume("bench.durable", (m) => {
      sub.ack(m);
      if (++got === n) done?.();
    });
    if (got < n) await new Promise<void>((r) => done = r);
    const consume = n / ((performance.now() - t0) / 1000);
    await sub.sync();

    got = 0;
    t0 = performance.now();
    const all = new Promise<void>((r) => done = r);
    await publishConfirmed(ch, "bench.durable", n);
    await all;
    const both = n / ((performance.now() - t0) / 1000);
    await sub.cancel(consumerTag);
    await ch.deleteQueue("bench.durable");
    return { publish, consume, both };
  } finally {
    await ch.close();
    await sub.close();
  }
}

async function main(): Promise<void> {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "qb", role: "queue", args: ["--log-level", "warn"] }],
  });
  const node = cluster.node("qb");
  const pid = node.pid!;
  const results: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const record = (k: string, v: number, cpuUs: number) => {
    (results[k] ??= []).push(v);
    (cpu[k] ??= []).push(cpuUs);
  };
  for (let rep = 0; rep < REPS; rep++) {
    for (const subs of [1, 4]) {
      const c0 = cpuSeconds(pid);
      const rate = await fanout(node.address, subs, N);
      const c1 = cpuSeconds(pid);
      record(`fanout_${subs}`, rate, ((c1 - c0) * 1e6) / ((N + 10_000) * subs));
    }
    const c0 = cpuSeconds(pid);
    const d = await durable(node.address, QN);
    const c1 = cpuSeconds(pid);
    record("publish_confirmed", d.publish, ((c1 - c0) * 1e6) / (QN * 2 + 5_000));
    record("consume_ack", d.consume, 0);
    record("publish_consume", d.both, 0);
  }
  const meta = { n: N, queue_n: QN, reps: REPS, body_bytes: BODY.length };
  emit("fanout_1_consumer_delivered_per_s", median(results.fanout_1), "msgs/s", {
    ...meta,
    runs: results.fanout_1.map(Math.round),
    server_cpu_us_per_delivery: Math.round(median(cpu.fanout_1) * 100) / 100,
  });
  emit("fanout_4_consumers_delivered_per_s", median(results.fanout_4), "msgs/s", {
    ...meta,
    runs: results.fanout_4.map(Math.round),
    server_cpu_us_per_delivery: Math.round(median(cpu.fanout_4) * 100) / 100,
  });
  emit("persistent_publish_confirmed_per_s", median(results.publish_confirmed), "msgs/s", {
    ...meta,
    runs: results.publish_confirmed.map(Math.round),
    server_cpu_us_per_message_durable_phases: Math.round(median(cpu.publish_confirmed) * 100) /
      100,
  });
  emit("consume_ack_per_s", median(results.consume_ack), "msgs/s", {
    ...meta,
    runs: results.consume_ack.map(Math.round),
  });
  emit("publish_and_consume_end_to_end_per_s", median(results.publish_consume), "msgs/s", {
    ...meta,
    runs: results.publish_consume.map(Math.round),
  });
}

await main();

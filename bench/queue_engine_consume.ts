/**
 * The queue engine alone, in one process: n stored (persistent, durable queue) 100-byte
 * messages consumed with prefetch 500 and one ack each, the acks' deletes and delivery
 * marks committed once per turn; prints CPU µs per message of this process (user + system;
 * no sockets, no other process, so a loaded machine disturbs it least). Pass another checkout's root to compare trees:
 *
 *   deno run -A bench/queue_engine_consume.ts [ROOT] [--n 50000]
 *   deno run -A --config OTHER/deno.json bench/queue_engine_consume.ts OTHER
 *
 * @module
 */
import process from "node:process";
import type { ConnectionSink, Delivery, QueueEngine } from "../mod/queue/mod.ts";

const root = Deno.args[0] && !Deno.args[0].startsWith("--")
  ? new URL(`file://${Deno.realPathSync(Deno.args[0])}/`)
  : new URL("../", import.meta.url);
const ni = Deno.args.indexOf("--n");
const N = ni >= 0 ? Number(Deno.args[ni + 1]) : 50_000;
const { QueueEngine: Engine } = await import(new URL("mod/queue/mod.ts", root).href) as {
  QueueEngine: typeof QueueEngine;
};

const dir = Deno.makeTempDirSync({ prefix: "peerd-engine-bench-" });
const engine = new Engine({ path: `${dir}/queue.db` });
try {
  const out: Delivery[] = [];
  const sink: ConnectionSink = {
    deliver: (d) => (out.push(d), true),
    returned: () => {},
    confirmed: () => {},
    confirmFailed: () => {},
    cancelled: () => {},
  };
  const c = engine.connect("bench", sink);
  engine.declareQueue(c, "q", { durable: true });
  const body = new Uint8Array(100);
  for (let i = 0; i < N; i++) engine.publish(c, "", "q", body, { persistent: true });
  await engine.committed();
  const cpu0 = process.cpuUsage();
  engine.qos(c, 500);
  engine.consume(c, "q");
  let acked = 0;
  while (acked < N) {
    for (const d of out.splice(0)) {
      engine.ack(c, d.deliveryTag);
      acked++;
    }
    await engine.committed(); // one turn: the commit of this batch's acks
  }
  const cpu = process.cpuUsage(cpu0);
  const us = (cpu.user + cpu.system) / N;
  console.log(
    JSON.stringify({
      bench: "queue_engine",
      figure: "consume_ack_us_per_msg",
      value: Math.round(us * 100) / 100,
      n: N,
      root: root.pathname,
    }),
  );
} finally {
  engine.close();
  Deno.removeSync(dir, { recursive: true });
}

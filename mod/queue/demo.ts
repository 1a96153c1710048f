/**
 * Demo step for the queue: a queue server as a real process; routing through direct,
 * fanout and topic exchanges; 2,000 persistent messages confirmed, a `kill -9` of the
 * server, and every one of them back after the restart.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import { QueueClient, type QueueMessage } from "./client.ts";

const decoder = new TextDecoder();

/** The queue demo step. */
export const queueDemo: DemoStep = {
  name: "queue",
  title: "queue: exchanges and routing, confirmed persistent messages survive kill -9",
  async run(ctx) {
    const cluster = await ctx.startCluster(ctx.nodesFor("queue", 1, "q"));
    const node = cluster.nodes[0];
    const lines: string[] = [];
    {
      await using ch = await QueueClient.connect(node.address, { name: "demo" });
      await ch.assertExchange("demo.logs", "topic", { durable: false });
      await ch.assertQueue("demo.errors", { durable: false });
      await ch.assertQueue("demo.all", { durable: false });
      await ch.purgeQueue("demo.errors");
      await ch.purgeQueue("demo.all");
      await ch.bindQueue("demo.errors", "demo.logs", "*.error");
      await ch.bindQueue("demo.all", "demo.logs", "#");
      for (const key of ["web.info", "web.error", "db.error", "db.slow.warn"]) {
        ch.publish("demo.logs", key, key);
      }
      await ch.sync();
      const errors = (await ch.checkQueue("demo.errors")).messageCount;
      const all = (await ch.checkQueue("demo.all")).messageCount;
      lines.push(
        `topic exchange demo.logs: 4 published → demo.errors (*.error) got ${errors}, demo.all (#) got ${all}`,
      );
      await ch.assertQueue("demo.jobs", { durable: true });
      await ch.purgeQueue("demo.jobs");
      await ch.confirmSelect();
      const t0 = performance.now();
      const confirms: Promise<void>[] = [];
      for (let i = 0; i < 2_000; i++) {
        confirms.push(ch.publishConfirmed("", "demo.jobs", `job ${i}`, { persistent: true }));
      }
      await Promise.all(confirms);
      const ms = performance.now() - t0;
      lines.push(`2,000 persistent messages published and confirmed in ${ms.toFixed(0)} ms`);
    }
    await node.kill("SIGKILL");
    await node.start();
    await using ch = await QueueClient.connect(node.address, { name: "demo" });
    const got: QueueMessage[] = [];
    await ch.prefetch(500);
    await ch.consume("demo.jobs", (m) => {
      got.push(m);
      ch.ack(m);
    });
    for (let i = 0; i < 400 && got.length < 2_000; i++) await new Promise((r) => setTimeout(r, 10));
    await ch.sync();
    const inOrder = got.every((m, i) => decoder.decode(m.body) === `job ${i}`);
    if (got.length !== 2_000 || !inOrder) {
      throw new Error(`after kill -9: got ${got.length} of 2,000 (in order: ${inOrder})`);
    }
    lines.push(`kill -9 of ${node.name} and restart: all 2,000 back, in order, none twice`);
    const status = await node.ctl("status");
    lines.push(
      `peerd ctl ${node.address} status → queues=${status.queues} messages=${status.messages}`,
    );
    return lines;
  },
};

/**
 * The queue under network faults, in the lab: two `queue-ctl consume --reconnect`
 * consumers, each in its own namespace, one isolated and one paused past the heartbeat
 * while a producer publishes confirmed messages; then one-way loss and a kill -9 of the
 * server. Checker: every confirmed message is acknowledged exactly once at the server and
 * was consumed; a message consumed twice is only one the server redelivered (marked).
 */
import assert from "node:assert/strict";
import { Lab, type LabNodeSpec, labTest } from "./harness/lab.ts";
import { waitUntil } from "./harness/mod.ts";
import { sameMultiset } from "../mod/lab/checkers.ts";
import { QueueClient } from "../mod/queue/mod.ts";

const HEARTBEAT_MS = "300";

function specs(): LabNodeSpec[] {
  const consumer = (name: string): LabNodeSpec => ({
    name,
    role: "queue-ctl",
    command: [
      "queue-ctl",
      "--queue",
      "{addr:q1}",
      "--heartbeat",
      HEARTBEAT_MS,
      "consume",
      "jobs",
      "--prefetch",
      "5",
      "--reconnect",
    ],
    deferred: true,
  });
  return [{ name: "q1", role: "queue", port: 7501 }, consumer("c1"), consumer("c2")];
}

interface Consumed {
  body: string;
  redelivered: boolean;
}

function consumed(lab: Lab, node: string): Consumed[] {
  return lab.log(node).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

async function queueStatus(lab: Lab): Promise<{ ready: number; unacked: number; acked: number }> {
  const s = await lab.ctl("q1", "status");
  return { ready: Number(s.messages), unacked: Number(s.unacked), acked: Number(s.acked) };
}

/** Every confirmed body consumed; the server acked each exactly once; doubles only redeliveries. */
async function check(lab: Lab, published: string[], ackedBefore: number): Promise<void> {
  await waitUntil(async () => {
    const s = await queueStatus(lab);
    return s.ready === 0 && s.unacked === 0 && s.acked - ackedBefore >= published.length;
  }, { timeoutMs: 30_000, intervalMs: 100, what: "every message acknowledged" });
  const s = await queueStatus(lab);
  assert.equal(s.acked - ackedBefore, published.length, "acked exactly once at the server");
  const all = [...consumed(lab, "c1"), ...consumed(lab, "c2")];
  const firsts = new Map<string, number>();
  for (const c of all) firsts.set(c.body, (firsts.get(c.body) ?? 0) + 1);
  assert.deepEqual(
    sameMultiset(published, [...firsts.keys()]),
    [],
    "nothing lost, nothing unexpected",
  );
  for (const [body, n] of firsts) {
    if (n > 1) {
      assert.ok(
        all.some((c) => c.body === body && c.redelivered),
        `${body} doubled without a redelivery`,
      );
    }
  }
}

async function publishFor(
  ch: QueueClient,
  ms: number,
  published: string[],
  tag: string,
): Promise<void> {
  const until = performance.now() + ms;
  for (let i = 0; performance.now() < until; i++) {
    const body = `${tag}-${i}`;
    await ch.publishConfirmed("", "jobs", body, { persistent: true });
    published.push(body);
    await new Promise((r) => setTimeout(r, 20));
  }
}

labTest(
  "lab queue: consumers isolated and paused past the heartbeat reconnect; every confirmed message acked exactly once",
  async () => {
    await using lab = await Lab.up({ prefix: "avq1", peers: specs() });
    const producer = await QueueClient.connect(lab.hostPort("q1"), { heartbeatMs: 300 });
    try {
      await producer.assertQueue("jobs", { durable: true });
      await producer.confirmSelect();
      const before = (await queueStatus(lab)).acked;
      await lab.start("c1");
      await lab.start("c2");
      const published: string[] = [];
      await publishFor(producer, 1_000, published, "a");
      await lab.isolate("c1");
      await publishFor(producer, 2_500, published, "b");
      await lab.heal();
      await publishFor(producer, 1_000, published, "c");
      await lab.pause("c2");
      await publishFor(producer, 2_500, published, "d");
      await lab.resume("c2");
      await publishFor(producer, 1_000, published, "e");
      await check(lab, published, before);
      // both consumers lost their connection once and came back
      for (const c of ["c1", "c2"]) {
        assert.match(lab.log(c), /connection lost after \d+ messages; reconnecting/);
      }
      const redelivered = [...consumed(lab, "c1"), ...consumed(lab, "c2")].filter((c) =>
        c.redelivered
      );
      console.log(
        `queue: ${published.length} confirmed, ${redelivered.length} redelivered after the cuts`,
      );
    } finally {
      await producer.close();
    }
  },
  { timeoutMs: 90_000 },
);

labTest(
  "lab queue: one-way loss to a consumer, then kill -9 and restart of the server: every confirmed message acked once",
  async () => {
    await using lab = await Lab.up({ prefix: "avq2", peers: specs() });
    const published: string[] = [];
    let producer = await QueueClient.connect(lab.hostPort("q1"), { heartbeatMs: 300 });
    try {
      await producer.assertQueue("jobs", { durable: true });
      await producer.confirmSelect();
      await lab.start("c1");
      await lab.start("c2");
      await publishFor(producer, 1_000, published, "a");
      await lab.oneway("q1", "c1"); // the server's deliveries to c1 are lost
      await publishFor(producer, 2_500, published, "b");
      await lab.heal();
      await publishFor(producer, 500, published, "c");
      await waitUntil(async () => (await queueStatus(lab)).ready === 0, {
        timeoutMs: 20_000,
        what: "queue drained",
      });
      // kill -9 the server: what was acked before stays acked, the rest comes back
      await producer.close();
      await lab.restart("q1");
      producer = await QueueClient.connect(lab.hostPort("q1"), { heartbeatMs: 300 });
      await producer.confirmSelect();
      await publishFor(producer, 1_000, published, "d");
      // the acked counter starts again at 0 after the restart: check what is left, and the set
      await waitUntil(async () => {
        const s = await queueStatus(lab);
        return s.ready === 0 && s.unacked === 0;
      }, {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: "every message acknowledged after the restart",
      });
      const all = [...consumed(lab, "c1"), ...consumed(lab, "c2")];
      const bodies = new Set(all.map((c) => c.body));
      assert.deepEqual(sameMultiset(published, [...bodies]), []);
      const counts = new Map<string, number>();
      for (const c of all) counts.set(c.body, (counts.get(c.body) ?? 0) + 1);
      for (const [body, n] of counts) {
        if (n > 1) assert.ok(all.some((c) => c.body === body && c.redelivered), `${body} doubled`);
      }
    } finally {
      await producer.close();
    }
  },
  { timeoutMs: 90_000 },
);

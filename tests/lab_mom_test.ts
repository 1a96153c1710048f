/**
 * MOM under network faults, in the lab: a daemon cut from its broker (both ways, one way)
 * keeps accepting publications and delivers them after the heal; a paused and a killed
 * broker. Checker: every acknowledged publication is received exactly once by every
 * subscriber, in per-publisher order.
 */
import assert from "node:assert/strict";
import { sleep } from "../mod/wire/mod.ts";
import { Lab, type LabNodeSpec, labTest } from "./harness/lab.ts";
import { waitUntil } from "./harness/mod.ts";
import { exactlyOnce, perPublisherOrder } from "../mod/lab/checkers.ts";
import { MomClient, type MomUser } from "../mod/mom/mod.ts";

/** The pace of the publishing workload while a link is cut: a load, not a wait for the protocol. */
const PUBLISH_ROUND_GAP_MS = 100;

function specs(): LabNodeSpec[] {
  return [
    { name: "b1", role: "broker", port: 7401 },
    { name: "d1", role: "daemon", port: 7411 },
    { name: "d2", role: "daemon", port: 7411 },
    { name: "d3", role: "daemon", port: 7411 },
  ];
}

async function linked(lab: Lab, daemon: string, want = "up"): Promise<void> {
  await waitUntil(async () => (await lab.ctl(daemon, "status")).link === want, {
    timeoutMs: 15_000,
    what: `${daemon} link ${want}`,
  });
}

/** A subscriber collecting message ids in arrival order. */
class Collector {
  readonly ids: string[] = [];
  #user: MomUser;
  #stop = false;
  #loop: Promise<void>;

  constructor(user: MomUser) {
    this.#user = user;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const deadline = performance.now() + 120_000;
    while (!this.#stop && performance.now() < deadline) {
      for (const m of await this.#user.receiveBatch({ timeout: 300 })) this.ids.push(m.id);
    }
    await this.#user.ack();
  }

  /** Waits until it holds `n` ids (or `timeoutMs`), then for a quiet moment, and stops. */
  async finish(n: number, timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    await waitUntil(() => this.ids.length >= n, {
      timeoutMs,
      intervalMs: 50,
      what: `${n} messages (have ${this.ids.length})`,
    }).catch(() => {});
    const ms = performance.now() - t0;
    this.#stop = true;
    await this.#loop;
    return ms;
  }
}

/** `d1:123` → publisher d1, seq 123. */
function order(ids: string[]): Array<{ publisher: string; seq: number }> {
  return ids.map((id) => {
    const [publisher, seq] = id.split(":");
    return { publisher, seq: Number(seq) };
  });
}

async function publishMany(
  user: MomUser,
  topic: string,
  n: number,
  acked: string[],
): Promise<void> {
  for (let i = 0; i < n; i++) acked.push(await user.publish(topic, `${topic} ${i}`));
}

labTest(
  "lab mom: a daemon cut from its broker keeps accepting publications; after the heal each arrives exactly once, in order",
  async () => {
    await using lab = await Lab.up({ prefix: "avm1", peers: specs() });
    for (const d of ["d1", "d2", "d3"]) await linked(lab, d);
    const c1 = await MomClient.connect(lab.hostPort("d1"));
    const c2 = await MomClient.connect(lab.hostPort("d2"));
    const c3 = await MomClient.connect(lab.hostPort("d3"));
    try {
      const p1 = await c1.create();
      const p3 = await c3.create();
      const sub = await c2.create();
      const localSub = await c1.create(); // on the cut daemon: served by it during the cut
      await sub.subscribe("lab/#");
      await localSub.subscribe("lab/#");
      const remote = new Collector(sub);
      const local = new Collector(localSub);
      const acked: string[] = [];
      await publishMany(p1, "lab/a", 20, acked);

      await lab.partition(["d1"], ["b1", "d2", "d3"]);
      // acknowledged on d1's disk while its broker is out of reach; d3 publishes through the
      // broker; the cut lasts long enough (8 s) for TCP's retransmission back-off to grow
      const until = performance.now() + 8_000;
      let sent = 0;
      while (performance.now() < until) {
        await Promise.all([publishMany(p1, "lab/a", 5, acked), publishMany(p3, "lab/c", 3, acked)]);
        sent += 5;
        await sleep(PUBLISH_ROUND_GAP_MS);
      }
      await waitUntil(() => local.ids.filter((id) => id.startsWith("d1:")).length >= 20 + sent, {
        timeoutMs: 15_000,
        what: "local delivery during the cut",
      });
      assert.ok(
        (await lab.ctl("d1", "status")).outbox as number > 0,
        "d1 holds publications for the broker",
      );
      // the heartbeat noticed the silent link (TCP alone would still say connected)
      await linked(lab, "d1", "down");

      await lab.heal();
      const t0 = performance.now();
      await publishMany(p1, "lab/a", 10, acked);
      const ms = await remote.finish(acked.length, 30_000);
      await local.finish(acked.length, 10_000);
      console.log(
        `mom cut daemon: all ${acked.length} delivered ${
          Math.round(performance.now() - t0)
        } ms after heal (${Math.round(ms)} waiting)`,
      );
      assert.deepEqual(exactlyOnce(acked, remote.ids), []);
      assert.deepEqual(perPublisherOrder(order(remote.ids)), []);
      assert.deepEqual(exactlyOnce(acked, local.ids), []);
      assert.deepEqual(perPublisherOrder(order(local.ids)), []);
    } finally {
      await Promise.all([c1.close(), c2.close(), c3.close()]);
    }
  },
  { timeoutMs: 90_000 },
);

/** Publishes `perRound` a round from each of `users` until `ms` passed; acknowledged ids into `acked`. */
async function publishFor(
  users: MomUser[],
  ms: number,
  acked: string[],
  perRound = 4,
): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    await Promise.all(users.map((u, i) => publishMany(u, `lab/${i}`, perRound, acked)));
    await sleep(PUBLISH_ROUND_GAP_MS);
  }
}

labTest(
  "lab mom: the subscriber's daemon isolated, then one-way loss from a publisher's daemon to the broker: nothing lost or doubled",
  async () => {
    await using lab = await Lab.up({ prefix: "avm2", peers: specs() });
    for (const d of ["d1", "d2", "d3"]) await linked(lab, d);
    const c1 = await MomClient.connect(lab.hostPort("d1"));
    const c2 = await MomClient.connect(lab.hostPort("d2"));
    const c3 = await MomClient.connect(lab.hostPort("d3"));
    try {
      const p1 = await c1.create();
      const p3 = await c3.create();
      const sub = await c2.create();
      await sub.subscribe("lab/#");
      const got = new Collector(sub);
      const acked: string[] = [];
      await lab.isolate("d2");
      await publishFor([p1, p3], 5_000, acked);
      await linked(lab, "d2", "down");
      await lab.heal();
      await linked(lab, "d2");
      // one way: d3's packets to the broker are dropped, the broker's to d3 still arrive
      await lab.oneway("d3", "b1");
      await publishFor([p1, p3], 5_000, acked);
      await linked(lab, "d3", "down");
      await lab.heal();
      const t0 = performance.now();
      await got.finish(acked.length, 30_000);
      console.log(
        `mom isolate+oneway: ${acked.length} delivered ${
          Math.round(performance.now() - t0)
        } ms after heal`,
      );
      assert.deepEqual(exactlyOnce(acked, got.ids), []);
      assert.deepEqual(perPublisherOrder(order(got.ids)), []);
    } finally {
      await Promise.all([c1.close(), c2.close(), c3.close()]);
    }
  },
  { timeoutMs: 90_000 },
);

labTest(
  "lab mom: the broker paused past the heartbeat, then kill -9 and restarted: publications keep being accepted, each arrives once",
  async () => {
    await using lab = await Lab.up({ prefix: "avm3", peers: specs() });
    for (const d of ["d1", "d2", "d3"]) await linked(lab, d);
    const c1 = await MomClient.connect(lab.hostPort("d1"));
    const c2 = await MomClient.connect(lab.hostPort("d2"));
    try {
      const p1 = await c1.create();
      const sub = await c2.create();
      await sub.subscribe("lab/#");
      const got = new Collector(sub);
      const acked: string[] = [];
      await lab.pause("b1");
      await publishFor([p1], 5_000, acked);
      await linked(lab, "d1", "down");
      await lab.resume("b1");
      await linked(lab, "d1");
      await lab.kill("b1");
      await publishFor([p1], 2_000, acked);
      await lab.restart("b1");
      await publishFor([p1], 1_000, acked);
      const t0 = performance.now();
      await got.finish(acked.length, 30_000);
      console.log(
        `mom broker pause+kill: ${acked.length} delivered ${
          Math.round(performance.now() - t0)
        } ms after restart`,
      );
      assert.deepEqual(exactlyOnce(acked, got.ids), []);
      assert.deepEqual(perPublisherOrder(order(got.ids)), []);
    } finally {
      await Promise.all([c1.close(), c2.close()]);
    }
  },
  { timeoutMs: 90_000 },
);

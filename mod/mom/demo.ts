/**
 * Demo step for the MOM: a broker and three daemons as real processes, three users with
 * wildcard subscriptions, publications before and during a `kill -9` of the broker, and
 * every one of them received once.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import { pause } from "../harness/mod.ts";
import { MomClient, type MomMessage, type MomUser } from "./client.ts";

async function receiveAll(user: MomUser, want: number, timeoutMs: number): Promise<MomMessage[]> {
  const got: MomMessage[] = [];
  const deadline = performance.now() + timeoutMs;
  while (got.length < want && performance.now() < deadline) {
    got.push(...await user.receiveBatch({ timeout: Math.max(0, deadline - performance.now()) }));
  }
  await user.ack();
  return got;
}

/** The MOM demo step. */
export const momDemo: DemoStep = {
  name: "mom",
  title: "MOM: broker + 3 daemons, wildcard topics, kill -9 of the broker loses nothing",
  async run(ctx) {
    const cluster = await ctx.startCluster([
      ...ctx.nodesFor("broker", 1, "b"),
      ...ctx.nodesFor("daemon", 3, "d"),
    ]);
    const broker = cluster.nodes.find((n) => n.role === "broker")!;
    const daemons = cluster.nodes.filter((n) => n.role === "daemon");
    for (const d of daemons) {
      for (let i = 0; i < 200; i++) {
        if ((await d.ctl("status")).link === "up") break;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const clients = await Promise.all(
      daemons.map((d) => MomClient.connect({ hostname: "127.0.0.1", port: d.port })),
    );
    try {
      const [guard, curator, visitor] = await Promise.all(clients.map((c) => c.create()));
      await curator.subscribe("Museum/#");
      await visitor.subscribe("Museum/Doors/+");
      await guard.subscribe("Park/#");
      ctx.say(
        `users ${guard.id}@${daemons[0].name} ${curator.id}@${daemons[1].name} ${visitor.id}@${
          daemons[2].name
        }`,
      );
      const before = 100;
      for (let i = 0; i < before; i++) {
        void guard.publishNoWait(i % 2 ? "Museum/Doors/Door0" : "Museum/Lights", `m${i}`);
      }
      await guard.flush();
      await broker.kill("SIGKILL");
      const during = 300;
      const t0 = performance.now();
      const pubs: Promise<string>[] = [];
      for (let i = 0; i < during; i++) pubs.push(guard.publish("Museum/Doors/Door1", `k${i}`));
      await Promise.all(pubs);
      const ackedMs = performance.now() - t0;
      await broker.start();
      const curatorGot = await receiveAll(curator, before + during, 10_000);
      const visitorGot = await receiveAll(visitor, before / 2 + during, 10_000);
      const dupes = curatorGot.length - new Set(curatorGot.map((m) => m.id)).size;
      if (curatorGot.length !== before + during || visitorGot.length !== before / 2 + during) {
        throw new Error(
          `curator got ${curatorGot.length}/${before + during}, visitor ${visitorGot.length}/${
            before / 2 + during
          }`,
        );
      }
      // daemons acknowledge deliveries in batches (1,000 or 20 ms): wait until they have
      let status = await broker.ctl("status");
      for (let i = 0; i < 50; i++) {
        const backlog = Object.values(status.backlog as Record<string, number>);
        if (backlog.every((n) => n === 0)) break;
        await pause(20);
        status = await broker.ctl("status");
      }
      return [
        `broker ${broker.name} on ${broker.address}, daemons ${
          daemons.map((d) => `${d.name}@${d.address}`).join(" ")
        }`,
        `subscriptions: curator Museum/#, visitor Museum/Doors/+, guard Park/# (guard publishes)`,
        `${before} publications, then kill -9 of the broker; ${during} more acknowledged by ${
          daemons[0].name
        } in ${ackedMs.toFixed(0)} ms while it was down`,
        `after restart: curator received ${curatorGot.length}/${
          before + during
        } (${dupes} duplicates), visitor ${visitorGot.length}/${before / 2 + during}`,
        `peerd ctl ${broker.address} status → users=${String(status.users)} topics=${
          String(status.topics)
        } backlog=${JSON.stringify(status.backlog)}`,
      ];
    } finally {
      for (const c of clients) await c.close();
    }
  },
};

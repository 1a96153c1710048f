/**
 * Demo step for the ratings service: 3 replica managers and 2 front ends as real
 * processes; a client updates through one FE and reads through the other, two clients
 * race on one rating, and the RMs' checksums agree.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import { pause } from "../harness/mod.ts";
import { RatingsClient, RatingsSession } from "./client_command.ts";
import { generateDataset, writeDatasetDir } from "./dataset.ts";

/** The ratings demo step. */
export const ratingsDemo: DemoStep = {
  name: "ratings",
  title: "gossip architecture: 3 replica managers, 2 front ends, vector timestamps",
  async run(ctx) {
    // A MovieLens-shaped set with fewer ratings keeps the step within its time budget.
    const dataset = `${ctx.dir}/dataset`;
    await writeDatasetDir(dataset, generateDataset({ ratings: 20_000 }));
    const rms = ctx.nodesFor("replica", 3, "rm").map((n) => ({
      ...n,
      args: [...(n.args ?? []), "--dataset", dataset],
    }));
    const fes = ctx.nodesFor("frontend", 2, "fe");
    const cluster = await ctx.startCluster([...rms, ...fes]);
    const fe = (i: number) => ({ hostname: "127.0.0.1", port: cluster.node(fes[i].name).port });
    const alice = new RatingsSession(`${ctx.dir}/alice.json`, 7);
    const bob = new RatingsSession(`${ctx.dir}/bob.json`, 7);
    const c1 = new RatingsClient(fe(0));
    const c2 = new RatingsClient(fe(1));
    try {
      const movie = 1;
      const before = await c1.send(alice, { t: "ratings.query", q: "get", user: 7, movie });
      const kind = before.rating === null ? "create" : "update";
      const up = await c1.send(alice, { t: "ratings.update", kind, user: 7, movie, rating: 4.5 });
      const seen = await c2.send(alice, { t: "ratings.query", q: "get", user: 7, movie });
      const race = await Promise.all([
        c1.send(alice, { t: "ratings.update", kind: "update", user: 7, movie, rating: 2.0 }),
        c2.send(bob, { t: "ratings.update", kind: "update", user: 7, movie, rating: 3.5 }),
      ]);
      const settle = async () => {
        let sums: string[] = [];
        for (let i = 0; i < 100 && !ctx.signal.aborted; i++) {
          sums = await Promise.all(
            rms.map(async (r) => String((await cluster.node(r.name).ctl("status")).checksum)),
          );
          if (sums.every((x) => x === sums[0])) return sums[0];
          await pause(50, ctx.signal);
        }
        throw new Error(`RMs did not converge: checksums ${sums.join(", ")}`);
      };
      await settle();
      const final = await c2.send(bob, { t: "ratings.query", q: "get", user: 7, movie });
      // kill -9 one RM: updates and queries go on; after its restart it catches up
      const victim = cluster.node(rms[1].name);
      await victim.kill("SIGKILL");
      const during = await c1.send(alice, {
        t: "ratings.update",
        kind: "update",
        user: 7,
        movie,
        rating: 5,
      });
      const after = await c2.send(alice, { t: "ratings.query", q: "average", user: 7, movie });
      await victim.start();
      const sum = await settle();
      const one = (v: unknown) => (typeof v === "number" ? v.toFixed(1) : String(v));
      return [
        `${kind} via ${fes[0].name}: user 7 rates ${up.title} 4.5 → ts ${
          JSON.stringify(up.ts)
        }, copies=${up.copies}`,
        `read via ${fes[1].name} (answered by ${seen.rm}) with the client's ts: ${
          one(seen.rating)
        } — never older than what the client saw`,
        `two clients race (2.0 via ${race[0].rm}, 3.5 via ${race[1].rm}); every RM settles on ${
          one(final.rating)
        }`,
        `kill -9 ${victim.name}: update to 5.0 via ${during.rm} ok, average via ${after.rm} ${
          (after.average as number).toFixed(2)
        } from ${after.count}; ${victim.name} restarted and caught up`,
        `checksums equal on ${rms.length} RMs: ${sum}`,
      ];
    } finally {
      await c1.close();
      await c2.close();
    }
  },
};

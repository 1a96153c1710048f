/**
 * Ratings under network faults, in the lab: replicas on both sides of a partition keep
 * serving, front ends fail over from an RM they cannot reach (isolated or paused), and
 * after the heal every replica has the same checksum and value timestamp.
 */
import assert from "node:assert/strict";
import { Lab, type LabNodeSpec, labTest } from "./harness/lab.ts";
import { waitUntil } from "./harness/mod.ts";
import { allEqual } from "../mod/lab/checkers.ts";
import {
  generateDataset,
  RatingsClient,
  RatingsSession,
  writeDatasetDir,
} from "../mod/ratings/mod.ts";
import type { Message } from "../mod/wire/mod.ts";

const DATA = await Deno.makeTempDir({ prefix: "peerd-lab-ratings-data-" });
await writeDatasetDir(DATA, generateDataset({ seed: 5, users: 40, movies: 300, ratings: 2_000 }));
const MOVIES = (await Deno.readTextFile(`${DATA}/movies.csv`)).trim().split("\n").slice(1)
  .map((l) => Number(l.split(",")[0]));
addEventListener("unload", () => {
  try {
    Deno.removeSync(DATA, { recursive: true });
  } catch {
    // already gone
  }
});

const RMS = ["rm1", "rm2", "rm3"];

/** The reconvergence bound after a heal (docs/ratings.md, Failures). */
const HEAL_BOUND_MS = 15_000;

function specs(): LabNodeSpec[] {
  const rm = ["--dataset", DATA, "--gossip-interval", "100"];
  return [
    { name: "rm1", role: "replica", port: 7701, args: rm },
    { name: "rm2", role: "replica", port: 7701, args: rm },
    { name: "rm3", role: "replica", port: 7701, args: rm },
    { name: "fe1", role: "frontend", port: 7711, args: ["--rm-timeout", "6000"] },
    { name: "fe2", role: "frontend", port: 7711, args: ["--rm-timeout", "6000"] },
  ];
}

/** Every RM's checksum and value timestamp are equal: the problems, or none. */
async function divergence(lab: Lab): Promise<string[]> {
  const st = await Promise.all(RMS.map((n) => lab.ctl(n, "status")));
  const by = (f: (s: Message) => unknown) => Object.fromEntries(RMS.map((n, i) => [n, f(st[i])]));
  return [
    ...allEqual(by((s) => s.checksum), "checksum"),
    ...allEqual(by((s) => s.value_ts), "value_ts"),
  ];
}

async function settle(
  what: string,
  check: () => Promise<string[]>,
  timeoutMs: number,
): Promise<number> {
  const t0 = performance.now();
  let last: string[] = [];
  try {
    await waitUntil(async () => (last = await check()).length === 0, {
      timeoutMs,
      intervalMs: 150,
      what,
    });
  } catch {
    assert.fail(`${what} within ${timeoutMs} ms:\n  ${last.join("\n  ")}`);
  }
  return performance.now() - t0;
}

/** FE `fe` sees every RM ACTIVE. */
async function feSeesAll(lab: Lab, fe: string): Promise<void> {
  await waitUntil(async () => {
    const st = await lab.ctl(fe, "status");
    return (st.rms as Message[]).every((r) => r.status === "ACTIVE");
  }, { timeoutMs: 15_000, what: `${fe} sees every RM ACTIVE` });
}

class User {
  readonly session: RatingsSession;
  readonly client: RatingsClient;

  constructor(lab: Lab, user: number, fes: string[]) {
    this.session = new RatingsSession(`${lab.dir}/user-${user}.json`, user);
    this.client = new RatingsClient(fes.map((f) => lab.hostPort(f)));
  }

  write(kind: "create" | "update", movie: number, rating: number): Promise<Message> {
    return this.client.send(this.session, {
      t: "ratings.update",
      kind,
      user: this.session.user,
      movie,
      rating,
    });
  }

  async get(movie: number): Promise<unknown> {
    return (await this.client.send(this.session, {
      t: "ratings.query",
      q: "get",
      user: this.session.user,
      movie,
    })).rating;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

labTest(
  "lab ratings: both sides of a partition keep serving, and after the heal every replica has one checksum",
  async () => {
    await using lab = await Lab.up({ prefix: "avr1", peers: specs() });
    await Promise.all([feSeesAll(lab, "fe1"), feSeesAll(lab, "fe2")]);
    await lab.partition(["rm1", "fe1"], ["rm2", "rm3", "fe2"]);
    const west = new User(lab, 31, ["fe1"]);
    const east = new User(lab, 32, ["fe2"]);
    // the same (user, movie) created on both sides: concurrent, resolved the same everywhere
    const westTwin = new User(lab, 33, ["fe1"]);
    const eastTwin = new User(lab, 33, ["fe2"]);
    try {
      const [m1, m2, m3] = [MOVIES[1], MOVIES[2], MOVIES[3]];
      const w = await west.write("create", m1, 2.0);
      const e = await east.write("create", m2, 4.0);
      assert.ok((w.copies as number) >= 1 && (e.copies as number) >= 1);
      await westTwin.write("create", m3, 1.0);
      await eastTwin.write("create", m3, 5.0);
      // reads on each side see that side's own writes (read-your-writes holds in a partition)
      assert.equal(await west.get(m1), 2.0);
      assert.equal(await east.get(m2), 4.0);
      assert.notDeepEqual(await divergence(lab), [], "the sides differ while cut");

      await lab.heal();
      const ms = await settle("one checksum on every RM", () => divergence(lab), HEAL_BOUND_MS);
      console.log(`ratings halves: reconverged ${Math.round(ms)} ms after heal`);
      // the two sides' writes are everywhere, and the twins agree on one winner
      const westReads = new User(lab, 31, ["fe2"]);
      try {
        assert.equal(await westReads.get(m1), 2.0);
      } finally {
        await westReads.close();
      }
      const a = await westTwin.get(m3);
      const b = await eastTwin.get(m3);
      assert.equal(a, b);
      assert.ok(a === 1.0 || a === 5.0);
    } finally {
      await Promise.all([west.close(), east.close(), westTwin.close(), eastTwin.close()]);
    }
  },
  { timeoutMs: 80_000 },
);

labTest(
  "lab ratings: a front end fails over from an isolated RM and from a paused one; all converge after",
  async () => {
    await using lab = await Lab.up({ prefix: "avr2", peers: specs() });
    await feSeesAll(lab, "fe1");
    const user = new User(lab, 41, ["fe1"]);
    try {
      let kind: "create" | "update" = "create";
      let rating = 0.5;
      const writeAndRead = async () => {
        rating = rating >= 5 ? 0.5 : rating + 0.5;
        await user.write(kind, MOVIES[7], rating);
        kind = "update";
        assert.equal(await user.get(MOVIES[7]), rating);
      };
      await writeAndRead();
      // isolate the RM fe1 used: fe1 fails over to another (an fe.route failover event)
      const used = lab.events("fe1").filter((e) => e.ev === "fe.route").at(-1)?.rm as string;
      assert.ok(RMS.includes(used), `fe1 routed to ${used}`);
      const from = lab.mark("fe1");
      await lab.isolate(used);
      let t0 = performance.now();
      for (let i = 0; i < 4; i++) await writeAndRead();
      console.log(
        `ratings isolate: 4 writes+reads through fe1 took ${Math.round(performance.now() - t0)} ms`,
      );
      await lab.waitForEvent(
        "fe1",
        (e) => e.ev === "fe.rm_status" && e.rm === used && e.status === "OFFLINE",
        {
          from,
          timeoutMs: 10_000,
        },
      );
      await lab.heal();
      await settle("converged after the isolation", () => divergence(lab), HEAL_BOUND_MS);

      // pause the RM fe1 uses now, past the FE's timeouts; it keeps serving through the others
      const now = lab.events("fe1").filter((e) => e.ev === "fe.route").at(-1)?.rm as string;
      const mark = lab.mark("fe1");
      await lab.pause(now);
      t0 = performance.now();
      for (let i = 0; i < 4; i++) await writeAndRead();
      console.log(
        `ratings pause: 4 writes+reads through fe1 took ${Math.round(performance.now() - t0)} ms`,
      );
      await lab.waitForEvent(
        "fe1",
        (e) => e.ev === "fe.rm_status" && e.rm === now && e.status === "OFFLINE",
        {
          from: mark,
          timeoutMs: 10_000,
        },
      );
      await lab.resume(now);
      const ms = await settle("converged after the pause", () => divergence(lab), HEAL_BOUND_MS);
      console.log(`ratings pause: reconverged ${Math.round(ms)} ms after resume`);
      assert.equal(await user.get(MOVIES[7]), rating);
    } finally {
      await user.close();
    }
  },
  { timeoutMs: 90_000 },
);

labTest(
  "lab ratings: one-way loss between two RMs, then kill -9 and restart of one: one checksum at the end",
  async () => {
    await using lab = await Lab.up({ prefix: "avr3", peers: specs() });
    await Promise.all([feSeesAll(lab, "fe1"), feSeesAll(lab, "fe2")]);
    const a = new User(lab, 51, ["fe1", "fe2"]);
    const b = new User(lab, 52, ["fe2", "fe1"]);
    try {
      await lab.oneway("rm1", "rm2");
      for (let i = 0; i < 5; i++) {
        await a.write(i === 0 ? "create" : "update", MOVIES[11], 1 + (i % 4));
        await b.write(i === 0 ? "create" : "update", MOVIES[12], 1 + (i % 4));
      }
      // gossip goes around the cut (rm1 ↔ rm3 ↔ rm2): one checksum even before the heal
      await settle("converged with the one-way cut in force", () => divergence(lab), HEAL_BOUND_MS);
      await lab.heal();
      await lab.kill("rm3");
      for (let i = 0; i < 3; i++) await a.write("update", MOVIES[11], 0.5 + i);
      await lab.restart("rm3");
      const ms = await settle("converged after the restart", () => divergence(lab), HEAL_BOUND_MS);
      console.log(`ratings kill -9: reconverged ${Math.round(ms)} ms after restart`);
      assert.equal(await a.get(MOVIES[11]), 2.5);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
  { timeoutMs: 90_000 },
);

import assert from "node:assert/strict";
import { eventsNamed, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import type { NodeSpec } from "./harness/mod.ts";
import {
  generateDataset,
  RatingsClient,
  RatingsSession,
  writeDatasetDir,
} from "../mod/ratings/mod.ts";
import { type Message, ProtocolError, RemoteError, RpcClient } from "../mod/wire/mod.ts";

const DATA = await Deno.makeTempDir({ prefix: "peerd-ratings-data-" });
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

function nodes(extraRm: string[] = []): NodeSpec[] {
  const rmArgs = ["--dataset", DATA, "--gossip-interval", "100", ...extraRm];
  return [
    { name: "rm1", role: "replica", args: rmArgs },
    { name: "rm2", role: "replica", args: rmArgs },
    { name: "rm3", role: "replica", args: rmArgs },
    { name: "fe1", role: "frontend" },
    { name: "fe2", role: "frontend" },
  ];
}

function addr(cluster: LocalCluster, name: string) {
  return { hostname: "127.0.0.1", port: cluster.node(name).port };
}

async function statuses(cluster: LocalCluster, names = ["rm1", "rm2", "rm3"]) {
  return await Promise.all(names.map((n) => cluster.node(n).ctl("status")));
}

/** Waits until both FEs have seen every RM answer its status ping. */
async function fesSeeAll(cluster: LocalCluster) {
  await waitUntil(async () => {
    const all = await Promise.all(["fe1", "fe2"].map((n) => cluster.node(n).ctl("status")));
    return all.every((st) => (st.rms as Message[]).every((r) => r.status === "ACTIVE"));
  }, { what: "FEs see every RM ACTIVE" });
}

async function converged(cluster: LocalCluster, names = ["rm1", "rm2", "rm3"]) {
  return await waitUntil(async () => {
    const all = await statuses(cluster, names);
    const same = all.every((s) =>
      s.checksum === all[0].checksum &&
      JSON.stringify(s.value_ts) === JSON.stringify(all[0].value_ts)
    );
    return same ? all : undefined;
  }, { timeoutMs: 15_000, what: "equal checksums on every RM" });
}

Deno.test("a client's update is visible to its next query through either FE, also across one-shot CLI runs", async () => {
  await using cluster = await LocalCluster.start({ nodes: nodes() });
  const session = `${cluster.dir}/alice.json`;
  const fe1 = cluster.node("fe1").address;
  const fe2 = cluster.node("fe2").address;
  const movie = MOVIES[10];
  const created = await runPeerd([
    "ratings",
    "--fe",
    fe1,
    "--user",
    "7",
    "--session",
    session,
    "create",
    String(movie),
    "4.5",
  ]);
  assert.equal(created.code, 0, created.stderr);
  assert.match(
    created.stdout,
    new RegExp(`Created: user 7, .+ \\(\\d{4}\\) \\[movie ${movie}\\] = 4\\.5`),
  );
  const read = await runPeerd([
    "ratings",
    "--fe",
    `127.0.0.1:1,${fe2}`, // the first front end is unreachable: the client moves on
    "--user",
    "7",
    "--session",
    session,
    "get",
    String(movie),
  ]);
  assert.equal(read.code, 0, read.stderr);
  assert.match(read.stdout, new RegExp(`User 7 rated .+ \\[movie ${movie}\\]: 4\\.5`));
  const saved = JSON.parse(await Deno.readTextFile(session));
  assert.ok(Object.values(saved.users["7"]).some((v) => (v as number) >= 1), "session keeps ts");

  // Many alternating writes and reads through different FEs: never an older value.
  const s = new RatingsSession(`${cluster.dir}/bob.json`, 11);
  const a = new RatingsClient(addr(cluster, "fe1"));
  const b = new RatingsClient(addr(cluster, "fe2"));
  try {
    const m = MOVIES[20];
    const first = await a.send(s, { t: "ratings.query", q: "get", user: 11, movie: m });
    let kind = first.rating === null ? "create" : "update";
    for (let i = 0; i < 12; i++) {
      const rating = 0.5 + (i % 10) * 0.5;
      const [w, r] = i % 2 === 0 ? [a, b] : [b, a];
      const up = await w.send(s, { t: "ratings.update", kind, user: 11, movie: m, rating });
      assert.equal(up.copies, 2, "an update is acknowledged after 2 copies");
      kind = "update";
      const got = await r.send(s, { t: "ratings.query", q: "get", user: 11, movie: m });
      assert.equal(got.rating, rating, `read ${i} through the other FE`);
    }
    const all = await a.send(s, { t: "ratings.query", q: "all", user: 11 });
    assert.ok((all.ratings as Message[]).some((x) => x.movie === m && typeof x.title === "string"));
    const avg = await b.send(s, { t: "ratings.query", q: "average", user: 11, movie: m });
    assert.ok((avg.count as number) >= 1 && typeof avg.average === "number");
  } finally {
    await a.close();
    await b.close();
  }
  const ctl = await runPeerd(["ctl", cluster.node("rm1").address, "status", "--compact"]);
  assert.equal(ctl.code, 0, ctl.stderr);
  const st = JSON.parse(ctl.stdout);
  for (const key of ["value_ts", "replica_ts", "log_size", "peers", "status", "checksum"]) {
    assert.ok(key in st, `status has ${key}`);
  }
  assert.equal(st.status, "ACTIVE");
  assert.equal(st.peers.length, 2);
  await converged(cluster);
  const updates = eventsNamed(cluster.node("rm3").events(), "rm.update");
  assert.ok(updates.length >= 13 && updates.every((e) => typeof e.id === "string" && e.vts));
  assert.ok(eventsNamed(cluster.allEvents(), "fe.route").length >= 2);
});

Deno.test("with one RM kill -9ed updates and queries go on; after its restart all RMs converge", async () => {
  await using cluster = await LocalCluster.start({ nodes: nodes() });
  await fesSeeAll(cluster);
  const s = new RatingsSession(`${cluster.dir}/c.json`, 3);
  const fe = [new RatingsClient(addr(cluster, "fe1")), new RatingsClient(addr(cluster, "fe2"))];
  const expected = new Map<number, number | null>();
  const write = async (i: number) => {
    const movie = MOVIES[100 + (i % 15)];
    const cur = await fe[i % 2].send(s, { t: "ratings.query", q: "get", user: 3, movie });
    const rating = 1 + (i % 8) * 0.5;
    const kind = cur.rating === null ? "create" : "update";
    await fe[(i + 1) % 2].send(s, {
      t: "ratings.update",
      kind,
      user: 3,
      movie,
      rating,
      uid: `kill-test-${i}`,
    });
    expected.set(movie, rating);
    const back = await fe[i % 2].send(s, { t: "ratings.query", q: "get", user: 3, movie });
    assert.equal(back.rating, rating);
  };
  try {
    for (let i = 0; i < 10; i++) await write(i);
    assert.equal(await cluster.node("rm2").kill("SIGKILL"), 137);
    for (let i = 10; i < 30; i++) await write(i);
    const down = await cluster.node("rm1").ctl("status");
    assert.ok(down.log_size as number > 0, "records wait in the log while rm2 is down");
    await cluster.node("rm2").start();
    await converged(cluster);
    await waitUntil(async () => (await statuses(cluster)).every((st) => st.log_size === 0), {
      what: "log garbage-collected once every RM has the records",
    });
    // rm2 answers from its own database with the client's timestamp
    const direct = await RpcClient.connect(addr(cluster, "rm2"));
    try {
      for (const [movie, rating] of expected) {
        const r = await direct.request({
          t: "ratings.query",
          q: "get",
          user: 3,
          movie,
          prev: s.prev,
        });
        assert.equal(r.rating, rating);
      }
    } finally {
      await direct.close();
    }
    // a retry of an old update after garbage collection (and, at rm2, after a restart) is
    // recognised from the executed table and changes nothing
    for (const name of ["rm1", "rm2", "rm3"]) {
      const c = await RpcClient.connect(addr(cluster, name));
      try {
        const r = await c.request({
          t: "ratings.update",
          kind: "update",
          user: 3,
          movie: MOVIES[100],
          rating: 0.5,
          uid: "kill-test-0",
          prev: s.prev,
        });
        assert.equal(r.duplicate, true, name);
      } finally {
        await c.close();
      }
    }
  } finally {
    await fe[0].close();
    await fe[1].close();
  }
  const failovers = eventsNamed(cluster.allEvents(), "fe.route").filter((e) =>
    e.reason === "failover"
  );
  const statusChanges = eventsNamed(cluster.allEvents(), "fe.rm_status").filter((e) =>
    e.rm === "rm2"
  );
  assert.ok(failovers.length + statusChanges.length >= 1, "FEs noticed rm2 going away");
});

Deno.test("concurrent updates of the same rating from two clients converge to one value everywhere (with a cluster secret)", async () => {
  const secret = "ratings-secret";
  await using cluster = await LocalCluster.start({ nodes: nodes(), secret });
  const movie = MOVIES[50];
  const s1 = new RatingsSession(`${cluster.dir}/1.json`, 9);
  const s2 = new RatingsSession(`${cluster.dir}/2.json`, 9);
  const c1 = new RatingsClient(addr(cluster, "fe1"), secret);
  const c2 = new RatingsClient(addr(cluster, "fe2"), secret);
  try {
    const cur = await c1.send(s1, { t: "ratings.query", q: "get", user: 9, movie });
    if (cur.rating === null) {
      await c1.send(s1, { t: "ratings.update", kind: "create", user: 9, movie, rating: 1 });
    }
    const jobs: Promise<Message>[] = [];
    for (let i = 0; i < 15; i++) {
      jobs.push(
        c1.send(s1, {
          t: "ratings.update",
          kind: "update",
          user: 9,
          movie,
          rating: 2 + (i % 2) * 0.5,
        }),
      );
      jobs.push(
        c2.send(s2, {
          t: "ratings.update",
          kind: "update",
          user: 9,
          movie,
          rating: 4 + (i % 2) * 0.5,
        }),
      );
    }
    await Promise.all(jobs);
  } finally {
    await c1.close();
    await c2.close();
  }
  await converged(cluster);
  const values = await Promise.all(["rm1", "rm2", "rm3"].map(async (n) => {
    const c = await RpcClient.connect(addr(cluster, n), { secret });
    try {
      return (await c.request({ t: "ratings.query", q: "get", user: 9, movie, prev: {} })).rating;
    } finally {
      await c.close();
    }
  }));
  assert.equal(new Set(values).size, 1, `values ${values}`);
  assert.ok([2, 2.5, 4, 4.5].includes(values[0] as number));
  const intruder = new RatingsClient(addr(cluster, "fe1"));
  try {
    const err = await intruder.send(new RatingsSession(`${cluster.dir}/x.json`, 1), {
      t: "ratings.query",
      q: "all",
      user: 1,
    }).catch((e) => e);
    assert(err instanceof RemoteError || err instanceof ProtocolError, String(err));
    assert.equal(err.code, "unauthorized");
    assert.match(err.message, /cluster secret/);
  } finally {
    await intruder.close();
  }
});

Deno.test("bad input gets clear errors; a retried update is applied once; nothing is lost", async () => {
  await using cluster = await LocalCluster.start({ nodes: nodes() });
  const fe1 = cluster.node("fe1").address;
  const session = `${cluster.dir}/s.json`;
  const run = (...args: string[]) =>
    runPeerd(["ratings", "--fe", fe1, "--user", "5", "--session", session, ...args]);
  const unknownMovie = await run("get", "9999999");
  assert.equal(unknownMovie.code, 1);
  assert.match(unknownMovie.stderr, /^peerd ratings: not_found: Cannot find movie 9999999/);
  const outOfRange = await run("create", String(MOVIES[3]), "7");
  assert.equal(outOfRange.code, 1);
  assert.match(
    outOfRange.stderr,
    /^peerd ratings: bad_field: Cannot accept rating 7: ratings are 0\.5\.\.5\.0/,
  );
  const unknownCommand = await run("explode", "1");
  assert.equal(unknownCommand.code, 2);
  assert.match(unknownCommand.stderr, /unknown command "explode"/);
  const noMenu = await run();
  assert.equal(noMenu.code, 2);

  // The menu, driven through --menu with piped stdin.
  const menu = await runPeerd(
    ["ratings", "--fe", fe1, "--user", "5", "--session", session, "--menu"],
    { stdin: `1\n${MOVIES[3]}\n6\n9\n0\n` },
  );
  assert.equal(menu.code, 0, menu.stderr);
  assert.match(menu.stdout, /1\) average rating of a movie[\s\S]*6\) all your ratings/);
  assert.match(menu.stdout, /Average rating of .+ \[movie \d+\]|has no ratings/);
  assert.match(menu.stdout, /User 5 has \d+ ratings?/);
  assert.match(menu.stdout, /"9" is not on the menu/);

  // A huge length header: frame_too_large before any allocation, then the connection closes.
  {
    const raw = await Deno.connect(addr(cluster, "rm2"));
    try {
      await raw.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      const buf = new Uint8Array(4096);
      let text = "";
      for (let i = 0; i < 20; i++) {
        const n = await raw.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      assert.match(text, /frame_too_large/);
    } finally {
      raw.close();
    }
  }
  // Garbage frames to an RM and an FE: an error frame, and the node keeps serving.
  for (const name of ["rm1", "fe1"]) {
    const raw = await Deno.connect(addr(cluster, name));
    try {
      await raw.write(new Uint8Array([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]));
      const buf = new Uint8Array(4096);
      const n = await raw.read(buf);
      assert.ok(n !== null && n > 0);
    } finally {
      raw.close();
    }
  }
  const rm1 = await RpcClient.connect(addr(cluster, "rm1"));
  const fe2 = await RpcClient.connect(addr(cluster, "fe2"));
  try {
    const wrongType = await rm1.request({ t: "ratings.query", q: "get", user: "x", movie: 1 })
      .catch((e) => e);
    assert(wrongType instanceof RemoteError);
    assert.equal(wrongType.code, "bad_field");
    const badGossip = await rm1.request({
      t: "rm.gossip",
      from: "evil",
      ts: {},
      records: [{ x: 1 }],
    })
      .catch((e) => e);
    assert(badGossip instanceof RemoteError);
    assert.equal(badGossip.code, "bad_field");

    // A retried update (same uid, another FE) is applied once.
    const movie = MOVIES[4];
    const cur = await fe2.request({ t: "ratings.query", q: "get", user: 5, movie, prev: {} });
    const update = {
      t: "ratings.update",
      kind: cur.rating === null ? "create" : "update",
      user: 5,
      movie,
      rating: 3.5,
      uid: "retry-uid-1",
      time: 1_700_000_000,
      prev: {},
    };
    const first = await fe2.request(update);
    const fe1c = await RpcClient.connect(addr(cluster, "fe1"));
    try {
      const second = await fe1c.request({ ...update, prev: first.ts });
      assert.equal(second.duplicate, true);
    } finally {
      await fe1c.close();
    }
  } finally {
    await rm1.close();
    await fe2.close();
  }
  await converged(cluster);
  for (const name of ["rm1", "rm2", "rm3"]) {
    const applied = eventsNamed(cluster.node(name).events(), "rm.update")
      .filter((e) => e.id === "retry-uid-1");
    assert.equal(applied.length, 1, `${name} applied the retried update once`);
  }
  assert.ok(eventsNamed(cluster.node("rm1").events(), "wire.error").length >= 1);
  const again = await run("create", String(MOVIES[4]), "2");
  assert.equal(again.code, 1);
  assert.match(
    again.stderr,
    /conflict: Cannot create: user 5 already rated .+ \(3\.5\); use update/,
  );
  const gone = await run("delete", String(MOVIES[4]));
  assert.equal(gone.code, 0, gone.stderr);
  const notRated = await run("update", String(MOVIES[4]), "1");
  assert.equal(notRated.code, 1);
  assert.match(notRated.stderr, /not_found: Cannot update: user 5 has not rated/);
});

Deno.test("drain reports OFFLINE and FEs route around it; a new RM listed later joins and catches up; SIGTERM exits 0", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [...nodes(), {
      name: "rm4",
      role: "replica",
      args: ["--dataset", DATA, "--gossip-interval", "100"],
      deferred: true,
      unlisted: true,
    }],
  });
  const s = new RatingsSession(`${cluster.dir}/d.json`, 21);
  const c = new RatingsClient(addr(cluster, "fe1"));
  try {
    const drained = await cluster.node("rm1").ctl("drain");
    assert.equal(drained.status, "OFFLINE");
    await cluster.node("rm1").waitForEvent((e) => e.ev === "rm.status" && e.status === "OFFLINE");
    await waitUntil(async () => {
      const st = await cluster.node("fe1").ctl("status");
      return (st.rms as Message[]).find((r) => r.name === "rm1")?.status === "OFFLINE";
    }, { what: "fe1 sees rm1 OFFLINE" });
    for (let i = 0; i < 6; i++) {
      const movie = MOVIES[200 + i];
      const cur = await c.send(s, { t: "ratings.query", q: "get", user: 21, movie });
      assert.notEqual(cur.rm, "rm1");
      await c.send(s, {
        t: "ratings.update",
        kind: cur.rating === null ? "create" : "update",
        user: 21,
        movie,
        rating: 5,
      });
    }
    await cluster.node("rm1").ctl("resume");
  } finally {
    await c.close();
  }
  const settled = await converged(cluster);
  await waitUntil(async () => (await statuses(cluster)).every((st) => st.log_size === 0), {
    what: "log garbage-collected",
  });
  // rm4 was not in anyone's peers file: the others collected their logs without it.
  const rm4 = cluster.node("rm4");
  rm4.spec.unlisted = false;
  cluster.writePeersFile();
  await rm4.start();
  const all = await converged(cluster, ["rm1", "rm2", "rm3", "rm4"]);
  assert.equal(all[3].checksum, settled[0].checksum);
  assert.ok(eventsNamed(rm4.events(), "rm.snapshot").length >= 1);
  for (const name of ["rm1", "fe1"]) {
    const { code, ms } = await cluster.node(name).stop();
    assert.equal(code, 0);
    assert.ok(ms < 5_000);
  }
});

Deno.test("a replica that is behind fetches the missing updates at once for a query, long before gossip", async () => {
  const slow = ["--dataset", DATA, "--gossip-interval", "60000"];
  await using cluster = await LocalCluster.start({
    nodes: [
      { name: "rm1", role: "replica", args: slow },
      {
        name: "rm2",
        role: "replica",
        args: [...slow, "--overload-threshold", "0", "--query-timeout", "1500"],
      },
      { name: "rm3", role: "replica", args: [...slow, "--chaos-status"] },
    ],
  });
  const rm1 = await RpcClient.connect(addr(cluster, "rm1"));
  const rm3 = await RpcClient.connect(addr(cluster, "rm3"));
  try {
    const movie = MOVIES[7];
    const cur = await rm1.request({ t: "ratings.query", q: "get", user: 30, movie, prev: {} });
    const mark = cluster.node("rm3").mark();
    const up = await rm1.request({
      t: "ratings.update",
      kind: cur.rating === null ? "create" : "update",
      user: 30,
      movie,
      rating: 0.5,
      uid: "fetch-me",
      prev: cur.ts,
      f: 1,
    });
    assert.equal(up.copies, 1);
    const t0 = performance.now();
    const got = await rm3.request({ t: "ratings.query", q: "get", user: 30, movie, prev: up.ts });
    const ms = performance.now() - t0;
    assert.equal(got.rating, 0.5);
    assert.ok(ms < 5_000, `answered in ${ms} ms, gossip interval is 60 s`);
    const q = await cluster.node("rm3").waitForEvent("rm.query", { from: mark });
    assert.ok((q.waited as number) > 0);
    assert.deepEqual(q.prev, up.ts);
    const g = await cluster.node("rm3").waitForEvent("rm.gossip", { from: mark });
    assert.equal(g.peer, "rm1");
    assert.equal(g.records, 1);
  } finally {
    await rm1.close();
    await rm3.close();
  }
  // A query for updates no reachable RM has: OVERLOADED while it waits, then unavailable.
  const rm2 = await RpcClient.connect(addr(cluster, "rm2"));
  try {
    const err = await rm2.request({
      t: "ratings.query",
      q: "average",
      user: 1,
      movie: MOVIES[0],
      prev: { rm9: 4 },
    }).catch((e) => e);
    assert(err instanceof RemoteError);
    assert.equal(err.code, "unavailable");
    assert.match(err.message, /still lacks updates from rm9/);
  } finally {
    await rm2.close();
  }
  await cluster.node("rm2").waitForEvent((e) => e.ev === "rm.status" && e.status === "OVERLOADED");
  // --chaos-status: rm3 reports random statuses (re-drawn every second)
  await cluster.node("rm3").waitForEvent(
    (e) => e.ev === "rm.status" && e.status !== "ACTIVE",
    { timeoutMs: 15_000 },
  );
});

Deno.test("an RM that lost its disk comes back under its name and never reuses a sequence number", async () => {
  await using cluster = await LocalCluster.start({
    nodes: nodes().filter((n) => n.role === "replica"),
  });
  const movie = (i: number) => MOVIES[150 + i];
  const ask = async (name: string, msg: Message) => {
    const c = await RpcClient.connect(addr(cluster, name));
    try {
      return await c.request(msg);
    } finally {
      await c.close();
    }
  };
  let prev: Record<string, number> = {};
  for (let i = 0; i < 5; i++) {
    const cur = await ask("rm2", { t: "ratings.query", q: "get", user: 40, movie: movie(i), prev });
    const up = await ask("rm2", {
      t: "ratings.update",
      kind: cur.rating === null ? "create" : "update",
      user: 40,
      movie: movie(i),
      rating: 4,
      prev: cur.ts,
      f: 2,
    });
    prev = up.ts as Record<string, number>;
  }
  assert.equal(prev.rm2, 5);
  await converged(cluster);
  await waitUntil(async () => (await statuses(cluster)).every((st) => st.log_size === 0), {
    what: "logs collected",
  });
  const rm2 = cluster.node("rm2");
  await rm2.kill("SIGKILL");
  await Deno.remove(rm2.dataDir, { recursive: true });
  await rm2.start();
  // a client with no timestamp updates through the RM with the empty disk at once
  const again = await ask("rm2", {
    t: "ratings.update",
    kind: "update",
    user: 40,
    movie: movie(0),
    rating: 1,
    prev: {},
  });
  assert.equal((again.ts as Record<string, number>).rm2, 6, "sequence continues after 5");
  const all = await converged(cluster);
  assert.equal(all[1].ratings, all[0].ratings);
  for (let i = 1; i < 5; i++) {
    const r = await ask("rm2", { t: "ratings.query", q: "get", user: 40, movie: movie(i), prev });
    assert.equal(r.rating, 4);
  }
  const r0 = await ask("rm1", {
    t: "ratings.query",
    q: "get",
    user: 40,
    movie: movie(0),
    prev: again.ts,
  });
  assert.equal(r0.rating, 1);
});

Deno.test("ratings-gen writes a deterministic dataset; a bad --dataset exits 2 naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await runPeerd([
      "ratings-gen",
      "--out",
      `${dir}/a`,
      "--users",
      "20",
      "--movies",
      "100",
      "--ratings",
      "600",
      "--seed",
      "3",
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /100 movies.*600 ratings by 20 users/);
    const b = await runPeerd([
      "ratings-gen",
      "--out",
      `${dir}/b`,
      "--import-movielens",
      `${dir}/a`,
    ]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(
      await Deno.readTextFile(`${dir}/a/ratings.csv`),
      await Deno.readTextFile(`${dir}/b/ratings.csv`),
    );
    const missing = await runPeerd([
      "ratings-gen",
      "--out",
      `${dir}/c`,
      "--import-movielens",
      `${dir}/nope`,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /movies\.csv: cannot read: no such file/);
    await Deno.writeTextFile(`${dir}/a/ratings.csv`, "userId,movieId,rating,timestamp\n1,1,9,0\n");
    await Deno.writeTextFile(
      `${dir}/nofe.json`,
      JSON.stringify({ nodes: [{ name: "fe9", host: "127.0.0.1", port: 1, role: "frontend" }] }),
    );
    const lonely = await runPeerd([
      "--role",
      "frontend",
      "--name",
      "fe9",
      "--peers",
      `${dir}/nofe.json`,
      "--listen",
      "127.0.0.1:0",
    ]);
    assert.equal(lonely.code, 2);
    assert.match(lonely.stderr, /nofe\.json: no nodes with role "replica"/);
    const noFe = await runPeerd([
      "ratings",
      "--fe",
      "127.0.0.1:1",
      "--user",
      "1",
      "--session",
      `${dir}/s.json`,
      "all",
    ]);
    assert.equal(noFe.code, 1);
    assert.match(noFe.stderr, /Cannot reach front end 127\.0\.0\.1:1/);
    await Deno.writeTextFile(`${dir}/broken.json`, "{ not json");
    const broken = await runPeerd([
      "ratings",
      "--fe",
      "127.0.0.1:1",
      "--user",
      "1",
      "--session",
      `${dir}/broken.json`,
      "all",
    ]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /broken\.json: not JSON/);
    const bad = await runPeerd([
      "--role",
      "replica",
      "--name",
      "x",
      "--listen",
      "127.0.0.1:0",
      "--data",
      `${dir}/db`,
      "--dataset",
      `${dir}/a`,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ratings\.csv:2: rating must be 0\.5\.\.5\.0/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

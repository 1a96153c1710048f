import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  aheadOf,
  dependenciesMet,
  generateDataset,
  isCovered,
  isValidRating,
  leq,
  type LogRecord,
  MemoryJournal,
  merge,
  normalize,
  parseVectorTs,
  RatingsSession,
  RatingsState,
  ReplicaManager,
  ReplicaStore,
  stableOrder,
  total,
  UpdateLog,
} from "../mod/ratings/mod.ts";
import { parseCsvLine, parseMoviesCsv, readDatasetDir } from "../mod/ratings/dataset.ts";
import { parseRatingsCommand } from "../mod/ratings/client_command.ts";
import { readRecords, readUpdate } from "../mod/ratings/protocol.ts";
import { ProtocolError } from "../mod/wire/mod.ts";

function rec(
  origin: string,
  ts: Record<string, number>,
  uid = `${origin}-${ts[origin]}`,
): LogRecord {
  return {
    origin,
    ts,
    uid,
    op: { kind: "update", user: 1, movie: 1, rating: 3, time: 0, prev: {} },
  };
}

Deno.test("leq() treats missing entries as 0", () => {
  assert.ok(leq({}, {}));
  assert.ok(leq({}, { a: 3 }));
  assert.ok(leq({ a: 0 }, {}));
  assert.ok(leq({ a: 1, b: 2 }, { a: 1, b: 2, c: 9 }));
  assert.ok(!leq({ a: 1 }, {}));
  assert.ok(!leq({ a: 2, b: 1 }, { a: 3, b: 0 }));
  assert.ok(!leq({ c: 1 }, { a: 5, b: 5 }));
});

Deno.test("merge() is the element-wise maximum and does not mutate", () => {
  const a = { a: 1, b: 5 };
  const b = { b: 2, c: 7 };
  assert.deepEqual(merge(a, b), { a: 1, b: 5, c: 7 });
  assert.deepEqual(merge(b, a), { a: 1, b: 5, c: 7 });
  assert.deepEqual(a, { a: 1, b: 5 });
  assert.deepEqual(merge({}, {}), {});
  const m = merge(a, b);
  assert.ok(leq(a, m) && leq(b, m));
});

Deno.test("aheadOf() lists the replicas where another timestamp is ahead", () => {
  assert.deepEqual(aheadOf({ rm1: 3, rm2: 1, rm3: 4 }, { rm1: 3, rm2: 0, rm3: 2 }), ["rm2", "rm3"]);
  assert.deepEqual(aheadOf({ rm1: 1 }, { rm1: 1, rm2: 7 }), []);
  assert.deepEqual(aheadOf({ rm9: 1 }, {}), ["rm9"]);
});

Deno.test("parseVectorTs() accepts counters and refuses garbage", () => {
  assert.deepEqual(parseVectorTs({ a: 2, b: 0 }), { a: 2 });
  assert.deepEqual(parseVectorTs(undefined), {});
  assert.equal(parseVectorTs({ a: -1 }), undefined);
  assert.equal(parseVectorTs({ a: 1.5 }), undefined);
  assert.equal(parseVectorTs({ a: "1" }), undefined);
  assert.equal(parseVectorTs([1, 2]), undefined);
  assert.equal(parseVectorTs("x"), undefined);
});

Deno.test("UpdateLog.merge() skips records already covered and keeps each origin contiguous", () => {
  const log = new UpdateLog();
  const replicaTs: Record<string, number> = { a: 1 };
  const added = log.merge([
    rec("a", { a: 1 }), // covered by replicaTs
    rec("a", { a: 2 }),
    rec("b", { b: 2 }), // gap: b#1 missing, dropped for now
    rec("a", { a: 3, b: 1 }),
  ], replicaTs);
  assert.deepEqual(added.map((r) => `${r.origin}#${r.ts[r.origin]}`), ["a#2", "a#3"]);
  assert.deepEqual(replicaTs, { a: 3 });
  // the same records again: all covered
  assert.equal(log.merge([rec("a", { a: 2 }), rec("a", { a: 3, b: 1 })], replicaTs).length, 0);
  assert.equal(log.size, 2);
  // b#1 then b#2 in one gossip, out of order
  assert.equal(log.merge([rec("b", { b: 2 }), rec("b", { b: 1 })], replicaTs).length, 2);
  assert.deepEqual(replicaTs, { a: 3, b: 2 });
  assert.deepEqual(log.missingFor({ a: 2, b: 2 }).map((r) => r.uid), ["a-3"]);
});

Deno.test("stableOrder() returns stable records in timestamp order, respecting causality", () => {
  const records = [
    rec("b", { a: 1, b: 1 }), // needs a#1
    rec("a", { a: 2 }), // needs a#1
    rec("a", { a: 1 }),
    rec("c", { c: 1, z: 1 }), // needs z#1, never here: not stable
    rec("c", { c: 2, z: 1 }),
  ];
  const order = stableOrder(records, {});
  assert.deepEqual(order.map((r) => r.uid), ["a-1", "a-2", "b-1"]);
  assert.ok(!dependenciesMet(records[3], { a: 2, b: 1 }));
  // from a value timestamp that already covers a#1
  assert.deepEqual(stableOrder(records, { a: 1 }).map((r) => r.uid), ["a-2", "b-1"]);
  // ties on the total are broken by origin name, the same on every replica
  const tie = [rec("y", { y: 1 }), rec("x", { x: 1 })];
  assert.deepEqual(stableOrder(tie, {}).map((r) => r.uid), ["x-1", "y-1"]);
  assert.deepEqual(stableOrder([...tie].reverse(), {}).map((r) => r.uid), ["x-1", "y-1"]);
});

Deno.test("UpdateLog.collect() drops a record only once every RM has it and it is applied", () => {
  const log = new UpdateLog();
  log.append(rec("a", { a: 1 }));
  log.append(rec("a", { a: 2 }));
  const mine = { a: 2 };
  assert.equal(log.collect({ a: 2 }, [mine, { a: 1 }, {}]).length, 0);
  assert.deepEqual(log.collect({ a: 2 }, [mine, { a: 1 }, { a: 5 }]).map((r) => r.uid), ["a-1"]);
  assert.equal(log.collect({ a: 1 }, [mine, { a: 2 }, { a: 2 }]).length, 0, "not applied here yet");
  assert.equal(log.collect({ a: 2 }, [mine, { a: 2 }, { a: 2 }]).length, 1);
  assert.equal(log.size, 0);
  assert.ok(isCovered(rec("a", { a: 2 }), mine));
});

Deno.test("RatingsState.write() converges whatever the order of concurrent writes", () => {
  const writes: Array<[number | null, number, string]> = [
    [4, 3, "u1"],
    [2, 5, "u2"],
    [null, 5, "u3"],
    [3.5, 4, "u4"],
  ];
  const results = new Set<string>();
  const perms = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]];
  for (const p of perms) {
    const s = RatingsState.fromDataset({
      movies: [{ id: 1, title: "M (1999)", genres: "Drama" }],
      ratings: [{ user: 1, movie: 1, rating: 1, time: 0 }],
    });
    for (const i of p) s.write(1, 1, writes[i][0], 0, writes[i][1], writes[i][2]);
    results.add(JSON.stringify([s.rating(1, 1), s.average(1), s.size]));
  }
  assert.equal(results.size, 1);
  assert.deepEqual(JSON.parse([...results][0]), [null, { average: null, count: 0 }, 0]);
});

Deno.test("generateDataset() is deterministic and MovieLens-small shaped", () => {
  const a = generateDataset({ seed: 7 });
  const b = generateDataset({ seed: 7 });
  assert.equal(a.movies.length, 9700);
  assert.equal(a.ratings.length, 100_000);
  assert.deepEqual(a.ratings.slice(0, 50), b.ratings.slice(0, 50));
  assert.deepEqual(a.movies[123], b.movies[123]);
  assert.equal(new Set(a.ratings.map((r) => r.user)).size, 610);
  assert.ok(a.ratings.every((r) => isValidRating(r.rating)));
  const pairs = new Set(a.ratings.map((r) => r.user * 1e7 + r.movie));
  assert.equal(pairs.size, a.ratings.length, "one rating per user and movie");
  const mean = a.ratings.reduce((s, r) => s + r.rating, 0) / a.ratings.length;
  assert.ok(mean > 3.0 && mean < 4.0, `mean ${mean}`);
  const perUser = new Map<number, number>();
  for (const r of a.ratings) perUser.set(r.user, (perUser.get(r.user) ?? 0) + 1);
  assert.ok(Math.min(...perUser.values()) >= 20);
  assert.notDeepEqual(
    generateDataset({ seed: 8, users: 5, movies: 50, ratings: 200 }).ratings,
    generateDataset({ seed: 9, users: 5, movies: 50, ratings: 200 }).ratings,
  );
});

Deno.test("CSV parsing handles quoted titles and names the bad line", () => {
  assert.deepEqual(parseCsvLine('11,"American President, The (1995)",Comedy|Drama|Romance'), [
    "11",
    "American President, The (1995)",
    "Comedy|Drama|Romance",
  ]);
  assert.deepEqual(parseCsvLine('1,"say ""hi"" (2000)",Drama'), ["1", 'say "hi" (2000)', "Drama"]);
  assert.throws(
    () => parseMoviesCsv("movieId,title,genres\n1,A,B\nx,C,D\n", "m.csv"),
    /m\.csv:3: movieId/,
  );
  assert.throws(() => parseMoviesCsv("id,name\n", "m.csv"), /m\.csv:1: header/);
});

Deno.test("readDatasetDir() refuses ratings out of range and unknown movies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/movies.csv`, "movieId,title,genres\n1,A (1990),Drama\n");
    await Deno.writeTextFile(`${dir}/ratings.csv`, "userId,movieId,rating,timestamp\n1,1,7.0,5\n");
    await assert.rejects(readDatasetDir(dir), /ratings\.csv:2: rating must be 0\.5\.\.5\.0/);
    await Deno.writeTextFile(`${dir}/ratings.csv`, "userId,movieId,rating,timestamp\n1,2,4.0,5\n");
    await assert.rejects(readDatasetDir(dir), /unknown movieId 2/);
    await assert.rejects(readDatasetDir(`${dir}/nope`), /cannot read: no such file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ReplicaStore persists cells, log and timestamps and reloads them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = generateDataset({ users: 10, movies: 40, ratings: 200 });
    let store = new ReplicaStore(`${dir}/r.db`);
    assert.ok(!store.initialised);
    store.importDataset(data);
    const r = rec("rm1", { rm1: 1 });
    store.logAdded(r);
    store.cellChanged({
      user: 99,
      movie: data.movies[0].id,
      rating: 4.5,
      time: 1,
      vsum: 0,
      vuid: "x",
    });
    store.setMeta("value", { rm1: 1 });
    store.executedAdded("x");
    store.flush();
    const sum1 = await store.checksum();
    store.close();
    store = new ReplicaStore(`${dir}/r.db`);
    const loaded = store.load();
    assert.equal(loaded.state.size, 201);
    assert.equal(loaded.state.rating(99, data.movies[0].id), 4.5);
    assert.deepEqual(loaded.log, [r]);
    assert.deepEqual(loaded.meta.get("value"), { rm1: 1 });
    assert.ok(store.hasExecuted("x"));
    assert.ok(!store.hasExecuted("y"));
    assert.equal(store.executedCount(), 1);
    assert.deepEqual(await store.checksum(), sum1);
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A replica file as schema 1 wrote it: `user_version` 1 once a dataset was imported. */
function writeSchema1(path: string, imported: boolean): void {
  const db = new DatabaseSync(path);
  db.exec(`
    CREATE TABLE movies(movie_id INTEGER PRIMARY KEY, title TEXT NOT NULL, genres TEXT NOT NULL);
    CREATE TABLE ratings(user_id INTEGER NOT NULL, movie_id INTEGER NOT NULL, rating REAL,
      timestamp INTEGER NOT NULL, vsum INTEGER NOT NULL DEFAULT 0,
      vuid TEXT NOT NULL DEFAULT '', PRIMARY KEY(user_id, movie_id)) WITHOUT ROWID;
    CREATE TABLE log(origin TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
      PRIMARY KEY(origin, seq)) WITHOUT ROWID;
    CREATE TABLE executed(uid TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
  if (imported) {
    db.exec(`
      INSERT INTO movies VALUES (1, 'Heat', 'Crime');
      INSERT INTO ratings VALUES (5, 1, 4.5, 100, 0, '');
      INSERT INTO meta VALUES ('value', '{"rm1":3}');
      PRAGMA user_version = 1;`);
  }
  db.close();
}

Deno.test("ReplicaStore opens schema 1 files: imported ones stay imported, empty ones do not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    writeSchema1(`${dir}/imported.db`, true);
    const store = new ReplicaStore(`${dir}/imported.db`);
    try {
      assert.ok(store.initialised, "a schema 1 file with user_version 1 had its dataset");
      const loaded = store.load();
      assert.equal(loaded.state.rating(5, 1), 4.5);
      assert.deepEqual([...loaded.meta.keys()], ["value"]);
      assert.deepEqual(loaded.meta.get("value"), { rm1: 3 });
    } finally {
      store.close();
    }
    writeSchema1(`${dir}/empty.db`, false);
    const empty = new ReplicaStore(`${dir}/empty.db`);
    try {
      assert.ok(!empty.initialised, "tables only, user_version 0: no dataset yet");
      empty.importDataset(generateDataset({ users: 3, movies: 5, ratings: 10 }));
      assert.ok(empty.initialised);
    } finally {
      empty.close();
    }
    const again = new ReplicaStore(`${dir}/empty.db`);
    try {
      assert.ok(again.initialised);
      assert.equal(again.load().state.size, 10);
    } finally {
      again.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("request readers refuse bad ratings, unknown kinds and malformed records", () => {
  const ok = readUpdate({ t: "ratings.update", kind: "create", user: 3, movie: 4, rating: 4.5 });
  assert.equal(ok.op.rating, 4.5);
  const bad = (msg: Record<string, unknown>, code: string) =>
    assert.throws(() => readUpdate({ t: "ratings.update", ...msg }), (e: unknown) => {
      assert(e instanceof ProtocolError);
      assert.equal(e.code, code);
      return true;
    });
  bad({ kind: "create", user: 3, movie: 4, rating: 5.5 }, "bad_field");
  bad({ kind: "create", user: 3, movie: 4, rating: 3.3 }, "bad_field");
  bad({ kind: "create", user: 3, movie: 4, rating: "4" }, "bad_field");
  bad({ kind: "explode", user: 3, movie: 4 }, "unknown_command");
  bad({ kind: "delete", user: "3", movie: 4 }, "bad_field");
  bad({ kind: "delete", user: 3, movie: 4, prev: { a: "x" } }, "bad_field");
  assert.throws(() => readRecords({ t: "rm.gossip", records: [{ origin: "a" }] }), /records\[0\]/);
  assert.throws(() => readRecords({ t: "rm.gossip", records: "x" }), /must be an array/);
  assert.throws(() => parseRatingsCommand(1, "explode", []), /unknown command "explode"/);
  assert.throws(() => parseRatingsCommand(1, "create", ["1"]), /missing RATING/);
  assert.throws(() => parseRatingsCommand(1, "get", ["abc"]), /MOVIE must be a positive integer/);
});

/** Three replica managers (the daemon's own code, over memory journals) and their events. */
function simulatedReplicas(names: string[]) {
  return names.map((name) => {
    const applied: string[] = []; // update ids, in the order they were applied
    const journal = new MemoryJournal();
    const rm = new ReplicaManager(
      name,
      {
        state: RatingsState.fromDataset({
          movies: [1, 2, 3].map((id) => ({ id, title: `M${id} (2000)`, genres: "Drama" })),
          ratings: [{ user: 1, movie: 1, rating: 3, time: 0 }],
        }),
        log: [],
        meta: new Map(),
      },
      journal,
      {
        emit: (ev, fields) => {
          if (ev === "rm.update") applied.push(String(fields.id));
        },
      },
    );
    return { name, rm, journal, applied };
  });
}

Deno.test("ReplicaManager: replicas exchanging records in random orders reach the same table", () => {
  const names = ["rm1", "rm2", "rm3"];
  for (let seed = 1; seed <= 20; seed++) {
    let x = seed * 7919;
    const rand = () => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x / 0x7fffffff;
    };
    const rms = simulatedReplicas(names);
    type Rm = (typeof rms)[number];
    const peersOf = (rm: Rm) => names.filter((n) => n !== rm.name);
    const records = new Map<string, LogRecord>();
    const clients = [{} as Record<string, number>, {} as Record<string, number>];
    let uid = 0;
    for (let step = 0; step < 60; step++) {
      if (rand() < 0.5) {
        // a client updates through some RM that already has what the client saw
        const c = Math.floor(rand() * clients.length);
        const able = rms.filter((r) => r.rm.covers(clients[c]));
        if (able.length === 0) continue;
        const { rm } = able[Math.floor(rand() * able.length)];
        const r = rm.createRecord({
          kind: "update",
          user: 1,
          movie: 1 + Math.floor(rand() * 3),
          rating: rand() < 0.2 ? null : 0.5 + Math.floor(rand() * 10) * 0.5,
          time: step,
          prev: { ...clients[c] },
        }, `u${String(++uid).padStart(3, "0")}`);
        records.set(r.uid, r);
        clients[c] = merge(clients[c], r.ts);
      } else {
        // gossip from a to b: part of what b lacks, in shuffled order
        const a = rms[Math.floor(rand() * 3)];
        const b = rms[Math.floor(rand() * 3)];
        if (a === b) continue;
        const missing = a.rm.recordsFor(b.rm.replicaTs).filter(() => rand() < 0.7);
        missing.sort(() => rand() - 0.5);
        b.rm.receive(a.name, a.rm.replicaTs, missing, peersOf(b));
      }
    }
    for (let round = 0; round < 4; round++) {
      for (const a of rms) {
        for (const b of rms) {
          if (a === b) continue;
          b.rm.receive(a.name, a.rm.replicaTs, a.rm.recordsFor(b.rm.replicaTs), peersOf(b));
        }
      }
    }
    for (const { name, applied } of rms) {
      // applied only when its dependencies are: rebuild each RM's value timestamp from the
      // order of its rm.update events
      const value: Record<string, number> = {};
      for (const id of applied) {
        const r = records.get(id)!;
        assert.ok(dependenciesMet(r, value), `${name}: ${id} applied at ${JSON.stringify(value)}`);
        value[r.origin] = r.ts[r.origin];
      }
      assert.equal(applied.length, uid, `${name}: every update applied exactly once`);
    }
    const dump = (r: Rm) =>
      JSON.stringify([[1, 2, 3].map((m) => r.rm.state.rating(1, m)), normalize(r.rm.valueTs)]);
    assert.equal(dump(rms[0]), dump(rms[1]), `seed ${seed}`);
    assert.equal(dump(rms[1]), dump(rms[2]), `seed ${seed}`);
    // the winner of each cell is the record with the largest (total of its timestamp, origin):
    // an update made after another was applied (by any client) always wins over it
    for (const movie of [1, 2, 3]) {
      const writes = [...records.values()].filter((r) => r.op.movie === movie);
      if (writes.length === 0) continue;
      const key = (r: LogRecord) => [total(r.ts), `${r.origin}/${r.uid}`] as const;
      const best = writes.reduce((a, b) => {
        const [ta, ua] = key(a);
        const [tb, ub] = key(b);
        return tb > ta || (tb === ta && ub > ua) ? b : a;
      });
      assert.equal(rms[0].rm.state.rating(1, movie), best.op.rating);
      for (const w of writes) {
        if (w !== best) {
          assert.ok(!leq(best.ts, w.ts), "the winner is never causally before a loser");
        }
      }
    }
    // GC: once everyone knows everyone's timestamp, the logs (and their journals) empty
    for (const a of rms) {
      for (const b of rms) if (a !== b) b.rm.receive(a.name, a.rm.replicaTs, [], peersOf(b));
    }
    assert.ok(rms.every((r) => r.rm.logSize === 0 && r.journal.log.size === 0), `seed ${seed}`);
    // every change reached the journal: a manager rebuilt from it has the same table
    for (const r of rms) {
      const state = RatingsState.fromDataset({
        movies: [1, 2, 3].map((id) => ({ id, title: `M${id} (2000)`, genres: "Drama" })),
        ratings: [{ user: 1, movie: 1, rating: 3, time: 0 }],
      });
      for (const cell of r.journal.cells.values()) state.load(cell);
      const again = new ReplicaManager(
        r.name,
        { state, log: [...r.journal.log.values()], meta: r.journal.meta },
        new MemoryJournal(),
      );
      assert.equal(dump({ ...r, rm: again }), dump(r), `${r.name} rebuilt from its journal`);
    }
  }
});

Deno.test("ReplicaManager: a duplicate update is recognised, a GC'd peer needs a snapshot, and a snapshot brings it level", () => {
  const [a, b] = simulatedReplicas(["rm1", "rm2"]);
  const op = (movie: number, rating: number) => ({
    kind: "update" as const,
    user: 1,
    movie,
    rating,
    time: 1,
    prev: {},
  });
  const r1 = a.rm.createRecord(op(1, 4), "x1");
  assert.deepEqual(a.rm.duplicate("x1"), r1.ts);
  assert.equal(a.rm.duplicate("x2"), undefined);
  a.rm.createRecord(op(2, 5), "x2");
  // a hears that "rm2" has everything (its table says so) and collects its log
  a.rm.receive("rm2", { rm1: 2 }, [], ["rm2"]);
  assert.equal(a.rm.logSize, 0);
  assert.deepEqual(a.rm.gcFloor, { rm1: 2 });
  // b never got the records: gossip cannot bring them, a snapshot must
  assert.equal(a.rm.needsSnapshot(b.rm.replicaTs), true);
  assert.deepEqual(a.rm.recordsFor(b.rm.replicaTs), []);
  const snap = a.rm.snapshot();
  assert.equal(b.rm.applySnapshot(snap.valueTs, snap.cells, snap.executed), 2);
  assert.equal(b.rm.state.rating(1, 1), 4);
  assert.equal(b.rm.state.rating(1, 2), 5);
  assert.deepEqual(normalize(b.rm.valueTs), { rm1: 2 });
  assert.deepEqual(b.rm.duplicate("x2"), b.rm.valueTs, "executed ids travel with the snapshot");
  // malformed snapshot cells are skipped, not applied
  assert.equal(b.rm.applySnapshot({}, [[1, 2], "x", [1, 1, "4", 1, 99, "z"]], [7]), 0);
  assert.throws(
    () => b.rm.checkPrecondition({ ...op(3, 1), kind: "delete" }, "M3"),
    /has not rated/,
  );
  assert.throws(() => b.rm.titleOf(99), /unknown movie id/);
});

Deno.test("RatingsSession.save() keeps every user's timestamp when clients save at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/session.json`;
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => new RatingsSession(path, i + 1, { rm1: i + 1 }).save()),
    );
    for (let i = 0; i < 8; i++) {
      assert.deepEqual((await RatingsSession.open(path, i + 1)).prev, { rm1: i + 1 });
    }
    // a stale session never lowers what the file holds
    await new RatingsSession(path, 3, { rm2: 1 }).save();
    assert.deepEqual((await RatingsSession.open(path, 3)).prev, { rm1: 3, rm2: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PeerLink.request({resetOnTimeout}) (ratings' use) closes a stalled connection: waiting requests fail over at once, the next one redials", async () => {
  const { ConnectionClosedError, FrameServer, PeerLink } = await import("../mod/wire/mod.ts");
  let release: () => void = () => {};
  const stalled = new Promise<void>((r) => (release = r));
  let sessions = 0;
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "replica", name: "rm" },
    handlers: {
      // a silent peer: like an RM behind a partition, it never answers
      "t.stall": async () => {
        await stalled;
        return undefined;
      },
      "t.echo": () => ({ t: "t.echo.ok" }),
    },
    onSession: () => {
      sessions++;
    },
  });
  const link = new PeerLink({ hostname: "127.0.0.1", port: server.port }, {
    role: "frontend",
    name: "fe",
  });
  try {
    assert.equal((await link.request({ t: "t.echo" })).t, "t.echo.ok");
    const t0 = performance.now();
    const ping = link.request({ t: "t.stall" }, { timeoutMs: 200, resetOnTimeout: true });
    const waiting = link.request({ t: "t.echo" }, { timeoutMs: 10_000 }); // queued behind the stalled frame
    await assert.rejects(ping, (e: Error) => e instanceof ProtocolError && e.code === "timeout");
    await assert.rejects(waiting, ConnectionClosedError);
    assert.ok(performance.now() - t0 < 5_000, "the waiting request did not wait its own timeout");
    assert.equal(link.up, false);
    // patient: waits out the short reconnect backoff after a close
    assert.equal(
      (await link.request({ t: "t.echo" }, { timeoutMs: 5_000, patient: true })).t,
      "t.echo.ok",
    );
    assert.equal(sessions, 2, "a fresh connection");
  } finally {
    release();
    await link.close();
    await server.close();
  }
});

Deno.test("PrevWaiters wakes a request once its prev is covered and refuses it after its deadline", async () => {
  const { PrevWaiters } = await import("../mod/ratings/prev_waiters.ts");
  const waiters = new PrevWaiters();
  const covered = waiters.add({ rm1: 2 }, 1_000, 500);
  const late = waiters.add({ rm2: 1 }, 1_000, 300);
  assert.equal(waiters.size, 2);
  waiters.wake((prev) => (prev.rm1 ?? 0) <= 2 && (prev.rm2 ?? 0) === 0, 1_040);
  assert.equal(await covered, 40);
  assert.equal(waiters.size, 1);
  assert.deepEqual(waiters.expire(1_200, () => new Error("never")), { rm2: 1 });
  assert.equal(
    waiters.expire(1_300, (prev, ms) => new Error(`${Object.keys(prev)} ${ms}`)),
    undefined,
  );
  await assert.rejects(late, /rm2 300/);
  assert.equal(waiters.size, 0);
});

Deno.test("CommitBatcher commits once per turn, and after a failed write refuses every waiter with store_failed", async () => {
  const { CommitBatcher } = await import("../mod/ratings/commit_batcher.ts");
  const events: string[] = [];
  let flushes = 0;
  let failing = false;
  const target = {
    dirty: true,
    path: "rm.db",
    flush() {
      flushes++;
      if (failing) throw new Error("disk full (test)");
    },
  };
  const batcher = new CommitBatcher(target, {
    events: { emit: (ev: string) => events.push(ev) },
    log: { error: () => {} },
  });
  try {
    await Promise.all([batcher.committed(), batcher.committed(), batcher.committed()]);
    assert.equal(flushes, 1, "one commit for the turn");
    failing = true;
    const waiting = batcher.committed();
    await assert.rejects(
      waiting,
      (e: Error) => e instanceof ProtocolError && e.code === "store_failed",
    );
    assert.deepEqual(events, ["store.failed"]);
    assert.match(String((await batcher.failed).message), /^Cannot write rm\.db: disk full/);
    await assert.rejects(batcher.committed(), /disk full/);
    batcher.now();
    assert.equal(flushes, 2, "nothing is written after a failure");
  } finally {
    batcher.close();
  }
});

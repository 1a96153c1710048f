import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { BrokerStore, type OutboxRow } from "../mod/mom/broker_store.ts";
import { DaemonStore, type Delivery, type OutboxEntry } from "../mod/mom/daemon_store.ts";
import { SEGMENT_MAX_ROWS } from "../mod/mom/segment.ts";
import { MqttStore } from "../mod/mom/mqtt/mod.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function withDir(fn: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mom-store-" });
  try {
    fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Writes a database file from SQL (an older schema's file, as a former version left it). */
function writeDatabase(path: string, sql: string): void {
  const db = new DatabaseSync(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

function delivery(n: number, users: number[]): Delivery {
  return { users, id: `p:${n}`, topic: `t/${n}`, payload: bytes(`m${n}`), from: 9 };
}

Deno.test("daemon store: the outbox in segments is read after a point, counted and trimmed by the broker's ack", () => {
  withDir((dir) => {
    const store = new DaemonStore(`${dir}/d.sqlite`);
    const out = (from: number, to: number): OutboxEntry[] =>
      Array.from({ length: to - from + 1 }, (_, i) => ({
        seq: from + i,
        user: 1,
        topic: "a/b",
        payload: bytes(`p${from + i}`),
        local: i % 2 === 0,
      }));
    store.commit(out(1, 3), [], 0, { last_seq: 3 });
    store.commit(out(4, 4), [], 0, { last_seq: 4 });
    // more than one segment's rows in one commit
    const big = SEGMENT_MAX_ROWS + 10;
    store.commit(out(5, 4 + big), [], 0, { last_seq: 4 + big });
    assert.equal(store.outboxSize(0), 4 + big);
    assert.equal(store.outboxSize(2), 2 + big);
    assert.deepEqual(store.outbox(1, 2).map((e) => e.seq), [2, 3]);
    assert.deepEqual(store.outbox(3, 3).map((e) => e.seq), [4, 5, 6]);
    const all = store.outbox(0, 1_000_000);
    assert.equal(all.length, 4 + big);
    assert.ok(all.every((e, i) => e.seq === i + 1 && text(e.payload) === `p${i + 1}`));
    assert.deepEqual(all.slice(0, 5).map((e) => e.local), [true, false, true, true, true]);
    // acknowledged up to 2: the first segment stays (3 is not acknowledged), reads skip 1..2
    store.commit([], [], 2, {});
    assert.equal(store.outboxSize(2), 2 + big);
    assert.equal(store.outbox(2, 1)[0].seq, 3);
    store.commit([], [], 4, {});
    assert.equal(store.outboxSize(0), big);
    assert.equal(store.lastSeq(), 4 + big);
    store.close();
  });
});

Deno.test("daemon store: each user reads only its inbox entries, takes them, and fully taken segments are collected", () => {
  withDir((dir) => {
    const path = `${dir}/d.sqlite`;
    let store = new DaemonStore(path);
    store.addUser(1);
    store.addUser(2);
    const first = store.commit(
      [],
      [delivery(1, [1]), delivery(2, [2]), delivery(3, [1, 2])],
      0,
      {},
    );
    store.commit([], [delivery(4, [2])], 0, {});
    assert.deepEqual(store.select(1, 0, 10).map((e) => e.id), ["p:1", "p:3"]);
    assert.deepEqual(store.select(2, 0, 10).map((e) => e.id), ["p:2", "p:3", "p:4"]);
    assert.deepEqual(store.select(2, 0, 2).map((e) => e.id), ["p:2", "p:3"]);
    assert.deepEqual(store.inboxSizes(), { "1": 2, "2": 3 });
    // user 1 takes its first entry; a later receive from position 0 does not see it again
    store.ack(1, first);
    assert.deepEqual(store.select(1, 0, 10).map((e) => e.id), ["p:3"]);
    assert.deepEqual(store.inboxSizes(), { "1": 1, "2": 3 });
    // nothing is collected while an entry of the first segment waits
    store.collect([1, 2]);
    assert.deepEqual(store.select(2, 0, 1).map((e) => e.seq), [first + 1]);
    store.close();

    // what was taken and the positions survive a restart; a user added later starts empty
    store = new DaemonStore(path);
    assert.deepEqual(store.select(1, 0, 10).map((e) => e.id), ["p:3"]);
    store.addUser(3);
    assert.deepEqual(store.select(3, 0, 10), []);
    const next = store.commit([], [delivery(5, [3])], 0, {});
    assert.equal(next, first + 4);
    store.commit([], [], 0, {}, new Map(), new Map([[1, first + 2], [2, first + 3]]), [1, 2, 3]);
    assert.deepEqual(store.inboxSizes(), { "3": 1 });
    const db = new DatabaseSync(path);
    const segs = db.prepare("SELECT first FROM inbox_seg ORDER BY first").all() as Array<
      { first: number }
    >;
    db.close();
    // the two fully taken segments are gone, user 3's remains
    assert.deepEqual(segs.map((s) => Number(s.first)), [next]);
    assert.deepEqual(store.select(3, 0, 10).map((e) => e.id), ["p:5"]);
    store.removeUser(3);
    assert.deepEqual(store.inboxSizes(), {});
    store.close();
  });
});

Deno.test("daemon store: a version 1 file (a row per message) is converted with nothing lost", () => {
  withDir((dir) => {
    const path = `${dir}/d.sqlite`;
    writeDatabase(
      path,
      `
      CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE users(id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL);
      CREATE TABLE outbox(seq INTEGER PRIMARY KEY, user INTEGER NOT NULL, topic TEXT NOT NULL,
        payload BLOB NOT NULL);
      CREATE TABLE inbox_msg(n INTEGER PRIMARY KEY, id TEXT NOT NULL, topic TEXT NOT NULL,
        payload BLOB NOT NULL, sender INTEGER NOT NULL);
      CREATE TABLE inbox(user INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(user, n))
        WITHOUT ROWID;
      CREATE TABLE seen_from(daemon TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO meta VALUES ('epoch', 'e1'), ('inbox_n', '12'), ('last_seq', '7');
      INSERT INTO users VALUES (1, 0), (2, 0), (3, 0);
      INSERT INTO outbox VALUES (6, 1, 'a', x'01'), (7, 2, 'b', x'02');
      INSERT INTO inbox_msg VALUES (10, 'p:10', 't', x'0a', 5), (11, 'p:11', 't', x'0b', 5);
      INSERT INTO inbox VALUES (1, 10), (1, 11), (2, 11);
      INSERT INTO seen_from VALUES ('p', 11);
      PRAGMA user_version = 1;
    `,
    );
    const store = new DaemonStore(path);
    assert.equal(store.epoch, "e1");
    assert.deepEqual(store.outbox(0, 10).map((e) => [e.seq, e.user, e.topic, e.local]), [
      [6, 1, "a", false],
      [7, 2, "b", false],
    ]);
    // subscriptions were not kept by version 1: not synced until the broker lists them
    assert.equal(store.meta("subs_synced"), undefined);
    assert.deepEqual(store.select(1, 0, 10).map((e) => [e.seq, e.id, e.from]), [
      [10, "p:10", 5],
      [11, "p:11", 5],
    ]);
    assert.deepEqual(store.select(2, 0, 10).map((e) => e.seq), [11]);
    assert.deepEqual(store.select(3, 0, 10), []);
    assert.deepEqual(store.inboxSizes(), { "1": 2, "2": 1 });
    assert.deepEqual(store.seenFrom(), new Map([["p", 11]]));
    // positions continue after the old ones
    assert.equal(store.commit([], [delivery(1, [3])], 0, {}), 13);
    // positions reserved for hand-outs before their commit are never given again
    store.setMeta({ inbox_reserved: 500 });
    store.close();
    const again = new DaemonStore(path);
    assert.equal(again.nextPosition, 501);
    assert.equal(again.commit([], [delivery(2, [3])], 0, {}), 501);
    assert.deepEqual(again.select(3, 0, 10).map((e) => e.seq), [13, 501]);
    again.close();
  });
});

Deno.test("broker store: deliveries per daemon in segments, read after a point, backlog, ack, version 1 file converted", () => {
  withDir((dir) => {
    const path = `${dir}/b.sqlite`;
    writeDatabase(
      path,
      `
      CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, daemon TEXT NOT NULL,
        created_ms INTEGER NOT NULL);
      CREATE TABLE subs(user INTEGER NOT NULL, pattern TEXT NOT NULL, own INTEGER NOT NULL,
        PRIMARY KEY(user, pattern)) WITHOUT ROWID;
      CREATE TABLE topics(name TEXT PRIMARY KEY, first_ms INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE daemons(name TEXT PRIMARY KEY, epoch TEXT NOT NULL, seen INTEGER NOT NULL,
        dseq INTEGER NOT NULL, acked INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE outbox(daemon TEXT NOT NULL, dseq INTEGER NOT NULL, id TEXT NOT NULL,
        topic TEXT NOT NULL, payload BLOB NOT NULL, sender INTEGER NOT NULL, users TEXT NOT NULL,
        PRIMARY KEY(daemon, dseq)) WITHOUT ROWID;
      INSERT INTO meta VALUES ('epoch', 'b1');
      INSERT INTO outbox VALUES ('d1', 1, 'x:1', 't', x'01', 4, '1'),
        ('d1', 2, 'x:2', 't', x'02', 4, '1,2'), ('d2', 1, 'x:1', 't', x'01', 4, '3');
      PRAGMA user_version = 1;
    `,
    );
    const store = new BrokerStore(path);
    assert.equal(store.epoch, "b1");
    assert.deepEqual(store.outbox("d1", 0, 10).map((r) => [r.dseq, r.id, r.users]), [
      [1, "x:1", [1]],
      [2, "x:2", [1, 2]],
    ]);
    assert.equal(store.backlog("d1", 0), 2);
    assert.equal(store.backlog("d2", 0), 1);
    const row = (dseq: number): OutboxRow => ({
      daemon: "d1",
      dseq,
      id: `y:${dseq}`,
      topic: "u",
      payload: bytes(String(dseq)),
      from: 5,
      users: [7],
    });
    store.commit([row(3), row(4), row(5)], [], [], []);
    assert.deepEqual(store.outbox("d1", 3, 1).map((r) => r.dseq), [4]);
    assert.deepEqual(store.outbox("d1", 3, 10).map((r) => r.dseq), [4, 5]);
    assert.equal(store.backlog("d1", 3), 2);
    // acknowledged up to 4: the segment 3..5 stays for 5, the old one goes
    store.commit([], [], [["d1", 4]], []);
    assert.equal(store.backlog("d1", 4), 1);
    assert.deepEqual(store.outbox("d1", 4, 10).map((r) => [r.dseq, text(r.payload)]), [[5, "5"]]);
    assert.deepEqual(store.outbox("d2", 0, 10).map((r) => r.dseq), [1]);
    store.close();
  });
});

Deno.test("MqttStore opens a file from before schema versioning (user_version 0) with its sessions", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mqtt-store-" });
  const path = `${dir}/mqtt.sqlite`;
  try {
    const old = new DatabaseSync(path);
    old.exec(`
      CREATE TABLE sessions(
        client TEXT PRIMARY KEY, user INTEGER NOT NULL, expiry INTEGER NOT NULL, ended_ms INTEGER);
      CREATE TABLE subs(
        client TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, options INTEGER NOT NULL,
        identifier INTEGER, PRIMARY KEY(client, filter)) WITHOUT ROWID;
      CREATE TABLE released(
        client TEXT NOT NULL, packet_id INTEGER NOT NULL, seq INTEGER NOT NULL,
        complete INTEGER NOT NULL, PRIMARY KEY(client, packet_id)) WITHOUT ROWID;
      INSERT INTO sessions VALUES ('sensor-1', 4, 3600, 1000);`);
    old.close();
    const store = new MqttStore(path);
    try {
      assert.deepEqual(store.sessions(), [
        { clientId: "sensor-1", user: 4, expiry: 3600, endedMs: 1000 },
      ]);
      store.putSession("sensor-2", 5, 0);
      assert.equal(store.sessions().length, 2);
    } finally {
      store.close();
    }
    const check = new DatabaseSync(path);
    try {
      const v = check.prepare("PRAGMA user_version").get() as { user_version: number };
      assert.equal(v.user_version, 1);
    } finally {
      check.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

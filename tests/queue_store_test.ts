/**
 * The queue's SQLite file: a version 1 file (before queue arguments and message expiry)
 * still opens with its declarations and messages, the delivery mark flags what was handed
 * out as redelivered, the internal flag is kept, and a file from a newer peerd is refused
 * with one line.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { QueueStore } from "../mod/queue/mod.ts";
import { StorageError } from "../mod/storage/mod.ts";

Deno.test("QueueStore opens a version 1 file, keeping declarations and messages", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-qstore-" });
  const path = `${dir}/queue.sqlite`;
  try {
    const old = new DatabaseSync(path);
    old.exec(`
      CREATE TABLE exchanges (name TEXT PRIMARY KEY, type TEXT NOT NULL,
        auto_delete INTEGER NOT NULL);
      CREATE TABLE queues (name TEXT PRIMARY KEY, auto_delete INTEGER NOT NULL,
        max_length INTEGER NOT NULL);
      CREATE TABLE bindings (queue TEXT NOT NULL, exchange TEXT NOT NULL,
        key TEXT NOT NULL, PRIMARY KEY (queue, exchange, key));
      CREATE TABLE messages (id INTEGER PRIMARY KEY, queue TEXT NOT NULL,
        exchange TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, props TEXT NOT NULL,
        redelivered INTEGER NOT NULL);
      INSERT INTO exchanges VALUES ('orders', 'topic', 0);
      INSERT INTO queues VALUES ('jobs', 0, 100);
      INSERT INTO bindings VALUES ('jobs', 'orders', 'new.*');
      INSERT INTO messages VALUES (7, 'jobs', 'orders', 'new.a', x'6869', '{}', 1);
      PRAGMA user_version = 1;`);
    old.close();

    const store = QueueStore.open(path);
    try {
      assert.deepEqual(store.exchanges(), [
        { name: "orders", type: "topic", autoDelete: false, internal: false },
      ]);
      assert.deepEqual(store.queues(), [
        { name: "jobs", autoDelete: false, maxLength: 100, args: "{}" },
      ]);
      assert.deepEqual(store.bindings().map((b) => ({ ...b })), [{
        queue: "jobs",
        exchange: "orders",
        key: "new.*",
      }]);
      const [m] = store.messages();
      assert.equal(m.id, 7);
      assert.equal(new TextDecoder().decode(m.body), "hi");
      assert.equal(m.redelivered, true);
      assert.equal(m.expiresAt ?? 0, 0);
      // new messages number after the old ones and survive a commit
      const id = store.insert({
        queue: "jobs",
        exchange: "orders",
        key: "new.b",
        body: new Uint8Array([1]),
        props: "{}",
        redelivered: false,
        expiresAt: 0,
      });
      assert.equal(id, 8);
      store.commit();
    } finally {
      store.close();
    }
    const again = QueueStore.open(path);
    try {
      assert.deepEqual(again.messages().map((m) => m.id), [7, 8]);
    } finally {
      again.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("QueueStore refuses a file from a newer peerd with one line", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-qstore-" });
  const path = `${dir}/queue.sqlite`;
  try {
    QueueStore.open(path).close();
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 9");
    db.close();
    assert.throws(
      () => QueueStore.open(path),
      (err: unknown) =>
        err instanceof StorageError &&
        /schema version 9 is newer than this peerd's 3/.test(err.message),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("QueueStore flags messages at or below their queue's delivery mark redelivered; keeps internal", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-qstore-" });
  const path = `${dir}/queue.sqlite`;
  const msg = (queue: string) => ({
    queue,
    exchange: "",
    key: queue,
    body: new Uint8Array([1]),
    props: "{}",
    redelivered: false,
    expiresAt: 0,
  });
  try {
    const store = QueueStore.open(path);
    store.putExchange({ name: "hidden", type: "fanout", autoDelete: false, internal: true });
    const ids = [msg("a"), msg("b"), msg("a"), msg("a"), msg("b")].map((m) => store.insert(m));
    store.markDelivered("a", ids[2]);
    store.markDelivered("a", ids[0]); // a mark only goes up
    store.commit();
    store.close();
    const again = QueueStore.open(path);
    try {
      assert.deepEqual(
        again.messages().map((m) => [m.queue, m.redelivered]),
        [["a", true], ["b", false], ["a", true], ["a", false], ["b", false]],
      );
      assert.deepEqual(again.exchanges(), [
        { name: "hidden", type: "fanout", autoDelete: false, internal: true },
      ]);
      again.deleteQueue("a");
      again.insert(msg("a"));
      again.commit();
      // a deleted queue's mark goes with it
      assert.deepEqual(again.messages().filter((m) => m.queue === "a").map((m) => m.redelivered), [
        false,
      ]);
    } finally {
      again.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

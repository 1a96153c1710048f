/**
 * Disk faults against real processes: `--data` on a file, 64 KiB of garbage inside a
 * database, a database from a newer peerd and a read-only database give one line and exit 1
 * at start for every role family with a store; a write that fails at run time is answered `store_failed` with a
 * `store.failed` event, never an ok.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type ClusterNode, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import { MomClient, MomError } from "../mod/mom/mod.ts";
import { QueueClient } from "../mod/queue/mod.ts";
import { RatingsClient, RatingsSession } from "../mod/ratings/mod.ts";
import { RemoteError } from "../mod/wire/mod.ts";

const IS_ROOT = Deno.uid() === 0;

/** Makes `path` read-only for this user: `chattr +i` as root, mode 0444 otherwise. */
async function makeReadOnly(path: string): Promise<boolean> {
  if (!IS_ROOT) {
    Deno.chmodSync(path, 0o444);
    return true;
  }
  try {
    const out = await new Deno.Command("chattr", { args: ["+i", path], stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function undoReadOnly(path: string): Promise<void> {
  if (!IS_ROOT) {
    Deno.chmodSync(path, 0o644);
    return;
  }
  await new Deno.Command("chattr", { args: ["-i", path], stderr: "null" }).output().catch(() => {});
}

/** Overwrites 64 KiB from offset 1024 with random bytes (inside page 1 and past it). */
function corrupt(path: string): void {
  const file = Deno.openSync(path, { write: true });
  try {
    file.seekSync(1024, Deno.SeekMode.Start);
    file.writeSync(crypto.getRandomValues(new Uint8Array(65536)));
  } finally {
    file.close();
  }
}

/** The node's argv with `--data` replaced and quiet logs. */
function argvWith(node: ClusterNode, data: string): string[] {
  const argv = node.argv();
  argv[argv.indexOf("--data") + 1] = data;
  argv[argv.indexOf("--log-level") + 1] = "error";
  return argv;
}

function assertOneLine(stderr: string, pattern: RegExp, what: string): void {
  const lines = stderr.trim().split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, `${what}: expected one line, got:\n${stderr}`);
  assert.match(lines[0], /^peerd: /, what);
  assert.match(lines[0], pattern, what);
  assert(!/\bat .*\.ts:\d+/.test(stderr), `${what}: a stack trace`);
}

const FAMILIES: Array<{ role: string; db: string; args?: string[] }> = [
  { role: "broker", db: "broker.sqlite" },
  { role: "daemon", db: "daemon.sqlite", args: ["--broker", "127.0.0.1:9"] },
  { role: "queue", db: "queue.db" },
  { role: "lottery-server", db: "lottery.db", args: ["--agencies", "1"] },
  { role: "replica", db: "replica.db" },
  { role: "multicast", db: "multicast.db" },
];

for (const family of FAMILIES) {
  Deno.test(`${family.role}: --data on a file, a corrupt database, a newer schema and a read-only one each give one line and exit 1`, async () => {
    await using cluster = await LocalCluster.start({
      nodes: [{ name: "x1", role: family.role, args: family.args }],
    });
    const node = cluster.node("x1");
    await node.stop();
    const db = `${node.dataDir}/${family.db}`;
    assert(Deno.statSync(db).isFile, `${family.role} made ${db}`);

    const file = `${cluster.dir}/not-a-dir`;
    Deno.writeTextFileSync(file, "x");
    const onFile = await runPeerd(argvWith(node, file));
    assert.equal(onFile.code, 1, onFile.stderr);
    assertOneLine(
      onFile.stderr,
      /--data .*not-a-dir: it is a file, not a directory/,
      "--data file",
    );

    const bad = `${cluster.dir}/corrupt`;
    Deno.mkdirSync(bad);
    Deno.copyFileSync(db, `${bad}/${family.db}`);
    corrupt(`${bad}/${family.db}`);
    const onCorrupt = await runPeerd(argvWith(node, bad));
    assert.equal(onCorrupt.code, 1, onCorrupt.stderr);
    assertOneLine(
      onCorrupt.stderr,
      /Cannot open database .*(malformed|not a database|integrity check failed)/,
      "corrupt",
    );

    {
      const newer = `${cluster.dir}/newer`;
      Deno.mkdirSync(newer);
      Deno.copyFileSync(db, `${newer}/${family.db}`);
      const raw = new DatabaseSync(`${newer}/${family.db}`);
      try {
        raw.exec("PRAGMA user_version = 99");
      } finally {
        raw.close();
      }
      const onNewer = await runPeerd(argvWith(node, newer));
      assert.equal(onNewer.code, 1, onNewer.stderr);
      assertOneLine(
        onNewer.stderr,
        /Cannot open database .*schema version 99 is newer than this peerd's \d+/,
        "newer schema",
      );
    }

    const ro = `${cluster.dir}/readonly`;
    Deno.mkdirSync(ro);
    Deno.copyFileSync(db, `${ro}/${family.db}`);
    if (!(await makeReadOnly(`${ro}/${family.db}`))) {
      console.log("skipped: cannot make a file read-only here (chattr +i failed)");
      return;
    }
    try {
      const onReadOnly = await runPeerd(argvWith(node, ro));
      assert.equal(onReadOnly.code, 1, onReadOnly.stderr);
      assertOneLine(onReadOnly.stderr, /Cannot open database .*read-only/, "read-only");
    } finally {
      await undoReadOnly(`${ro}/${family.db}`);
    }
  });
}

Deno.test("a daemon whose disk fails at run time answers store_failed, emits store.failed and exits 1; nothing is acknowledged", async () => {
  if (!IS_ROOT) {
    console.log("skipped: making an open database unwritable needs chattr +i (root)");
    return;
  }
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "b1", role: "broker" }, { name: "d1", role: "daemon" }],
  });
  const d1 = cluster.node("d1");
  await waitUntil(async () => (await d1.ctl("status")).link === "up", { what: "link up" });
  const client = await MomClient.connect({ hostname: "127.0.0.1", port: d1.port });
  const wal = `${d1.dataDir}/daemon.sqlite-wal`;
  try {
    const user = await client.create();
    await user.publish("disk/a", "stored");
    assert(await makeReadOnly(wal), "chattr +i on the WAL");
    const refused = await user.publish("disk/a", "not stored").then(
      () => undefined,
      (err) => err,
    );
    assert(refused instanceof MomError, `expected a MomError, got ${refused}`);
    assert.equal(refused.code, "store_failed");
    const code = await d1.exited(10_000);
    assert.equal(code, 1);
    const failed = d1.events().filter((e) => e.ev === "store.failed");
    assert.equal(failed.length, 1);
    assert.match(String(failed[0].message), /Cannot write to the database/);
    assert(!d1.events().some((e) => e.ev === "msg.published" && e.id === "d1:2"));
    assert.match(d1.stderr, /peerd: Cannot write to the database/);
  } finally {
    await undoReadOnly(wal);
    await client.close();
  }
});

Deno.test("a queue whose disk fails at run time answers store_failed and emits store.failed, never an ok", async () => {
  if (!IS_ROOT) {
    console.log("skipped: making an open database unwritable needs chattr +i (root)");
    return;
  }
  await using cluster = await LocalCluster.start({ nodes: [{ name: "q1", role: "queue" }] });
  const q1 = cluster.node("q1");
  const client = await QueueClient.connect(q1.address);
  const wal = `${q1.dataDir}/queue.db-wal`;
  try {
    await client.assertQueue("before", { durable: true });
    await waitUntil(() => {
      try {
        return Deno.statSync(wal).isFile;
      } catch {
        return false;
      }
    }, { what: "the WAL file" });
    assert(await makeReadOnly(wal), "chattr +i on the WAL");
    const refused = await client.assertQueue("after", { durable: true }).then(
      () => undefined,
      (err) => err,
    );
    assert(refused instanceof RemoteError, `expected an error reply, got ${refused}`);
    assert.equal(refused.code, "store_failed");
    await q1.waitForEvent("store.failed");
  } finally {
    await undoReadOnly(wal);
    await client.close();
  }
});

Deno.test("a replica whose disk fails at run time refuses the update with store_failed, emits store.failed and exits 1 with one line", async () => {
  if (!IS_ROOT) {
    console.log("skipped: making an open database unwritable needs chattr +i (root)");
    return;
  }
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "rm1", role: "replica" }, { name: "fe1", role: "frontend" }],
  });
  const rm1 = cluster.node("rm1");
  const fe = new RatingsClient({ hostname: "127.0.0.1", port: cluster.node("fe1").port });
  const session = new RatingsSession(`${cluster.dir}/s.json`, 4);
  const wal = `${rm1.dataDir}/replica.db-wal`;
  try {
    await waitUntil(async () => {
      const st = await cluster.node("fe1").ctl("status");
      return (st.rms as Array<{ status: string }>).every((r) => r.status === "ACTIVE");
    }, { what: "fe1 sees rm1 ACTIVE" });
    const update = (movie: number) =>
      fe.send(session, { t: "ratings.update", kind: "create", user: 4, movie, rating: 3 }, 5_000);
    const first = await update(1);
    assert.equal(first.t, "ratings.updated", JSON.stringify(first));
    assert(await makeReadOnly(wal), "chattr +i on the WAL");
    const refused = await update(2).then(() => undefined, (err) => err);
    assert(refused instanceof Error, "the update must not be acknowledged");
    const code = await rm1.exited(15_000);
    assert.equal(code, 1);
    const failed = rm1.events().filter((e) => e.ev === "store.failed");
    assert.equal(failed.length, 1);
    assert.match(rm1.stderr, /^peerd: Cannot write .*replica\.db/m);
    assert(!/\bat .*\.ts:\d+/.test(rm1.stderr), "a stack trace");
  } finally {
    await undoReadOnly(wal);
    await fe.close();
  }
});

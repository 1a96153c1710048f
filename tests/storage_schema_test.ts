/**
 * `openSqlite`'s schema mechanism on real files: a fresh create, every upgrade path, a file
 * newer than this peerd refused with one line, a failed upgrade rolled back to the version
 * it had, and a version with no upgrade step.
 */
import assert from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { openSqlite, schemaVersion, type SqliteSchema, StorageError } from "../mod/storage/mod.ts";

/** Version 3 of a small schema: t(a, b, c); v1 had t(a), v2 added b, v3 adds c. */
const SCHEMA: SqliteSchema = {
  version: 3,
  create: "CREATE TABLE t(a TEXT, b TEXT NOT NULL DEFAULT '', c INTEGER NOT NULL DEFAULT 0)",
  upgrades: {
    1: "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT ''",
    2: (db: DatabaseSync) => {
      db.exec("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT 0");
      db.exec("UPDATE t SET c = length(a)");
    },
  },
};

function tempDb(): { dir: string; path: string } {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-schema-" });
  return { dir, path: `${dir}/s.db` };
}

/** Writes a file at version `v` of the schema above, with one row. */
function writeVersion(path: string, v: number): void {
  const db = openSqlite(path);
  try {
    db.exec("CREATE TABLE t(a TEXT)");
    if (v >= 2) db.exec("ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT ''");
    if (v >= 3) db.exec("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT 0");
    db.exec("INSERT INTO t(a) VALUES ('abcd')");
    db.exec(`PRAGMA user_version = ${v}`);
  } finally {
    db.close();
  }
}

function columns(db: DatabaseSync): string[] {
  return (db.prepare("PRAGMA table_info(t)").all() as Array<{ name: string }>).map((r) => r.name);
}

Deno.test("schema: an empty file is created at the current version", () => {
  const { dir, path } = tempDb();
  try {
    const db = openSqlite(path, { schema: SCHEMA });
    try {
      assert.equal(schemaVersion(db), 3);
      assert.deepEqual(columns(db), ["a", "b", "c"]);
    } finally {
      db.close();
    }
    // opening again runs nothing
    const again = openSqlite(path, { schema: SCHEMA });
    again.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("schema: a create function step runs in the create transaction", () => {
  const { dir, path } = tempDb();
  try {
    const db = openSqlite(path, {
      schema: {
        version: 1,
        create: (d) => {
          d.exec("CREATE TABLE t(a TEXT)");
          d.prepare("INSERT INTO t(a) VALUES (?)").run("first");
        },
      },
    });
    try {
      assert.equal(schemaVersion(db), 1);
      assert.deepEqual(db.prepare("SELECT a FROM t").all().map((r) => r.a), ["first"]);
    } finally {
      db.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

for (const from of [1, 2]) {
  Deno.test(`schema: a version ${from} file is upgraded to 3, keeping its rows`, () => {
    const { dir, path } = tempDb();
    try {
      writeVersion(path, from);
      const db = openSqlite(path, { schema: SCHEMA });
      try {
        assert.equal(schemaVersion(db), 3);
        assert.deepEqual(columns(db), ["a", "b", "c"]);
        const row = db.prepare("SELECT a, b, c FROM t").get() as Record<string, unknown>;
        assert.deepEqual({ ...row }, { a: "abcd", b: "", c: 4 });
      } finally {
        db.close();
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
}

Deno.test("schema: a file newer than this peerd is refused with one line, untouched", () => {
  const { dir, path } = tempDb();
  try {
    writeVersion(path, 3);
    const db = openSqlite(path);
    db.exec("PRAGMA user_version = 7");
    db.close();
    assert.throws(() => openSqlite(path, { schema: SCHEMA }), (err: unknown) => {
      assert.ok(err instanceof StorageError);
      assert.match(err.message, /schema version 7 is newer than this peerd's 3/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    const check = openSqlite(path);
    try {
      assert.equal(schemaVersion(check), 7);
    } finally {
      check.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("schema: a failed upgrade rolls back, names its step and leaves the old version", () => {
  const { dir, path } = tempDb();
  try {
    writeVersion(path, 1);
    const failing: SqliteSchema = {
      ...SCHEMA,
      upgrades: {
        1: SCHEMA.upgrades![1],
        2: (db) => {
          db.exec("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT 0");
          db.exec("UPDATE t SET a = 'changed'");
          throw new Error("disk on fire");
        },
      },
    };
    assert.throws(() => openSqlite(path, { schema: failing }), (err: unknown) => {
      assert.ok(err instanceof StorageError);
      assert.match(err.message, /upgrading schema version 2 to 3 failed \(disk on fire\)/);
      assert.match(err.message, /left at version 2/);
      return true;
    });
    // step 1 → 2 committed; step 2 → 3 rolled back entirely
    const db = openSqlite(path);
    try {
      assert.equal(schemaVersion(db), 2);
      assert.deepEqual(columns(db), ["a", "b"]);
      assert.equal((db.prepare("SELECT a FROM t").get() as { a: string }).a, "abcd");
    } finally {
      db.close();
    }
    // the working upgrade then goes on from version 2
    const ok = openSqlite(path, { schema: SCHEMA });
    try {
      assert.equal(schemaVersion(ok), 3);
    } finally {
      ok.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("schema: a failed SQL create leaves an empty version 0 file", () => {
  const { dir, path } = tempDb();
  try {
    assert.throws(
      () =>
        openSqlite(path, {
          schema: { version: 1, create: "CREATE TABLE t(a); CREATE TABLE t(b)" },
        }),
      (err: unknown) => {
        assert.ok(err instanceof StorageError);
        assert.match(err.message, /creating schema version 1 failed: .*already exists/);
        return true;
      },
    );
    const db = openSqlite(path);
    try {
      assert.equal(schemaVersion(db), 0);
      assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_master").get()!.n, 0);
    } finally {
      db.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("schema: a version with no upgrade step is refused", () => {
  const { dir, path } = tempDb();
  try {
    writeVersion(path, 1);
    assert.throws(
      () => openSqlite(path, { schema: { version: 3, create: SCHEMA.create, upgrades: {} } }),
      (err: unknown) =>
        err instanceof StorageError &&
        /schema version 1 cannot be upgraded to 3 by this peerd/.test(err.message),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * What a ring node keeps on disk: the highest generation it promised or saw, so that a
 * restarted node never promises a ballot twice and fences keep increasing across restarts.
 * SQLite (WAL, `PRAGMA user_version` 1, synchronous FULL: a promise is durable before it
 * is answered).
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, type SqliteSchema } from "../storage/mod.ts";

/** Version 1: one row per key of the node's durable counters (`max_gen`). */
const SCHEMA: SqliteSchema = {
  version: 1,
  create: "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
};

/** The ring's state on disk. `close()` is safe to call twice. */
export class RingStore {
  readonly #db: DatabaseSync;
  readonly #write: StatementSync;
  #saved: number;
  #closed = false;

  /** Opens (or creates) the store at `path`; throws `StorageError` with one line if it cannot. */
  constructor(path: string) {
    const db = openSqlite(path, {
      pragmas: "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000",
      schema: SCHEMA,
    });
    this.#db = db;
    try {
      this.#write = db.prepare(
        "INSERT INTO meta (key, value) VALUES ('max_gen', ?) " +
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      );
      const row = db.prepare("SELECT value FROM meta WHERE key = 'max_gen'").get() as
        | { value: number }
        | undefined;
      this.#saved = Number(row?.value ?? 0);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The highest generation promised or seen before this start (0 on a fresh node). */
  get maxGen(): number {
    return this.#saved;
  }

  /** Stores `maxGen` (durably) when it is higher than what is stored. */
  saveMaxGen(maxGen: number): void {
    if (maxGen <= this.#saved) return;
    this.#write.run(maxGen);
    this.#saved = maxGen;
  }

  /** Closes the database. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

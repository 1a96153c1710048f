/**
 * What a ring node keeps on disk: the highest generation it promised or saw, so that a
 * restarted node never promises a ballot twice and fences keep increasing across restarts.
 * SQLite (WAL, `PRAGMA user_version` 1, synchronous FULL: a promise is durable before it
 * is answered).
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";

const SCHEMA_VERSION = 1;

/** The ring's state on disk. `close()` is safe to call twice. */
export class RingStore {
  readonly #db: DatabaseSync;
  readonly #write: StatementSync;
  #saved: number;
  #closed = false;

  constructor(path: string) {
    const db = new DatabaseSync(path);
    this.#db = db;
    try {
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      const version = Number(
        (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      );
      if (version > SCHEMA_VERSION) {
        throw new Error(`Cannot open ${path}: schema version ${version} is newer than this peerd`);
      }
      if (version < SCHEMA_VERSION) {
        db.exec(`
          CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
          PRAGMA user_version = ${SCHEMA_VERSION};
        `);
      }
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

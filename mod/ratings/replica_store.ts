/**
 * The SQLite database of one replica manager (`node:sqlite`, WAL): movies, the ratings
 * table with each cell's version, the update log, the executed-update ids and the
 * timestamps. Changes are queued and written in one transaction per flush (the replica
 * flushes once per event-loop tick and acknowledges only after the commit).
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback, type SqliteSchema } from "../storage/mod.ts";
import type { Dataset } from "./dataset.ts";
import { type Cell, RatingsState } from "./ratings_state.ts";
import type { LogRecord } from "./update_log.ts";
import { seqOf } from "./update_log.ts";
import type { VectorTs } from "./vector_ts.ts";

/** Schema version in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 2;

/** One row once a dataset is imported (`imported_ms` 0 for files imported by schema 1). */
const CREATE_DATASET = `CREATE TABLE IF NOT EXISTS dataset(
  id INTEGER PRIMARY KEY CHECK (id = 1), imported_ms INTEGER NOT NULL);`;

/**
 * The replica file's schema. Version 1 used `user_version` itself to mean "a dataset was
 * imported" (0 = tables only, 1 = imported); version 2 keeps that in the `dataset` row, so a
 * version 0 file gets its tables (all `IF NOT EXISTS`) and no row, and a version 1 file gets
 * the row.
 */
const SCHEMA: SqliteSchema = {
  version: SCHEMA_VERSION,
  create: `
    CREATE TABLE IF NOT EXISTS movies(
      movie_id INTEGER PRIMARY KEY, title TEXT NOT NULL, genres TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS ratings(
      user_id INTEGER NOT NULL, movie_id INTEGER NOT NULL, rating REAL,
      timestamp INTEGER NOT NULL, vsum INTEGER NOT NULL DEFAULT 0,
      vuid TEXT NOT NULL DEFAULT '', PRIMARY KEY(user_id, movie_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS log(
      origin TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
      PRIMARY KEY(origin, seq)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS executed(uid TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    ${CREATE_DATASET}`,
  upgrades: {
    1: `${CREATE_DATASET} INSERT INTO dataset(id, imported_ms) VALUES (1, 0);`,
  },
};

/** What a replica reloads at start. */
export interface StoredReplica {
  /** Movies and ratings. */
  state: RatingsState;
  /** Log records, in (origin, seq) order. */
  log: LogRecord[];
  /** Saved timestamps (`value`, `replica`, `table.<rm>`). */
  meta: Map<string, VectorTs>;
}

/** One replica's database. */
export class ReplicaStore {
  readonly path: string;
  #db: DatabaseSync;
  #upsertCell: StatementSync;
  #insertLog: StatementSync;
  #deleteLog: StatementSync;
  #insertExecuted: StatementSync;
  #hasExecuted: StatementSync;
  #putMeta: StatementSync;
  #dirtyCells = new Map<string, Cell>();
  #newLog: LogRecord[] = [];
  #goneLog: LogRecord[] = [];
  #newExecuted = new Set<string>();
  #meta = new Map<string, VectorTs>();
  #closed = false;

  constructor(path: string) {
    this.path = path;
    this.#db = openSqlite(path, { schema: SCHEMA });
    this.#upsertCell = this.#db.prepare(
      `INSERT INTO ratings(user_id, movie_id, rating, timestamp, vsum, vuid) VALUES (?,?,?,?,?,?)
       ON CONFLICT(user_id, movie_id) DO UPDATE SET rating=excluded.rating,
       timestamp=excluded.timestamp, vsum=excluded.vsum, vuid=excluded.vuid`,
    );
    this.#insertLog = this.#db.prepare(
      "INSERT OR REPLACE INTO log(origin, seq, record) VALUES (?,?,?)",
    );
    this.#deleteLog = this.#db.prepare("DELETE FROM log WHERE origin = ? AND seq = ?");
    this.#insertExecuted = this.#db.prepare("INSERT OR IGNORE INTO executed(uid) VALUES (?)");
    this.#hasExecuted = this.#db.prepare("SELECT 1 AS x FROM executed WHERE uid = ?");
    this.#putMeta = this.#db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)");
  }

  /** Whether the database has been initialised with a dataset. */
  get initialised(): boolean {
    return this.#db.prepare("SELECT 1 AS x FROM dataset WHERE id = 1").get() !== undefined;
  }

  /** Loads `data` in one transaction with prepared statements, marking it imported. */
  importDataset(data: Dataset): void {
    const insMovie = this.#db.prepare(
      "INSERT INTO movies(movie_id, title, genres) VALUES (?,?,?)",
    );
    const insRating = this.#db.prepare(
      "INSERT INTO ratings(user_id, movie_id, rating, timestamp, vsum, vuid) VALUES (?,?,?,?,0,'')",
    );
    this.#db.exec("BEGIN");
    try {
      this.#db.exec("DELETE FROM movies; DELETE FROM ratings;");
      for (const m of data.movies) insMovie.run(m.id, m.title, m.genres);
      for (const r of data.ratings) insRating.run(r.user, r.movie, r.rating, r.time);
      this.#db.prepare("INSERT OR REPLACE INTO dataset(id, imported_ms) VALUES (1, ?)")
        .run(Date.now());
      this.#db.exec("COMMIT");
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
  }

  /** Reads everything back into memory. */
  load(): StoredReplica {
    const state = new RatingsState();
    for (const row of this.#db.prepare("SELECT movie_id, title, genres FROM movies").all()) {
      state.movies.set(Number(row.movie_id), {
        id: Number(row.movie_id),
        title: String(row.title),
        genres: String(row.genres),
      });
    }
    const rows = this.#db.prepare(
      "SELECT user_id, movie_id, rating, timestamp, vsum, vuid FROM ratings",
    ).all();
    for (const row of rows) {
      state.load({
        user: Number(row.user_id),
        movie: Number(row.movie_id),
        rating: row.rating === null ? null : Number(row.rating),
        time: Number(row.timestamp),
        vsum: Number(row.vsum),
        vuid: String(row.vuid),
      });
    }
    const log = this.#db.prepare("SELECT record FROM log ORDER BY origin, seq").all()
      .map((row) => JSON.parse(String(row.record)) as LogRecord);
    const meta = new Map<string, VectorTs>();
    for (const row of this.#db.prepare("SELECT key, value FROM meta").all()) {
      meta.set(String(row.key), JSON.parse(String(row.value)));
    }
    return { state, log, meta };
  }

  /** Queues a changed cell. */
  cellChanged(cell: Cell): void {
    this.#dirtyCells.set(`${cell.user}:${cell.movie}`, cell);
  }

  /** Queues a new log record. */
  logAdded(record: LogRecord): void {
    this.#newLog.push(record);
  }

  /** Queues removed (garbage-collected) log records. */
  logRemoved(records: LogRecord[]): void {
    this.#goneLog.push(...records);
  }

  /** Queues an executed update id. */
  executedAdded(uid: string): void {
    this.#newExecuted.add(uid);
  }

  /** Whether `uid` is in the executed table (or queued for it). */
  hasExecuted(uid: string): boolean {
    return this.#newExecuted.has(uid) || this.#hasExecuted.get(uid) !== undefined;
  }

  /** How many executed ids are stored. */
  executedCount(): number {
    const row = this.#db.prepare("SELECT count(*) AS n FROM executed").get() as { n: number };
    return Number(row.n) + this.#newExecuted.size;
  }

  /** Queues a timestamp to save under `key`. */
  setMeta(key: string, ts: VectorTs): void {
    this.#meta.set(key, { ...ts });
  }

  /** Whether anything waits to be written. */
  get dirty(): boolean {
    return this.#dirtyCells.size > 0 || this.#newLog.length > 0 || this.#goneLog.length > 0 ||
      this.#newExecuted.size > 0 || this.#meta.size > 0;
  }

  /** Writes everything queued in one transaction. */
  flush(): void {
    if (!this.dirty || this.#closed) return;
    this.#db.exec("BEGIN");
    try {
      for (const c of this.#dirtyCells.values()) {
        this.#upsertCell.run(c.user, c.movie, c.rating, c.time, c.vsum, c.vuid);
      }
      for (const r of this.#newLog) this.#insertLog.run(r.origin, seqOf(r), JSON.stringify(r));
      for (const r of this.#goneLog) this.#deleteLog.run(r.origin, seqOf(r));
      for (const uid of this.#newExecuted) this.#insertExecuted.run(uid);
      for (const [k, v] of this.#meta) this.#putMeta.run(k, JSON.stringify(v));
      this.#db.exec("COMMIT");
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
    this.#dirtyCells.clear();
    this.#newLog = [];
    this.#goneLog = [];
    this.#newExecuted.clear();
    this.#meta.clear();
  }

  /** SHA-256 (hex, first 16 bytes) of the live ratings table in key order. */
  async checksum(): Promise<{ checksum: string; ratings: number }> {
    const rows = this.#db.prepare(
      "SELECT user_id, movie_id, rating, timestamp FROM ratings WHERE rating IS NOT NULL " +
        "ORDER BY user_id, movie_id",
    ).all();
    const parts: string[] = [];
    for (const r of rows) {
      parts.push(`${r.user_id},${r.movie_id},${Number(r.rating).toFixed(1)},${r.timestamp}\n`);
    }
    const digest = await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(parts.join("")),
    );
    const hex = [...new Uint8Array(digest)].slice(0, 16)
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    return { checksum: hex, ratings: rows.length };
  }

  /** Flushes and closes. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    try {
      this.flush();
    } finally {
      this.#closed = true;
      this.#db.close();
    }
  }
}

/**
 * The delivered history of one node in SQLite (WAL, `PRAGMA user_version` 1): one row per
 * delivered message, by delivery index, plus a reserved block of own sequence numbers so
 * a restarted node never reuses a message id.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback } from "../storage/mod.ts";
import type { ChatMessage } from "./message.ts";

const SCHEMA_VERSION = 1;

/** Own sequence numbers reserved per write of the `next_seq` counter. */
export const SEQ_RESERVE_BLOCK = 10_000;

/** One delivered message with its delivery index (1-based, gap-free). */
export interface HistoryEntry extends ChatMessage {
  /** Position in this node's delivery order. */
  idx: number;
}

/**
 * A node's delivered history. Appends are one transaction per batch; `close()` is safe
 * to call twice.
 */
export class HistoryStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  #count: number;
  #reservedSeq: number;
  #closed = false;

  constructor(path: string) {
    this.#db = openSqlite(path, {
      pragmas: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
    });
    const db = this.#db;
    const version = Number(
      (db.prepare("PRAGMA user_version").get() as { user_version: number })
        .user_version,
    );
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new Error(`Cannot open ${path}: schema version ${version} is newer than this peerd`);
    }
    if (version < SCHEMA_VERSION) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS history (
          idx INTEGER PRIMARY KEY,
          id TEXT NOT NULL,
          sender TEXT NOT NULL,
          seq INTEGER NOT NULL,
          lamport INTEGER NOT NULL,
          body TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
    }
    this.#insert = db.prepare(
      "INSERT INTO history (idx, id, sender, seq, lamport, body) VALUES (?, ?, ?, ?, ?, ?)",
    );
    const row = db.prepare("SELECT COALESCE(MAX(idx), 0) AS n FROM history").get() as {
      n: number;
    };
    this.#count = Number(row.n);
    const meta = db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as
      | { value: number }
      | undefined;
    this.#reservedSeq = Number(meta?.value ?? 1);
  }

  /** Number of delivered messages stored (= index of the last one). */
  get count(): number {
    return this.#count;
  }

  /** The first own sequence number that is safe to use after a restart. */
  get reservedSeq(): number {
    return this.#reservedSeq;
  }

  /** Makes sure own sequence numbers below `seq` are covered by the reservation. */
  reserveSeq(seq: number): void {
    if (seq < this.#reservedSeq) return;
    this.#reservedSeq = seq + SEQ_RESERVE_BLOCK;
    this.#db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)")
      .run(this.#reservedSeq);
  }

  /** Appends delivered messages in one transaction; returns them with their indexes. */
  append(msgs: ChatMessage[]): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    if (msgs.length === 0) return out;
    this.#db.exec("BEGIN");
    try {
      let idx = this.#count;
      for (const m of msgs) {
        idx++;
        this.#insert.run(idx, m.id, m.from, m.seq, m.lamport, m.body);
        out.push({ ...m, idx });
      }
      this.#db.exec("COMMIT");
      this.#count = idx;
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
    return out;
  }

  /** Deletes entries after index `idx` (a rejoining node whose history diverged). */
  truncate(idx: number): void {
    this.#db.prepare("DELETE FROM history WHERE idx > ?").run(idx);
    this.#count = Math.min(this.#count, idx);
  }

  /** The id at index `idx`, if any. */
  idAt(idx: number): string | undefined {
    const row = this.#db.prepare("SELECT id FROM history WHERE idx = ?").get(idx) as
      | { id: string }
      | undefined;
    return row?.id;
  }

  /** Entries after index `after`, at most `limit`, in order. */
  since(after: number, limit = 1_000_000): HistoryEntry[] {
    const rows = this.#db.prepare(
      "SELECT idx, id, sender, seq, lamport, body FROM history WHERE idx > ? ORDER BY idx LIMIT ?",
    ).all(after, limit) as Array<Record<string, unknown>>;
    return rows.map(toEntry);
  }

  /** The last `n` entries, oldest first. */
  tail(n: number): HistoryEntry[] {
    return this.since(Math.max(0, this.#count - n), n);
  }

  /** Closes the database. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

function toEntry(r: Record<string, unknown>): HistoryEntry {
  return {
    idx: Number(r.idx),
    id: String(r.id),
    from: String(r.sender),
    seq: Number(r.seq),
    lamport: Number(r.lamport),
    body: String(r.body),
  };
}

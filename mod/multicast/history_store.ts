/**
 * The delivered history of one node in SQLite (WAL, `PRAGMA user_version` 2): one row per
 * delivered message, by delivery index, a reserved block of own sequence numbers so a
 * restarted node never reuses a message id, and the last view it installed (version 2).
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback, type SqliteSchema } from "../storage/mod.ts";
import type { ChatMessage } from "./message.ts";

const SCHEMA_VERSION = 2;

/** Own sequence numbers reserved per write of the `next_seq` counter. */
export const SEQ_RESERVE_BLOCK = 10_000;

/** One delivered message with its delivery index (1-based, gap-free). */
export interface HistoryEntry extends ChatMessage {
  /** Position in this node's delivery order. */
  idx: number;
}

/**
 * A node's delivered history as the protocol core uses it: {@linkcode HistoryStore} keeps it
 * in SQLite, `MemoryHistory` in memory (tests, simulations). Methods may throw when the
 * storage fails; the core turns that into an event and stops delivering.
 */
export interface HistoryLog {
  /** Number of delivered messages stored (= index of the last one). */
  readonly count: number;
  /** The first own sequence number that is safe to use after a restart. */
  readonly reservedSeq: number;
  /** Makes sure own sequence numbers below `seq` are covered by the reservation. */
  reserveSeq(seq: number): void;
  /** Appends delivered messages atomically; returns them with their indexes. */
  append(msgs: ChatMessage[]): HistoryEntry[];
  /** Deletes entries after index `idx`. */
  truncate(idx: number): void;
  /** The id at index `idx`, if any. */
  idAt(idx: number): string | undefined;
  /** Entries after index `after`, at most `limit`, in order. */
  since(after: number, limit?: number): HistoryEntry[];
  /** The last `n` entries, oldest first. */
  tail(n: number): HistoryEntry[];
  /** The highest delivered sequence number per sender. */
  lastSeqs(): Record<string, number>;
  /** The last view this node installed (survives a restart), if any. */
  readonly lastView: StoredView | undefined;
  /** Records the view this node installs (before it acks it). */
  saveView(view: StoredView): void;
}

/** A view as stored: its number and members. */
export interface StoredView {
  /** View number. */
  num: number;
  /** Member names. */
  members: string[];
}

const CREATE_V2 = `
  CREATE TABLE history (
    idx INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    seq INTEGER NOT NULL,
    lamport INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  CREATE TABLE last_view (one INTEGER PRIMARY KEY CHECK (one = 1),
    num INTEGER NOT NULL, members TEXT NOT NULL);`;

/** The history file's schema: version 2 keeps the last installed view (`last_view`). */
const SCHEMA: SqliteSchema = {
  version: SCHEMA_VERSION,
  create: CREATE_V2,
  upgrades: {
    1: `CREATE TABLE IF NOT EXISTS last_view (one INTEGER PRIMARY KEY CHECK (one = 1),
          num INTEGER NOT NULL, members TEXT NOT NULL);`,
  },
};

/**
 * A node's delivered history. Appends are one transaction per batch; `close()` is safe
 * to call twice.
 */
export class HistoryStore implements HistoryLog {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  #count: number;
  #reservedSeq: number;
  #lastView: StoredView | undefined;
  #closed = false;

  constructor(path: string) {
    this.#db = openSqlite(path, {
      pragmas: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
      schema: SCHEMA,
    });
    const db = this.#db;
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
    const view = db.prepare("SELECT num, members FROM last_view WHERE one = 1").get() as
      | { num: number; members: string }
      | undefined;
    if (view) this.#lastView = { num: Number(view.num), members: JSON.parse(view.members) };
  }

  /** The last view this node installed, if any. */
  get lastView(): StoredView | undefined {
    return this.#lastView;
  }

  /** Records the view this node installs. */
  saveView(view: StoredView): void {
    this.#db.prepare("INSERT OR REPLACE INTO last_view (one, num, members) VALUES (1, ?, ?)")
      .run(view.num, JSON.stringify(view.members));
    this.#lastView = { num: view.num, members: view.members.slice() };
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

  /** The highest delivered sequence number per sender. */
  lastSeqs(): Record<string, number> {
    const rows = this.#db.prepare("SELECT sender, MAX(seq) AS seq FROM history GROUP BY sender")
      .all() as Array<{ sender: string; seq: number }>;
    return Object.fromEntries(rows.map((r) => [String(r.sender), Number(r.seq)]));
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

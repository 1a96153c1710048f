/**
 * The broker's SQLite file: catalogue (users, subscriptions, topics), per-daemon stream
 * state (dedupe of publications, delivery sequence, acknowledged point) and the outbox of
 * deliveries not yet acknowledged by their daemon. WAL mode, `PRAGMA user_version` = 1.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { BatchInsert } from "./batch_insert.ts";

const SCHEMA_VERSION = 1;

/** WAL pages after which a commit checkpoints by itself (64 MiB of 4 KiB pages). */
const WAL_AUTOCHECKPOINT_PAGES = 16_384;

/** One daemon's stream state as stored. */
export interface DaemonRow {
  /** Daemon name. */
  name: string;
  /** The daemon's incarnation (a new one when its data was wiped). */
  epoch: string;
  /** Highest publication seq accepted from it. */
  seen: number;
  /** Highest delivery seq assigned to it. */
  dseq: number;
  /** Highest delivery seq it acknowledged. */
  acked: number;
}

/** One stored delivery. */
export interface OutboxRow {
  /** Destination daemon. */
  daemon: string;
  /** Delivery seq (per destination daemon). */
  dseq: number;
  /** Message id (`<publisher daemon>:<seq>`). */
  id: string;
  /** Topic. */
  topic: string;
  /** Payload bytes. */
  payload: Uint8Array;
  /** Publishing user. */
  from: number;
  /** Recipient users on that daemon. */
  users: number[];
}

/** The broker's database. `close()` is safe to call twice. */
export class BrokerStore {
  readonly #db: DatabaseSync;
  readonly epoch: string;
  #closed = false;
  #insOutbox: BatchInsert;
  #selOutbox: StatementSync;
  #delOutbox: StatementSync;
  #upDaemon: StatementSync;
  #insTopic: StatementSync;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    const db = this.#db;
    // automatic checkpoints fsync inside a commit (10+ ms here): make them rare and run
    // them when idle instead (see `checkpoint()`)
    db.exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=2000; " +
        `PRAGMA wal_autocheckpoint=${WAL_AUTOCHECKPOINT_PAGES};`,
    );
    const version = Number(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
    if (version === 0) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS users(
          id INTEGER PRIMARY KEY AUTOINCREMENT, daemon TEXT NOT NULL, created_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS subs(
          user INTEGER NOT NULL, pattern TEXT NOT NULL, own INTEGER NOT NULL,
          PRIMARY KEY(user, pattern)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS topics(name TEXT PRIMARY KEY, first_ms INTEGER NOT NULL)
          WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS daemons(
          name TEXT PRIMARY KEY, epoch TEXT NOT NULL, seen INTEGER NOT NULL,
          dseq INTEGER NOT NULL, acked INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbox(
          daemon TEXT NOT NULL, dseq INTEGER NOT NULL, id TEXT NOT NULL, topic TEXT NOT NULL,
          payload BLOB NOT NULL, sender INTEGER NOT NULL, users TEXT NOT NULL,
          PRIMARY KEY(daemon, dseq)) WITHOUT ROWID;
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
    } else if (version !== SCHEMA_VERSION) {
      db.close();
      throw new Error(`Cannot open ${path}: schema version ${version}, expected ${SCHEMA_VERSION}`);
    }
    const row = db.prepare("SELECT value FROM meta WHERE key='epoch'").get() as
      | { value: string }
      | undefined;
    if (row) {
      this.epoch = row.value;
    } else {
      this.epoch = crypto.randomUUID();
      db.prepare("INSERT INTO meta(key, value) VALUES ('epoch', ?)").run(this.epoch);
    }
    this.#insOutbox = new BatchInsert(
      db,
      "INSERT INTO outbox(daemon, dseq, id, topic, payload, sender, users)",
      7,
    );
    this.#selOutbox = db.prepare(
      "SELECT dseq, id, topic, payload, sender, users FROM outbox WHERE daemon=? AND dseq>? " +
        "ORDER BY dseq LIMIT ?",
    );
    this.#delOutbox = db.prepare("DELETE FROM outbox WHERE daemon=? AND dseq<=?");
    this.#upDaemon = db.prepare(
      "INSERT INTO daemons(name, epoch, seen, dseq, acked) VALUES (?,?,?,?,?) " +
        "ON CONFLICT(name) DO UPDATE SET epoch=excluded.epoch, seen=excluded.seen, " +
        "dseq=excluded.dseq, acked=excluded.acked",
    );
    this.#insTopic = db.prepare("INSERT OR IGNORE INTO topics(name, first_ms) VALUES (?, ?)");
  }

  /** Every user with its daemon. */
  users(): Array<{ id: number; daemon: string }> {
    return this.#db.prepare("SELECT id, daemon FROM users ORDER BY id").all() as Array<
      { id: number; daemon: string }
    >;
  }

  /** Every subscription. */
  subs(): Array<{ user: number; pattern: string; own: number }> {
    return this.#db.prepare("SELECT user, pattern, own FROM subs").all() as Array<
      { user: number; pattern: string; own: number }
    >;
  }

  /** Every known topic name. */
  topics(): string[] {
    return (this.#db.prepare("SELECT name FROM topics").all() as Array<{ name: string }>).map((
      r,
    ) => r.name);
  }

  /** Every daemon's stream state. */
  daemons(): DaemonRow[] {
    return this.#db.prepare("SELECT name, epoch, seen, dseq, acked FROM daemons")
      .all() as unknown as Array<
        DaemonRow
      >;
  }

  /** Creates a user on `daemon`; returns its new id (ids are never reused). */
  createUser(daemon: string): number {
    const r = this.#db.prepare("INSERT INTO users(daemon, created_ms) VALUES (?, ?)").run(
      daemon,
      Date.now(),
    );
    return Number(r.lastInsertRowid);
  }

  /** Deletes a user and its subscriptions. */
  destroyUser(user: number): void {
    this.#tx(() => {
      this.#db.prepare("DELETE FROM subs WHERE user=?").run(user);
      this.#db.prepare("DELETE FROM users WHERE id=?").run(user);
    });
  }

  /** Stores a subscription (and the pattern as a topic). */
  addSub(user: number, pattern: string, own: boolean): void {
    this.#tx(() => {
      this.#db.prepare("INSERT INTO subs(user, pattern, own) VALUES (?,?,?)").run(
        user,
        pattern,
        own ? 1 : 0,
      );
      this.#insTopic.run(pattern, Date.now());
    });
  }

  /** Removes a subscription. */
  removeSub(user: number, pattern: string): void {
    this.#db.prepare("DELETE FROM subs WHERE user=? AND pattern=?").run(user, pattern);
  }

  /** Stores daemon stream state (upsert). */
  saveDaemon(d: DaemonRow): void {
    this.#upDaemon.run(d.name, d.epoch, d.seen, d.dseq, d.acked);
  }

  /** Delivery numbers reserved per daemon (see `setReserved`). */
  reservations(): Map<string, number> {
    const rows = this.#db.prepare("SELECT key, value FROM meta WHERE key LIKE 'reserved:%'")
      .all() as Array<{ key: string; value: string }>;
    return new Map(rows.map((r) => [r.key.slice("reserved:".length), Number(r.value)]));
  }

  /** Stores that delivery numbers up to `dseq` may be in use for `daemon`. */
  setReserved(daemon: string, dseq: number): void {
    this.#db.prepare(
      "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    ).run(`reserved:${daemon}`, String(dseq));
  }

  /** Stored deliveries per daemon. */
  backlogs(): Map<string, number> {
    const rows = this.#db.prepare("SELECT daemon, COUNT(*) AS n FROM outbox GROUP BY daemon")
      .all() as Array<{ daemon: string; n: number }>;
    return new Map(rows.map((r) => [r.daemon, Number(r.n)]));
  }

  /** Writes one tick's work in one transaction; returns the deliveries deleted per daemon. */
  commit(
    rows: OutboxRow[],
    daemons: DaemonRow[],
    acks: Array<[string, number]>,
    newTopics: string[],
  ): Map<string, number> {
    const deleted = new Map<string, number>();
    this.#tx(() => {
      if (rows.length > 0) {
        this.#insOutbox.run(rows.map((r) => [
          r.daemon,
          r.dseq,
          r.id,
          r.topic,
          r.payload,
          r.from,
          r.users.length === 1 ? String(r.users[0]) : r.users.join(","),
        ]));
      }
      for (const [daemon, dseq] of acks) {
        deleted.set(daemon, Number(this.#delOutbox.run(daemon, dseq).changes));
      }
      for (const d of daemons) this.saveDaemon(d);
      const now = Date.now();
      for (const t of newTopics) this.#insTopic.run(t, now);
    });
    return deleted;
  }

  /** Reads up to `limit` stored deliveries for `daemon` after `after`. */
  outbox(daemon: string, after: number, limit: number): OutboxRow[] {
    const rows = this.#selOutbox.all(daemon, after, limit) as Array<{
      dseq: number;
      id: string;
      topic: string;
      payload: Uint8Array;
      sender: number;
      users: string;
    }>;
    return rows.map((r) => ({
      daemon,
      dseq: Number(r.dseq),
      id: r.id,
      topic: r.topic,
      payload: r.payload,
      from: Number(r.sender),
      users: r.users.split(",").map(Number),
    }));
  }

  /** Copies the WAL into the database file and truncates it (call when idle). */
  checkpoint(): void {
    this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /** Closes the database. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #tx(fn: () => void): void {
    this.#db.exec("BEGIN");
    try {
      fn();
      this.#db.exec("COMMIT");
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }
}

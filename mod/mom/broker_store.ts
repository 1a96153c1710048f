/**
 * The broker's SQLite file: catalogue (users, subscriptions, topics), per-daemon stream
 * state (dedupe of publications, delivery sequence, acknowledged point) and the outbox of
 * deliveries not yet acknowledged by their daemon, one segment row per daemon per commit
 * (see `segment.ts`). WAL mode, schema version 2 through `openSqlite`'s schema (a version
 * 1 file, one row per delivery, is converted when opened: upgrade step 1).
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback } from "../storage/mod.ts";
import {
  chunkSegments,
  countAfter,
  encodeSegment,
  scanSegments,
  type StoredSegment,
} from "./segment.ts";

const SCHEMA_VERSION = 2;

const OUTBOX_SEG_SCHEMA = `
  CREATE TABLE IF NOT EXISTS outbox_seg(
    id INTEGER PRIMARY KEY, daemon TEXT NOT NULL, first INTEGER NOT NULL,
    last INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);
  CREATE INDEX IF NOT EXISTS outbox_seg_daemon ON outbox_seg(daemon, first);
`;

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
  /** The publication's meta bytes (MQTT's QoS, retain, properties), if any. */
  meta?: Uint8Array;
}

/** A retained message (MQTT): the last retained publication of a topic. */
export interface RetainedRow {
  topic: string;
  id: string;
  payload: Uint8Array;
  from: number;
  meta: Uint8Array;
}

/** The current schema, created on an empty file. */
const CREATE_V2 = `
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
  ${OUTBOX_SEG_SCHEMA}
`;

/** Converts a version 1 file (one outbox row per delivery) to segments. */
function migrateFrom1(db: DatabaseSync): void {
  db.exec(OUTBOX_SEG_SCHEMA);
  const insSeg = db.prepare(
    "INSERT INTO outbox_seg(daemon, first, last, n, data) VALUES (?, ?, ?, ?, ?)",
  );
  const old = db.prepare(
    "SELECT daemon, dseq, id, topic, payload, sender, users FROM outbox ORDER BY daemon, dseq",
  ).all() as Array<{
    daemon: string;
    dseq: number;
    id: string;
    topic: string;
    payload: Uint8Array;
    sender: number;
    users: string;
  }>;
  const byDaemon = new Map<string, OutboxRow[]>();
  for (const r of old) {
    const row: OutboxRow = {
      daemon: r.daemon,
      dseq: Number(r.dseq),
      id: r.id,
      topic: r.topic,
      payload: r.payload,
      from: Number(r.sender),
      users: r.users.split(",").map(Number),
    };
    const list = byDaemon.get(r.daemon);
    if (list) list.push(row);
    else byDaemon.set(r.daemon, [row]);
  }
  for (const [daemon, list] of byDaemon) insertSegments(insSeg, daemon, list);
  db.exec("DROP TABLE outbox");
}

/** Writes `rows` (one daemon's, in dseq order) as segments. */
function insertSegments(ins: StatementSync, daemon: string, rows: OutboxRow[]): void {
  for (const chunk of chunkSegments(rows)) {
    const data = encodeSegment(
      chunk.map((r) =>
        r.meta === undefined
          ? [r.dseq, r.id, r.topic, r.payload, r.from, r.users]
          : [r.dseq, r.id, r.topic, r.payload, r.from, r.users, r.meta]
      ),
    );
    ins.run(daemon, chunk[0].dseq, chunk[chunk.length - 1].dseq, chunk.length, data);
  }
}

/** The broker's database. `close()` is safe to call twice. */
export class BrokerStore {
  readonly #db: DatabaseSync;
  readonly epoch: string;
  #closed = false;
  #insSeg: StatementSync;
  #selSeg: StatementSync;
  #delOutbox: StatementSync;
  #upDaemon: StatementSync;
  #insTopic: StatementSync;

  constructor(path: string) {
    // automatic checkpoints fsync inside a commit (10+ ms here): make them rare and run
    // them when idle instead (see `checkpoint()`)
    this.#db = openSqlite(path, {
      pragmas: "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=2000; " +
        `PRAGMA wal_autocheckpoint=${WAL_AUTOCHECKPOINT_PAGES};`,
      schema: {
        version: SCHEMA_VERSION,
        create: CREATE_V2,
        // a version 1 file (one row per delivery) becomes segments
        upgrades: { 1: migrateFrom1 },
      },
    });
    const db = this.#db;
    const row = db.prepare("SELECT value FROM meta WHERE key='epoch'").get() as
      | { value: string }
      | undefined;
    if (row) {
      this.epoch = row.value;
    } else {
      this.epoch = crypto.randomUUID();
      db.prepare("INSERT INTO meta(key, value) VALUES ('epoch', ?)").run(this.epoch);
    }
    this.#insSeg = db.prepare(
      "INSERT INTO outbox_seg(daemon, first, last, n, data) VALUES (?, ?, ?, ?, ?)",
    );
    // the segment holding `after + 1` and the ones after it (first and last both grow)
    this.#selSeg = db.prepare(
      "SELECT last, data FROM outbox_seg WHERE daemon=? AND first >= " +
        "COALESCE((SELECT MAX(first) FROM outbox_seg WHERE daemon=? AND first <= ?), 0) " +
        "ORDER BY first LIMIT ?",
    );
    this.#delOutbox = db.prepare("DELETE FROM outbox_seg WHERE daemon=? AND last<=?");
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

  /** Stored deliveries to `daemon` after `acked` (its backlog). */
  backlog(daemon: string, acked: number): number {
    // whole segments count by their `n`; only one partly acknowledged is read
    const whole = this.#db.prepare(
      "SELECT COALESCE(SUM(n), 0) AS n FROM outbox_seg WHERE daemon=? AND first>?",
    ).get(daemon, acked) as { n: number };
    const partial = this.#db.prepare(
      "SELECT last, data FROM outbox_seg WHERE daemon=? AND first<=? AND last>?",
    ).all(daemon, acked, acked) as unknown as StoredSegment[];
    return countAfter(Number(whole.n), partial, acked);
  }

  /**
   * Writes one tick's work in one transaction: the new deliveries (one segment per daemon),
   * deletions of acknowledged ones (`acks`: daemon → dseq), daemon states and new topics.
   */
  commit(
    rows: OutboxRow[],
    daemons: DaemonRow[],
    acks: Array<[string, number]>,
    newTopics: string[],
  ): void {
    this.#tx(() => {
      if (rows.length > 0) {
        const byDaemon = new Map<string, OutboxRow[]>();
        for (const r of rows) {
          const list = byDaemon.get(r.daemon);
          if (list) list.push(r);
          else byDaemon.set(r.daemon, [r]);
        }
        for (const [daemon, list] of byDaemon) this.#insertSegments(daemon, list);
      }
      for (const [daemon, dseq] of acks) this.#delOutbox.run(daemon, dseq);
      for (const d of daemons) this.saveDaemon(d);
      const now = Date.now();
      for (const t of newTopics) this.#insTopic.run(t, now);
    });
  }

  /**
   * Reads stored deliveries for `daemon` after `after`, in dseq order, at most `limit`.
   */
  outbox(daemon: string, after: number, limit: number): OutboxRow[] {
    const out: OutboxRow[] = [];
    const read = (from: number) =>
      this.#selSeg.all(daemon, daemon, from, 16) as unknown as StoredSegment[];
    scanSegments(read, after, () => out.length >= limit, (t) => {
      const dseq = Number(t[0]);
      if (dseq <= after) return;
      out.push({
        daemon,
        dseq,
        id: String(t[1]),
        topic: String(t[2]),
        payload: t[3] as Uint8Array,
        from: Number(t[4]),
        users: (t[5] as unknown[]).map(Number),
        ...(t[6] instanceof Uint8Array ? { meta: t[6] } : {}),
      });
    });
    return out;
  }

  #retainedTable(): void {
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS retained(topic TEXT PRIMARY KEY, id TEXT NOT NULL, " +
        "payload BLOB NOT NULL, sender INTEGER NOT NULL, meta BLOB NOT NULL) WITHOUT ROWID",
    );
  }

  /** Every retained message. */
  retained(): RetainedRow[] {
    this.#retainedTable();
    const rows = this.#db.prepare("SELECT topic, id, payload, sender, meta FROM retained")
      .all() as Array<
        { topic: string; id: string; payload: Uint8Array; sender: number; meta: Uint8Array }
      >;
    return rows.map((r) => ({
      topic: r.topic,
      id: r.id,
      payload: r.payload,
      from: Number(r.sender),
      meta: r.meta,
    }));
  }

  /** Sets the retained message of its topic (an empty payload clears it). */
  setRetained(r: RetainedRow): void {
    this.#retainedTable();
    if (r.payload.length === 0) {
      this.#db.prepare("DELETE FROM retained WHERE topic=?").run(r.topic);
    } else {
      this.#db.prepare(
        "INSERT OR REPLACE INTO retained(topic, id, payload, sender, meta) VALUES (?, ?, ?, ?, ?)",
      ).run(r.topic, r.id, r.payload, r.from, r.meta);
    }
  }

  #insertSegments(daemon: string, rows: OutboxRow[]): void {
    insertSegments(this.#insSeg, daemon, rows);
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
      rollback(this.#db);
      throw err;
    }
  }
}

/**
 * The daemon's SQLite file: local users, the outbox of publications not yet acknowledged
 * by the broker, the inbox of received publications not yet taken by their user, and the
 * stream positions (epoch, last delivery seq stored, next publication seq). WAL mode,
 * `PRAGMA user_version` = 1.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { BatchInsert } from "./batch_insert.ts";

const SCHEMA_VERSION = 1;

/** WAL pages after which a commit checkpoints by itself (64 MiB of 4 KiB pages). */
const WAL_AUTOCHECKPOINT_PAGES = 16_384;

/** A stored publication waiting for the broker's acknowledgement. */
export interface OutboxEntry {
  /** Publication seq (per daemon, never reused). */
  seq: number;
  /** Publishing user. */
  user: number;
  /** Topic. */
  topic: string;
  /** Payload. */
  payload: Uint8Array;
}

/** A received publication, stored once for all its local recipients. */
export interface Delivery {
  /** Local recipients. */
  users: number[];
  /** Message id (`<publisher daemon>:<seq>`). */
  id: string;
  /** Topic. */
  topic: string;
  /** Payload. */
  payload: Uint8Array;
  /** Publishing user. */
  from: number;
}

/** A received publication waiting in a user's inbox. */
export interface InboxEntry {
  /** Inbox position (increasing, never reused; `receive` acknowledges up to one). */
  seq: number;
  /** Message id (`<publisher daemon>:<seq>`). */
  id: string;
  /** Topic. */
  topic: string;
  /** Payload. */
  payload: Uint8Array;
  /** Publishing user. */
  from: number;
}

/** The daemon's database. `close()` is safe to call twice. */
export class DaemonStore {
  readonly #db: DatabaseSync;
  readonly epoch: string;
  #closed = false;
  #insOut: BatchInsert;
  #delOut: StatementSync;
  #selOut: StatementSync;
  #insMsg: BatchInsert;
  #insRef: BatchInsert;
  #gc: StatementSync;
  #minIn: StatementSync;
  #upSeen: StatementSync;
  #nextN: number;
  #selIn: StatementSync;
  #delIn: StatementSync;
  #setMeta: StatementSync;

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
        CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS outbox(
          seq INTEGER PRIMARY KEY, user INTEGER NOT NULL, topic TEXT NOT NULL,
          payload BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS inbox_msg(
          n INTEGER PRIMARY KEY, id TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,
          sender INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS inbox(
          user INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(user, n)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS seen_from(daemon TEXT PRIMARY KEY, seq INTEGER NOT NULL)
          WITHOUT ROWID;
        PRAGMA user_version = ${SCHEMA_VERSION};
      `);
    } else if (version !== SCHEMA_VERSION) {
      db.close();
      throw new Error(`Cannot open ${path}: schema version ${version}, expected ${SCHEMA_VERSION}`);
    }
    this.#setMeta = db.prepare(
      "INSERT INTO meta(key, value) VALUES (?, ?) " +
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    );
    const epoch = this.meta("epoch");
    if (epoch) {
      this.epoch = epoch;
    } else {
      this.epoch = crypto.randomUUID();
      this.#setMeta.run("epoch", this.epoch);
      // a new incarnation numbers its publications after any earlier one's (µs clock), so
      // receivers that dedupe by (daemon, seq) never mistake them for old ones
      this.#setMeta.run("seq_reserved", String(Date.now() * 1000));
    }
    this.#insOut = new BatchInsert(db, "INSERT INTO outbox(seq, user, topic, payload)", 4);
    this.#delOut = db.prepare("DELETE FROM outbox WHERE seq<=?");
    this.#selOut = db.prepare(
      "SELECT seq, user, topic, payload FROM outbox WHERE seq>? ORDER BY seq LIMIT ?",
    );
    this.#insMsg = new BatchInsert(db, "INSERT INTO inbox_msg(n, id, topic, payload, sender)", 5);
    this.#insRef = new BatchInsert(db, "INSERT INTO inbox(user, n)", 2);
    this.#selIn = db.prepare(
      "SELECT m.n AS n, m.id AS id, m.topic AS topic, m.payload AS payload, m.sender AS sender " +
        "FROM inbox r JOIN inbox_msg m ON m.n = r.n WHERE r.user=? AND r.n>? ORDER BY r.n LIMIT ?",
    );
    this.#delIn = db.prepare("DELETE FROM inbox WHERE user=? AND n<=?");
    this.#upSeen = db.prepare(
      "INSERT INTO seen_from(daemon, seq) VALUES (?, ?) " +
        "ON CONFLICT(daemon) DO UPDATE SET seq=excluded.seq",
    );
    // (an index on inbox(n) cost a B-tree update per reference; the oldest untaken position
    // is found per user instead, through the primary key)
    db.exec("DROP INDEX IF EXISTS inbox_n");
    this.#minIn = db.prepare("SELECT MIN(n) AS m FROM inbox WHERE user=?");
    this.#gc = db.prepare("DELETE FROM inbox_msg WHERE n < ?");
    const maxN = db.prepare("SELECT MAX(n) AS m FROM inbox_msg").get() as { m: number | null };
    this.#nextN = Math.max(Number(maxN.m ?? 0), Number(this.meta("inbox_n") ?? 0)) + 1;
  }

  /** Reads a meta value. */
  meta(key: string): string | undefined {
    const row = this.#db.prepare("SELECT value FROM meta WHERE key=?").get(key) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  /** Writes meta values in one transaction. */
  setMeta(values: Record<string, string | number>): void {
    this.#tx(() => {
      for (const [k, v] of Object.entries(values)) this.#setMeta.run(k, String(v));
    });
  }

  /** The highest publication seq ever assigned (0 when none). */
  lastSeq(): number {
    const m = Number(this.meta("last_seq") ?? 0);
    const row = this.#db.prepare("SELECT MAX(seq) AS m FROM outbox").get() as { m: number | null };
    return Math.max(m, Number(row.m ?? 0));
  }

  /** The local users. */
  users(): number[] {
    return (this.#db.prepare("SELECT id FROM users ORDER BY id").all() as Array<{ id: number }>)
      .map((r) => Number(r.id));
  }

  /** Adds a local user. */
  addUser(id: number): void {
    this.#db.prepare("INSERT OR IGNORE INTO users(id, created_ms) VALUES (?, ?)").run(
      id,
      Date.now(),
    );
  }

  /** Removes a local user and its inbox. */
  removeUser(id: number): void {
    this.#tx(() => {
      this.#db.prepare("DELETE FROM users WHERE id=?").run(id);
      this.#db.prepare("DELETE FROM inbox WHERE user=?").run(id);
    });
    this.collect(this.users());
  }

  /**
   * Writes one tick's work in one transaction: new publications, deliveries into inboxes,
   * the outbox acknowledged up to `pubAcked`, inbox entries users acknowledged
   * (`inboxAcks`: user → position), positions, and (with `collect`) the garbage collection
   * of messages every one of `collect` (the local users) has taken. Returns the inbox position given to the first of
   * `incoming` (the others follow in order), or 0 when there is none.
   */
  commit(
    outgoing: OutboxEntry[],
    incoming: Delivery[],
    pubAcked: number,
    positions: Record<string, number>,
    seenFrom: Map<string, number> = new Map(),
    inboxAcks: Map<number, number> = new Map(),
    collect?: Iterable<number>,
  ): number {
    const first = incoming.length > 0 ? this.#nextN : 0;
    if (incoming.length > 0) {
      // inbox positions are never reused, even after every message was taken
      positions.inbox_n = this.#nextN + incoming.length - 1;
    }
    this.#tx(() => {
      if (outgoing.length > 0) {
        this.#insOut.run(outgoing.map((e) => [e.seq, e.user, e.topic, e.payload]));
      }
      if (incoming.length > 0) {
        const refs: number[][] = [];
        const msgs = incoming.map((e) => {
          const n = this.#nextN++;
          for (const u of e.users) refs.push([u, n]);
          return [n, e.id, e.topic, e.payload, e.from];
        });
        this.#insMsg.run(msgs);
        this.#insRef.run(refs);
      }
      if (pubAcked > 0) this.#delOut.run(pubAcked);
      for (const [user, upTo] of inboxAcks) this.#delIn.run(user, upTo);
      if (collect) this.#gc.run(this.#oldestUntaken(collect));
      for (const [k, v] of Object.entries(positions)) this.#setMeta.run(k, String(v));
      for (const [daemon, seq] of seenFrom) this.#upSeen.run(daemon, seq);
    });
    return first;
  }

  /** Highest publication seq stored per publishing daemon. */
  seenFrom(): Map<string, number> {
    const rows = this.#db.prepare("SELECT daemon, seq FROM seen_from").all() as Array<
      { daemon: string; seq: number }
    >;
    return new Map(rows.map((r) => [r.daemon, Number(r.seq)]));
  }

  /** Reads up to `limit` outbox entries after `after`. */
  outbox(after: number, limit: number): OutboxEntry[] {
    return (this.#selOut.all(after, limit) as Array<
      { seq: number; user: number; topic: string; payload: Uint8Array }
    >).map((r) => ({
      seq: Number(r.seq),
      user: Number(r.user),
      topic: r.topic,
      payload: r.payload,
    }));
  }

  /** Number of stored publications after `after` (not yet acknowledged by the broker). */
  outboxSize(after = 0): number {
    return Number(
      (this.#db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE seq>?").get(after) as {
        n: number;
      }).n,
    );
  }

  /** Deletes `user`'s inbox entries up to `upTo` (its acknowledgement). */
  ack(user: number, upTo: number): void {
    if (upTo > 0) this.#delIn.run(user, upTo);
  }

  /** Reads up to `limit` of `user`'s inbox entries after position `after`. */
  select(user: number, after: number, limit: number): InboxEntry[] {
    if (limit <= 0) return [];
    return (this.#selIn.all(user, after, limit) as Array<
      { n: number; id: string; topic: string; payload: Uint8Array; sender: number }
    >).map((r) => ({
      seq: Number(r.n),
      id: r.id,
      topic: r.topic,
      payload: r.payload,
      from: Number(r.sender),
    }));
  }

  /** Deletes stored messages older than every user's (`users`) oldest untaken one. */
  collect(users: Iterable<number>): void {
    this.#gc.run(this.#oldestUntaken(users));
  }

  #oldestUntaken(users: Iterable<number>): number {
    let oldest = this.#nextN;
    for (const user of users) {
      const m = (this.#minIn.get(user) as { m: number | null }).m;
      if (m !== null && Number(m) < oldest) oldest = Number(m);
    }
    return oldest;
  }

  /** Inbox sizes by user. */
  inboxSizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (
      const r of this.#db.prepare("SELECT user, COUNT(*) AS n FROM inbox GROUP BY user")
        .all() as Array<{ user: number; n: number }>
    ) out[String(r.user)] = Number(r.n);
    return out;
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

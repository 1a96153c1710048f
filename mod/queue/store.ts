/**
 * The queue engine's SQLite store: declarations of durable exchanges, queues and
 * bindings, and persistent messages of durable queues. Message inserts and deletes are
 * batched into one transaction per event-loop tick ({@linkcode QueueStore.commit});
 * publisher confirms are sent only after that commit.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, type SqliteSchema } from "../storage/mod.ts";

const SCHEMA_VERSION = 3;

/** A durable exchange as stored. */
export interface StoredExchange {
  name: string;
  type: string;
  autoDelete: boolean;
  /** Clients may not publish to it (schema 3). @default {false} */
  internal?: boolean;
}

/** A durable queue as stored. */
export interface StoredQueue {
  name: string;
  autoDelete: boolean;
  maxLength: number;
  /** Message TTL, expiry and dead-letter settings as JSON (schema 2; `{}` when none). */
  args?: string;
}

/** A binding as stored. */
export interface StoredBinding {
  queue: string;
  exchange: string;
  key: string;
}

/** A persistent message as stored. */
export interface StoredMessage {
  id: number;
  queue: string;
  exchange: string;
  key: string;
  body: Uint8Array;
  props: string;
  redelivered: boolean;
  /** Wall-clock ms after which it expires (0 = never; schema 2). */
  expiresAt?: number;
}

/** Options of {@linkcode QueueStore.open}. */
export interface QueueStoreOptions {
  /** SQLite `synchronous`: NORMAL survives a process kill, FULL also a power loss. @default {"NORMAL"} */
  synchronous?: "NORMAL" | "FULL";
}

const CREATE = `
  CREATE TABLE exchanges (name TEXT PRIMARY KEY, type TEXT NOT NULL, auto_delete INTEGER NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE queues (name TEXT PRIMARY KEY, auto_delete INTEGER NOT NULL,
    max_length INTEGER NOT NULL, args TEXT NOT NULL DEFAULT '{}');
  CREATE TABLE bindings (queue TEXT NOT NULL, exchange TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (queue, exchange, key));
  CREATE TABLE messages (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, exchange TEXT NOT NULL,
    key TEXT NOT NULL, body BLOB NOT NULL, props TEXT NOT NULL, redelivered INTEGER NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE delivered (queue TEXT PRIMARY KEY, max_id INTEGER NOT NULL);`;

/**
 * The queue file's schema: version 2 added queue arguments (TTL, expiry, dead-lettering);
 * version 3 the exchange `internal` flag and each queue's delivery mark (`delivered`).
 */
const SCHEMA: SqliteSchema = {
  version: SCHEMA_VERSION,
  create: CREATE,
  upgrades: {
    1: `ALTER TABLE queues ADD COLUMN args TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;`,
    2: `ALTER TABLE exchanges ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE delivered (queue TEXT PRIMARY KEY, max_id INTEGER NOT NULL);`,
  },
};

/**
 * One SQLite file per node (WAL mode, schema in `PRAGMA user_version` through
 * `openSqlite`'s schema). Declarations are
 * written at once (autocommit); messages go through {@linkcode insert}/{@linkcode remove}
 * and are written by the next {@linkcode commit}. An insert removed before its commit is
 * never written.
 *
 * Deliveries are not written one by one: a queue hands out its messages oldest first, so
 * each queue keeps one mark, the highest message id it has delivered
 * ({@linkcode markDelivered}); after a crash every stored message at or below its queue's
 * mark comes back flagged redelivered.
 */
export class QueueStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #redeliver: StatementSync;
  readonly #deliveredMark: StatementSync;
  #nextId = 1;
  #inserts = new Map<number, StoredMessage>();
  #deletes: number[] = [];
  #redelivered: number[] = [];
  #delivered = new Map<string, number>();
  #closed = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insert = db.prepare(
      "INSERT INTO messages (id, queue, exchange, key, body, props, redelivered, expires_at) VALUES (?,?,?,?,?,?,?,?)",
    );
    this.#delete = db.prepare("DELETE FROM messages WHERE id = ?");
    this.#redeliver = db.prepare("UPDATE messages SET redelivered = 1 WHERE id = ?");
    this.#deliveredMark = db.prepare(
      "INSERT INTO delivered (queue, max_id) VALUES (?, ?) ON CONFLICT (queue) DO UPDATE SET max_id = MAX(max_id, excluded.max_id)",
    );
    const row = db.prepare("SELECT MAX(id) AS m FROM messages").get() as { m: number | null };
    this.#nextId = (row.m ?? 0) + 1;
  }

  /** Opens (creating) `path`; throws if the schema is from a newer version. */
  static open(path: string, options: QueueStoreOptions = {}): QueueStore {
    const db = openSqlite(path, {
      pragmas: `PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous ?? "NORMAL"}`,
      schema: SCHEMA,
    });
    try {
      return new QueueStore(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Durable exchanges. */
  exchanges(): StoredExchange[] {
    return (this.#db.prepare("SELECT name, type, auto_delete, internal FROM exchanges")
      .all() as Array<{ name: string; type: string; auto_delete: number; internal: number }>)
      .map((r) => ({
        name: r.name,
        type: r.type,
        autoDelete: r.auto_delete === 1,
        internal: r.internal === 1,
      }));
  }

  /** Durable queues. */
  queues(): StoredQueue[] {
    return (this.#db.prepare("SELECT name, auto_delete, max_length, args FROM queues")
      .all() as Array<
        { name: string; auto_delete: number; max_length: number; args: string }
      >).map((r) => ({
        name: r.name,
        autoDelete: r.auto_delete === 1,
        maxLength: r.max_length,
        args: r.args,
      }));
  }

  /** Bindings between durable queues and durable exchanges. */
  bindings(): StoredBinding[] {
    return this.#db.prepare("SELECT queue, exchange, key FROM bindings")
      .all() as unknown as StoredBinding[];
  }

  /** Every stored message, oldest first; redelivered when flagged or at or below its queue's delivery mark. */
  messages(): StoredMessage[] {
    return (this.#db.prepare(
      `SELECT id, m.queue AS queue, exchange, key, body, props,
         (redelivered = 1 OR id <= COALESCE(d.max_id, 0)) AS redelivered, expires_at
       FROM messages m LEFT JOIN delivered d ON d.queue = m.queue ORDER BY id`,
    ).all() as Array<Record<string, unknown>>).map((r) => ({
      id: Number(r.id),
      queue: String(r.queue),
      exchange: String(r.exchange),
      key: String(r.key),
      body: r.body as Uint8Array,
      props: String(r.props),
      redelivered: r.redelivered === 1,
      expiresAt: Number(r.expires_at ?? 0),
    }));
  }

  /** Stores a durable exchange now. */
  putExchange(e: StoredExchange): void {
    this.#db.prepare(
      "INSERT OR REPLACE INTO exchanges (name, type, auto_delete, internal) VALUES (?,?,?,?)",
    ).run(e.name, e.type, e.autoDelete ? 1 : 0, e.internal ? 1 : 0);
  }

  /** Removes an exchange and its bindings now. */
  deleteExchange(name: string): void {
    this.#db.prepare("DELETE FROM exchanges WHERE name = ?").run(name);
    this.#db.prepare("DELETE FROM bindings WHERE exchange = ?").run(name);
  }

  /** Stores a durable queue now. */
  putQueue(q: StoredQueue): void {
    this.#db.prepare(
      "INSERT OR REPLACE INTO queues (name, auto_delete, max_length, args) VALUES (?,?,?,?)",
    ).run(q.name, q.autoDelete ? 1 : 0, q.maxLength, q.args ?? "{}");
  }

  /** Removes a queue, its bindings and its messages now (pending inserts included). */
  deleteQueue(name: string): void {
    this.purgeQueue(name);
    this.#db.prepare("DELETE FROM queues WHERE name = ?").run(name);
    this.#db.prepare("DELETE FROM delivered WHERE queue = ?").run(name);
    this.#delivered.delete(name);
    this.#db.prepare("DELETE FROM bindings WHERE queue = ?").run(name);
  }

  /** Removes every message of a queue now (pending inserts included). */
  purgeQueue(name: string): void {
    for (const [id, m] of this.#inserts) if (m.queue === name) this.#inserts.delete(id);
    this.#db.prepare("DELETE FROM messages WHERE queue = ?").run(name);
  }

  /** Stores a binding now. */
  putBinding(b: StoredBinding): void {
    this.#db.prepare("INSERT OR IGNORE INTO bindings (queue, exchange, key) VALUES (?,?,?)")
      .run(b.queue, b.exchange, b.key);
  }

  /** Removes a binding now. */
  deleteBinding(b: StoredBinding): void {
    this.#db.prepare("DELETE FROM bindings WHERE queue = ? AND exchange = ? AND key = ?")
      .run(b.queue, b.exchange, b.key);
  }

  /** Queues a message insert for the next commit; returns its id. */
  insert(m: Omit<StoredMessage, "id">): number {
    const id = this.#nextId++;
    this.#inserts.set(id, { ...m, id });
    return id;
  }

  /** Queues the delete of message `id` (cancels a pending insert). */
  remove(id: number): void {
    if (this.#inserts.delete(id)) return;
    this.#deletes.push(id);
  }

  /** Queues marking message `id` redelivered. */
  markRedelivered(id: number): void {
    const pending = this.#inserts.get(id);
    if (pending) pending.redelivered = true;
    else this.#redelivered.push(id);
  }

  /** Queues raising `queue`'s delivery mark to message `id` (a stored message was handed out). */
  markDelivered(queue: string, id: number): void {
    const had = this.#delivered.get(queue);
    if (had === undefined || id > had) this.#delivered.set(queue, id);
  }

  /** Whether a commit has work to do. */
  get dirty(): boolean {
    return this.#inserts.size > 0 || this.#deletes.length > 0 || this.#redelivered.length > 0 ||
      this.#delivered.size > 0;
  }

  /** Writes every pending insert, delete and update in one transaction. */
  commit(): number {
    if (!this.dirty || this.#closed) return 0;
    const inserts = this.#inserts;
    const deletes = this.#deletes;
    const redelivered = this.#redelivered;
    const delivered = this.#delivered;
    this.#inserts = new Map();
    this.#deletes = [];
    this.#redelivered = [];
    this.#delivered = new Map();
    this.#db.exec("BEGIN");
    try {
      for (const m of inserts.values()) {
        this.#insert.run(
          m.id,
          m.queue,
          m.exchange,
          m.key,
          m.body,
          m.props,
          m.redelivered ? 1 : 0,
          m.expiresAt ?? 0,
        );
      }
      for (const id of deletes) this.#delete.run(id);
      for (const id of redelivered) this.#redeliver.run(id);
      for (const [queue, id] of delivered) this.#deliveredMark.run(queue, id);
      this.#db.exec("COMMIT");
    } catch (err) {
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // no transaction left
      }
      throw err;
    }
    return inserts.size + deletes.length + redelivered.length + delivered.size;
  }

  /** Commits what is pending and closes the database (safe twice). */
  close(): void {
    if (this.#closed) return;
    try {
      this.commit();
    } finally {
      this.#closed = true;
      this.#db.close();
    }
  }
}

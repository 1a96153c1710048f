/**
 * The daemon's SQLite file: local users, the outbox of publications not yet acknowledged
 * by the broker, the inbox of received publications not yet taken by their users, what
 * each user has taken, and the stream positions (epoch, last delivery seq stored, next
 * publication seq). The outbox and the inbox are stored as segments, one row per commit
 * (see `segment.ts`). WAL mode, schema version 2 through `openSqlite`'s schema (a version
 * 1 file, one row per message, is converted when opened: upgrade step 1).
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback } from "../storage/mod.ts";
import {
  chunkSegments,
  countAfter,
  decodeSegment,
  encodeSegment,
  scanSegments,
  type StoredSegment,
} from "./segment.ts";

const SCHEMA_VERSION = 2;

/** Tables of version 2 besides those version 1 already had (meta, users, seen_from). */
const SEGMENT_SCHEMA = `
  CREATE TABLE IF NOT EXISTS outbox_seg(
    first INTEGER PRIMARY KEY, last INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS inbox_seg(
    first INTEGER PRIMARY KEY, last INTEGER NOT NULL, users TEXT NOT NULL, data BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS taken(user INTEGER PRIMARY KEY, upto INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS subs(
    user INTEGER NOT NULL, pattern TEXT NOT NULL, own INTEGER NOT NULL,
    PRIMARY KEY(user, pattern)) WITHOUT ROWID;
`;

/** Inbox segments one `collect()` looks at, at most. */
const COLLECT_SEGMENTS = 256;

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
  /** Whether this daemon delivered it to its own users (the broker then skips them). */
  local: boolean;
  /** Meta bytes routed with it (MQTT's QoS, retain, properties), if any. */
  meta?: Uint8Array;
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
  /** Meta bytes of the publication, if any. */
  meta?: Uint8Array;
  /**
   * Not stored: it takes its inbox position (which the daemon reserved on disk) and is
   * handed out from memory only (an at-most-once publication, MQTT QoS 0).
   */
  transient?: true;
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
  /** Meta bytes of the publication, if any. */
  meta?: Uint8Array;
}

/** The current schema, created on an empty file. */
const CREATE_V2 = `
  CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS seen_from(daemon TEXT PRIMARY KEY, seq INTEGER NOT NULL)
    WITHOUT ROWID;
  ${SEGMENT_SCHEMA}
  INSERT INTO meta(key, value) VALUES ('subs_synced', '1');
`;

/** Converts a version 1 file (one row per message) to segments. */
function migrateFrom1(db: DatabaseSync): void {
  db.exec(SEGMENT_SCHEMA);
  const insOut = db.prepare("INSERT INTO outbox_seg(first, last, n, data) VALUES (?, ?, ?, ?)");
  const insIn = db.prepare("INSERT INTO inbox_seg(first, last, users, data) VALUES (?, ?, ?, ?)");
  const upTaken = db.prepare(
    "INSERT INTO taken(user, upto) VALUES (?, ?) " +
      "ON CONFLICT(user) DO UPDATE SET upto=MAX(upto, excluded.upto)",
  );
  const setMeta = db.prepare(
    "INSERT INTO meta(key, value) VALUES (?, ?) " +
      "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
  );
  const out = (db.prepare("SELECT seq, user, topic, payload FROM outbox ORDER BY seq")
    .all() as Array<{ seq: number; user: number; topic: string; payload: Uint8Array }>)
    .map((r) => [Number(r.seq), Number(r.user), r.topic, r.payload, 0]);
  for (const chunk of chunkSegments(out)) {
    insOut.run(
      chunk[0][0] as number,
      chunk[chunk.length - 1][0] as number,
      chunk.length,
      encodeSegment(chunk),
    );
  }
  const msgs = (db.prepare(
    "SELECT m.n AS n, m.id AS id, m.topic AS topic, m.payload AS payload, " +
      "m.sender AS sender, group_concat(r.user) AS users " +
      "FROM inbox_msg m JOIN inbox r ON r.n = m.n GROUP BY m.n ORDER BY m.n",
  ).all() as Array<
    { n: number; id: string; topic: string; payload: Uint8Array; sender: number; users: string }
  >).map((r) => [
    Number(r.n),
    r.id,
    r.topic,
    r.payload,
    Number(r.sender),
    r.users.split(",").map(Number),
  ]);
  for (const chunk of chunkSegments(msgs)) {
    const users = new Set<number>();
    for (const t of chunk) for (const u of t[5] as number[]) users.add(u);
    insIn.run(
      chunk[0][0] as number,
      chunk[chunk.length - 1][0] as number,
      [...users].join(","),
      encodeSegment(chunk),
    );
  }
  // what a user has taken: everything before its oldest remaining entry
  const maxN = db.prepare("SELECT MAX(n) AS m FROM inbox_msg").get() as { m: number | null };
  const metaN = db.prepare("SELECT value FROM meta WHERE key='inbox_n'").get() as
    | { value: string }
    | undefined;
  const lastN = Math.max(Number(maxN.m ?? 0), Number(metaN?.value ?? 0));
  for (
    const r of db.prepare(
      "SELECT u.id AS user, (SELECT MIN(n) FROM inbox WHERE inbox.user = u.id) AS oldest " +
        "FROM users u",
    ).all() as Array<{ user: number; oldest: number | null }>
  ) {
    upTaken.run(Number(r.user), r.oldest === null ? lastN : Number(r.oldest) - 1);
  }
  setMeta.run("inbox_n", String(lastN));
  db.exec("DROP TABLE outbox; DROP TABLE inbox_msg; DROP TABLE inbox;");
}

/** The daemon's database. `close()` is safe to call twice. */
export class DaemonStore {
  readonly #db: DatabaseSync;
  readonly epoch: string;
  #closed = false;
  #insOut!: StatementSync;
  #delOut!: StatementSync;
  #selOut!: StatementSync;
  #insIn!: StatementSync;
  #selIn!: StatementSync;
  #oldestIn!: StatementSync;
  #inData!: StatementSync;
  #delIn!: StatementSync;
  #upTaken!: StatementSync;
  #upSeen!: StatementSync;
  #setMeta!: StatementSync;
  /** Inbox position up to which each local user has taken its entries. */
  readonly #taken = new Map<number, number>();
  #nextN: number;

  constructor(path: string) {
    // automatic checkpoints fsync inside a commit (10+ ms here): make them rare and run
    // them when idle instead (see `checkpoint()`)
    this.#db = openSqlite(path, {
      pragmas: "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=2000; " +
        `PRAGMA wal_autocheckpoint=${WAL_AUTOCHECKPOINT_PAGES};`,
      schema: {
        version: SCHEMA_VERSION,
        create: CREATE_V2,
        // a version 1 file (one row per message) becomes segments
        upgrades: { 1: migrateFrom1 },
      },
    });
    const db = this.#db;
    this.#prepare();
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
    const maxN = db.prepare("SELECT MAX(last) AS m FROM inbox_seg").get() as { m: number | null };
    // positions up to `inbox_reserved` may have been handed out before their commit
    this.#nextN = Math.max(
      Number(maxN.m ?? 0),
      Number(this.meta("inbox_n") ?? 0),
      Number(this.meta("inbox_reserved") ?? 0),
    ) + 1;
    for (
      const r of db.prepare("SELECT user, upto FROM taken").all() as Array<
        { user: number; upto: number }
      >
    ) this.#taken.set(Number(r.user), Number(r.upto));
  }

  #prepare(): void {
    const db = this.#db;
    this.#setMeta = db.prepare(
      "INSERT INTO meta(key, value) VALUES (?, ?) " +
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    );
    this.#insOut = db.prepare("INSERT INTO outbox_seg(first, last, n, data) VALUES (?, ?, ?, ?)");
    this.#delOut = db.prepare("DELETE FROM outbox_seg WHERE first<=? AND last<=?");
    // the segment holding `after + 1` and the ones after it (first and last both grow)
    const from = (table: string) =>
      `first >= COALESCE((SELECT MAX(first) FROM ${table} WHERE first <= ?), 0)`;
    this.#selOut = db.prepare(
      `SELECT last, data FROM outbox_seg WHERE ${from("outbox_seg")} ORDER BY first LIMIT ?`,
    );
    this.#insIn = db.prepare("INSERT INTO inbox_seg(first, last, users, data) VALUES (?, ?, ?, ?)");
    this.#selIn = db.prepare(
      `SELECT last, users, data FROM inbox_seg WHERE ${from("inbox_seg")} ORDER BY first LIMIT ?`,
    );
    this.#oldestIn = db.prepare(
      "SELECT first, last, users FROM inbox_seg ORDER BY first LIMIT ?",
    );
    this.#inData = db.prepare("SELECT data FROM inbox_seg WHERE first=?");
    this.#delIn = db.prepare("DELETE FROM inbox_seg WHERE first<=?");
    this.#upTaken = db.prepare(
      "INSERT INTO taken(user, upto) VALUES (?, ?) " +
        "ON CONFLICT(user) DO UPDATE SET upto=MAX(upto, excluded.upto)",
    );
    this.#upSeen = db.prepare(
      "INSERT INTO seen_from(daemon, seq) VALUES (?, ?) " +
        "ON CONFLICT(daemon) DO UPDATE SET seq=excluded.seq",
    );
  }

  /** The inbox position the next commit gives to its first delivery. */
  get nextPosition(): number {
    return this.#nextN;
  }

  /** Reads a meta value. */
  meta(key: string): string | undefined {
    const row = this.#db.prepare("SELECT value FROM meta WHERE key=?").get(key) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  /** Meta values whose key starts with `prefix`. */
  metaWithPrefix(prefix: string): Map<string, string> {
    const rows = this.#db.prepare(
      "SELECT key, value FROM meta WHERE key >= ? AND key < ? ORDER BY key",
    ).all(prefix, prefix + "\uffff") as Array<{ key: string; value: string }>;
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** Deletes meta values (one key, or every key starting with `prefix`). */
  deleteMeta(key: string, options: { prefix?: boolean } = {}): void {
    if (options.prefix) {
      this.#db.prepare("DELETE FROM meta WHERE key >= ? AND key < ?").run(key, key + "\uffff");
    } else {
      this.#db.prepare("DELETE FROM meta WHERE key = ?").run(key);
    }
  }

  /** Inbox position up to which `user` has taken its entries (undefined: no such user). */
  takenBy(user: number): number | undefined {
    return this.#taken.get(user);
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
    const row = this.#db.prepare("SELECT MAX(last) AS m FROM outbox_seg").get() as {
      m: number | null;
    };
    return Math.max(m, Number(row.m ?? 0));
  }

  /** The local users. */
  users(): number[] {
    return (this.#db.prepare("SELECT id FROM users ORDER BY id").all() as Array<{ id: number }>)
      .map((r) => Number(r.id));
  }

  /** Adds a local user: it takes the inbox entries stored from now on. */
  addUser(id: number): void {
    this.#tx(() => {
      this.#db.prepare("INSERT OR IGNORE INTO users(id, created_ms) VALUES (?, ?)").run(
        id,
        Date.now(),
      );
      if (!this.#taken.has(id)) {
        this.#taken.set(id, this.#nextN - 1);
        this.#upTaken.run(id, this.#nextN - 1);
      }
    });
  }

  /** Removes a local user, its subscriptions and its inbox. */
  removeUser(id: number): void {
    this.#tx(() => {
      this.#db.prepare("DELETE FROM users WHERE id=?").run(id);
      this.#db.prepare("DELETE FROM taken WHERE user=?").run(id);
      this.#db.prepare("DELETE FROM subs WHERE user=?").run(id);
    });
    this.#taken.delete(id);
    this.collect(this.users());
  }

  /** The local users' subscriptions (as the broker confirmed them). */
  subs(): Array<{ user: number; pattern: string; own: boolean }> {
    return (this.#db.prepare("SELECT user, pattern, own FROM subs").all() as Array<
      { user: number; pattern: string; own: number }
    >).map((r) => ({ user: Number(r.user), pattern: r.pattern, own: r.own === 1 }));
  }

  /** Stores a subscription of a local user. */
  addSub(user: number, pattern: string, own: boolean): void {
    this.#db.prepare("INSERT OR REPLACE INTO subs(user, pattern, own) VALUES (?, ?, ?)").run(
      user,
      pattern,
      own ? 1 : 0,
    );
  }

  /** Removes a subscription of a local user. */
  removeSub(user: number, pattern: string): void {
    this.#db.prepare("DELETE FROM subs WHERE user=? AND pattern=?").run(user, pattern);
  }

  /** Replaces `user`'s subscriptions (`own`: the patterns that deliver its own publications). */
  replaceSubs(user: number, patterns: string[], own: Set<string>): void {
    this.#tx(() => {
      this.#db.prepare("DELETE FROM subs WHERE user=?").run(user);
      for (const p of patterns) this.addSub(user, p, own.has(p));
    });
  }

  /**
   * Writes one tick's work in one transaction: new publications, deliveries into inboxes,
   * the outbox acknowledged up to `pubAcked`, inbox entries users acknowledged
   * (`inboxAcks`: user → position), positions, and (with `collect`) the garbage collection
   * of messages every one of `collect` (the local users) has taken. Returns the inbox
   * position given to the first of `incoming` (the others follow in order), or 0 when there
   * is none.
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
      for (const chunk of chunkSegments(outgoing)) {
        const data = encodeSegment(
          chunk.map((e) =>
            e.meta === undefined
              ? [e.seq, e.user, e.topic, e.payload, e.local ? 1 : 0]
              : [e.seq, e.user, e.topic, e.payload, e.local ? 1 : 0, e.meta]
          ),
        );
        this.#insOut.run(chunk[0].seq, chunk[chunk.length - 1].seq, chunk.length, data);
      }
      if (incoming.length > 0 && incoming.some((e) => e.transient)) {
        // transient deliveries take their positions but are not written
        const stored: Array<[number, Delivery]> = [];
        for (let i = 0; i < incoming.length; i++) {
          if (!incoming[i].transient) stored.push([this.#nextN + i, incoming[i]]);
        }
        for (const chunk of chunkSegments(stored)) {
          const users = new Set<number>();
          const data = encodeSegment(chunk.map(([n, e]) => {
            for (const u of e.users) users.add(u);
            return e.meta === undefined
              ? [n, e.id, e.topic, e.payload, e.from, e.users]
              : [n, e.id, e.topic, e.payload, e.from, e.users, e.meta];
          }));
          this.#insIn.run(chunk[0][0], chunk[chunk.length - 1][0], [...users].join(","), data);
        }
      } else if (incoming.length > 0) {
        let n = this.#nextN;
        for (const chunk of chunkSegments(incoming)) {
          const users = new Set<number>();
          const data = encodeSegment(chunk.map((e) => {
            for (const u of e.users) users.add(u);
            return e.meta === undefined
              ? [n++, e.id, e.topic, e.payload, e.from, e.users]
              : [n++, e.id, e.topic, e.payload, e.from, e.users, e.meta];
          }));
          this.#insIn.run(n - chunk.length, n - 1, [...users].join(","), data);
        }
      }
      if (pubAcked > 0) this.#delOut.run(pubAcked, pubAcked);
      for (const [user, upTo] of inboxAcks) {
        this.#upTaken.run(user, upTo);
        this.#noteTaken(user, upTo);
      }
      for (const [k, v] of Object.entries(positions)) this.#setMeta.run(k, String(v));
      for (const [daemon, seq] of seenFrom) this.#upSeen.run(daemon, seq);
      if (collect) this.#collect(collect);
    });
    this.#nextN += incoming.length;
    return first;
  }

  /**
   * Gives `count` inbox positions to transient deliveries without a transaction (the caller
   * reserved them on disk, see `inbox_reserved`); returns the first.
   */
  skipPositions(count: number): number {
    const first = this.#nextN;
    this.#nextN += count;
    return first;
  }

  /** Highest publication seq stored per publishing daemon. */
  seenFrom(): Map<string, number> {
    const rows = this.#db.prepare("SELECT daemon, seq FROM seen_from").all() as Array<
      { daemon: string; seq: number }
    >;
    return new Map(rows.map((r) => [r.daemon, Number(r.seq)]));
  }

  /**
   * Reads stored outbox entries after `after`, in seq order, at most `limit`.
   */
  outbox(after: number, limit: number): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    this.#scan(this.#selOut, after, () => out.length >= limit, (t) => {
      const seq = Number(t[0]);
      if (seq > after) {
        out.push({
          seq,
          user: Number(t[1]),
          topic: String(t[2]),
          payload: t[3] as Uint8Array,
          local: t[4] === 1,
          ...(t[5] instanceof Uint8Array ? { meta: t[5] } : {}),
        });
      }
    });
    return out;
  }

  /** Number of stored publications after `after` (not yet acknowledged by the broker). */
  outboxSize(after = 0): number {
    // whole segments count by their `n`; only one partly acknowledged is read
    const whole = this.#db.prepare(
      "SELECT COALESCE(SUM(n), 0) AS n FROM outbox_seg WHERE first>?",
    ).get(after) as { n: number };
    const partial = this.#db.prepare(
      "SELECT last, data FROM outbox_seg WHERE first<=? AND last>?",
    ).all(after, after) as unknown as StoredSegment[];
    return countAfter(Number(whole.n), partial, after);
  }

  /** Records that `user` took its inbox entries up to `upTo` (its acknowledgement). */
  ack(user: number, upTo: number): void {
    if (upTo <= (this.#taken.get(user) ?? 0)) return;
    this.#upTaken.run(user, upTo);
    this.#noteTaken(user, upTo);
  }

  /** Reads up to `limit` of `user`'s inbox entries after position `after`. */
  select(user: number, after: number, limit: number): InboxEntry[] {
    if (limit <= 0) return [];
    const from = Math.max(after, this.#taken.get(user) ?? 0);
    const out: InboxEntry[] = [];
    const mine = String(user);
    this.#scan(this.#selIn, from, () => out.length >= limit, (t) => {
      const n = Number(t[0]);
      if (n <= from || out.length >= limit || !(t[5] as unknown[]).includes(user)) return;
      const entry: InboxEntry = {
        seq: n,
        id: String(t[1]),
        topic: String(t[2]),
        payload: t[3] as Uint8Array,
        from: Number(t[4]),
      };
      if (t[6] instanceof Uint8Array) entry.meta = t[6];
      out.push(entry);
    }, (users) => users.split(",").includes(mine));
    return out;
  }

  /** Deletes stored messages every one of `users` (the local users) has taken. */
  collect(users: Iterable<number>): void {
    this.#tx(() => this.#collect(users));
  }

  /** Inbox sizes by user (entries not yet taken). */
  inboxSizes(): Record<string, number> {
    const counts = new Map<number, number>();
    let oldest = this.#nextN;
    for (const upTo of this.#taken.values()) oldest = Math.min(oldest, upTo);
    this.#scan(this.#selIn, oldest, () => false, (t) => {
      const n = Number(t[0]);
      for (const u of t[5] as unknown[]) {
        const user = Number(u);
        const upTo = this.#taken.get(user);
        if (upTo !== undefined && n > upTo) counts.set(user, (counts.get(user) ?? 0) + 1);
      }
    });
    const out: Record<string, number> = {};
    for (const [user, n] of counts) out[String(user)] = n;
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

  #noteTaken(user: number, upTo: number): void {
    if (upTo > (this.#taken.get(user) ?? 0)) this.#taken.set(user, upTo);
  }

  /** Visits stored tuples after `after` through a segment query (see `scanSegments`). */
  #scan(
    select: StatementSync,
    after: number,
    done: () => boolean,
    visit: (t: unknown[]) => void,
    wanted?: (users: string) => boolean,
  ): void {
    const read = (from: number) => select.all(from, 16) as unknown as StoredSegment[];
    scanSegments(read, after, done, visit, wanted);
  }

  /**
   * Deletes the oldest inbox segments whose entries every recipient still local has taken,
   * up to the first one with an entry still waiting (at most COLLECT_SEGMENTS per call).
   */
  #collect(users: Iterable<number>): void {
    const local = new Set(users);
    const segs = this.#oldestIn.all(COLLECT_SEGMENTS) as Array<
      { first: number; last: number; users: string }
    >;
    const waiting = (user: number, n: number) =>
      local.has(user) && n > (this.#taken.get(user) ?? Infinity);
    let upTo = 0;
    for (const seg of segs) {
      const last = Number(seg.last);
      if (seg.users.split(",").some((u) => waiting(Number(u), last))) {
        // some recipient has not taken the whole segment: look at its entries
        const row = this.#inData.get(seg.first) as { data: Uint8Array };
        const pending = decodeSegment(row.data).some((t) =>
          (t[5] as unknown[]).some((u) => waiting(Number(u), Number(t[0])))
        );
        if (pending) break;
      }
      upTo = last;
    }
    if (upTo > 0) this.#delIn.run(upTo);
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

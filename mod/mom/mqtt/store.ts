/**
 * The MQTT gateway's SQLite file (`mqtt.sqlite` beside the daemon's): which MOM user each
 * client identifier is, when its session expires, its subscriptions' MQTT options, and the
 * outgoing QoS 2 deliveries the client has received (PUBREC) but not completed. What must
 * be atomic with a publication (incoming QoS 2 packet ids) lives in the daemon's own file.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { openSqlite } from "../../storage/mod.ts";
import type { SessionSubscription } from "./session.ts";

/** A stored session. */
export interface StoredSession {
  clientId: string;
  user: number;
  /** Session expiry interval, seconds (0xFFFFFFFF: never). */
  expiry: number;
  /** When the last connection ended (ms since the epoch), or undefined while connected. */
  endedMs?: number;
}

/** The schema (version 1), created on an empty file. */
const CREATE_V1 = `
  CREATE TABLE IF NOT EXISTS sessions(
    client TEXT PRIMARY KEY, user INTEGER NOT NULL, expiry INTEGER NOT NULL, ended_ms INTEGER);
  CREATE TABLE IF NOT EXISTS subs(
    client TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL, options INTEGER NOT NULL,
    identifier INTEGER, PRIMARY KEY(client, filter)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS released(
    client TEXT NOT NULL, packet_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    complete INTEGER NOT NULL, PRIMARY KEY(client, packet_id)) WITHOUT ROWID;
`;

/** The gateway's database. `close()` is safe to call twice. */
export class MqttStore {
  readonly #db: DatabaseSync;
  #closed = false;

  constructor(path: string) {
    this.#db = openSqlite(path, {
      pragmas: "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=2000",
      // version 1; files from before versioning (user_version 0) have these tables already
      schema: { version: 1, create: CREATE_V1 },
    });
  }

  /** The session of `clientId`, if stored. */
  session(clientId: string): StoredSession | undefined {
    const r = this.#db.prepare("SELECT user, expiry, ended_ms FROM sessions WHERE client=?").get(
      clientId,
    ) as { user: number; expiry: number; ended_ms: number | null } | undefined;
    if (!r) return undefined;
    return {
      clientId,
      user: Number(r.user),
      expiry: Number(r.expiry),
      endedMs: r.ended_ms === null ? undefined : Number(r.ended_ms),
    };
  }

  /** Every stored session. */
  sessions(): StoredSession[] {
    const rows = this.#db.prepare("SELECT client, user, expiry, ended_ms FROM sessions")
      .all() as Array<{ client: string; user: number; expiry: number; ended_ms: number | null }>;
    return rows.map((r) => ({
      clientId: r.client,
      user: Number(r.user),
      expiry: Number(r.expiry),
      endedMs: r.ended_ms === null ? undefined : Number(r.ended_ms),
    }));
  }

  /** Stores (or replaces) a connected session. */
  putSession(clientId: string, user: number, expiry: number): void {
    this.#db.prepare(
      "INSERT INTO sessions(client, user, expiry, ended_ms) VALUES (?, ?, ?, NULL) " +
        "ON CONFLICT(client) DO UPDATE SET user=excluded.user, expiry=excluded.expiry, ended_ms=NULL",
    ).run(clientId, user, expiry);
  }

  /** Records that the session's connection ended (it expires `expiry` seconds later). */
  endSession(clientId: string, expiry: number, now: number): void {
    this.#db.prepare("UPDATE sessions SET expiry=?, ended_ms=? WHERE client=?").run(
      expiry,
      now,
      clientId,
    );
  }

  /** Deletes a session and everything stored for it. */
  deleteSession(clientId: string): void {
    this.#db.exec("BEGIN");
    try {
      for (const t of ["sessions", "subs", "released"]) {
        this.#db.prepare(`DELETE FROM ${t} WHERE client=?`).run(clientId);
      }
      this.#db.exec("COMMIT");
    } catch (err) {
      this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  /** The session's subscriptions. */
  subscriptions(clientId: string): SessionSubscription[] {
    const rows = this.#db.prepare(
      "SELECT filter, qos, options, identifier FROM subs WHERE client=? ORDER BY filter",
    ).all(clientId) as Array<
      { filter: string; qos: number; options: number; identifier: number | null }
    >;
    return rows.map((r) => ({
      filter: r.filter,
      qos: Number(r.qos) as 0 | 1 | 2,
      noLocal: (Number(r.options) & 1) !== 0,
      retainAsPublished: (Number(r.options) & 2) !== 0,
      retainHandling: ((Number(r.options) >> 2) & 3) as 0 | 1 | 2,
      identifier: r.identifier === null ? undefined : Number(r.identifier),
    }));
  }

  /** Stores (or replaces) a subscription. */
  putSubscription(clientId: string, s: SessionSubscription): void {
    const options = (s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0) | (s.retainHandling << 2);
    this.#db.prepare(
      "INSERT OR REPLACE INTO subs(client, filter, qos, options, identifier) VALUES (?, ?, ?, ?, ?)",
    ).run(clientId, s.filter, s.qos, options, s.identifier ?? null);
  }

  /** Removes a subscription. */
  deleteSubscription(clientId: string, filter: string): void {
    this.#db.prepare("DELETE FROM subs WHERE client=? AND filter=?").run(clientId, filter);
  }

  /** Outgoing QoS 2 deliveries the client received (PUBREC), completed or not. */
  released(clientId: string): Array<{ packetId: number; seq: number; complete: boolean }> {
    const rows = this.#db.prepare(
      "SELECT packet_id, seq, complete FROM released WHERE client=? ORDER BY seq",
    ).all(clientId) as Array<{ packet_id: number; seq: number; complete: number }>;
    return rows.map((r) => ({
      packetId: Number(r.packet_id),
      seq: Number(r.seq),
      complete: r.complete === 1,
    }));
  }

  /** Records a PUBREC for the delivery at inbox position `seq`. */
  putReleased(clientId: string, packetId: number, seq: number): void {
    this.#db.prepare(
      "INSERT OR REPLACE INTO released(client, packet_id, seq, complete) VALUES (?, ?, ?, 0)",
    ).run(clientId, packetId, seq);
  }

  /** Records the PUBCOMP of a released delivery (kept until the inbox covers its position). */
  completeReleased(clientId: string, packetId: number): void {
    this.#db.prepare("UPDATE released SET complete=1 WHERE client=? AND packet_id=?").run(
      clientId,
      packetId,
    );
  }

  /** Deletes completed released records at or before inbox position `upTo`. */
  pruneReleased(clientId: string, upTo: number): void {
    this.#db.prepare("DELETE FROM released WHERE client=? AND complete=1 AND seq<=?").run(
      clientId,
      upTo,
    );
  }

  /** Closes the database. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

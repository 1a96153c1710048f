/**
 * The lottery server's SQLite store: bets, stored batches (agency, seq) so a resent batch
 * is never stored twice, finished agencies, and the draw.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback } from "../storage/mod.ts";
import type { Bet } from "./bet.ts";

const SCHEMA_VERSION = 1;

/** A batch waiting to be stored. */
export interface PendingBatch {
  agency: number;
  seq: number;
  bets: Bet[];
}

/** Durable lottery state, one database file per server. */
export class LotteryStore {
  readonly #db: DatabaseSync;
  readonly #insertBet: StatementSync;
  readonly #insertBatch: StatementSync;
  readonly #hasBatch: StatementSync;
  #closed = false;

  constructor(path: string) {
    this.#db = openSqlite(path);
    const version = Number(
      (this.#db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
    if (version === 0) {
      this.#db.exec(`
        CREATE TABLE bets (agency INTEGER NOT NULL, seq INTEGER NOT NULL, first_name TEXT NOT NULL,
          last_name TEXT NOT NULL, document TEXT NOT NULL, birthdate TEXT NOT NULL, number INTEGER NOT NULL);
        CREATE TABLE batches (agency INTEGER NOT NULL, seq INTEGER NOT NULL, count INTEGER NOT NULL,
          PRIMARY KEY (agency, seq)) WITHOUT ROWID;
        CREATE TABLE agencies_done (agency INTEGER PRIMARY KEY, batches INTEGER NOT NULL, at REAL NOT NULL);
        CREATE TABLE draw (agency INTEGER NOT NULL, document TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        PRAGMA user_version = ${SCHEMA_VERSION};`);
    } else if (version !== SCHEMA_VERSION) {
      this.#db.close();
      throw new Error(
        `Cannot open ${path}: schema version ${version}, this peerd knows ${SCHEMA_VERSION}`,
      );
    }
    this.#insertBet = this.#db.prepare(
      "INSERT INTO bets (agency, seq, first_name, last_name, document, birthdate, number) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#insertBatch = this.#db.prepare(
      "INSERT INTO batches (agency, seq, count) VALUES (?, ?, ?)",
    );
    this.#hasBatch = this.#db.prepare("SELECT count FROM batches WHERE agency = ? AND seq = ?");
  }

  /** Whether batch (agency, seq) is stored. */
  hasBatch(agency: number, seq: number): boolean {
    return this.#hasBatch.get(agency, seq) !== undefined;
  }

  /**
   * Stores batches in one transaction; each batch is all or nothing. Batches already
   * stored are skipped. Returns which were new.
   */
  storeBatches(batches: PendingBatch[]): boolean[] {
    const fresh: boolean[] = [];
    this.#db.exec("BEGIN");
    try {
      for (const b of batches) {
        if (this.hasBatch(b.agency, b.seq)) {
          fresh.push(false);
          continue;
        }
        this.#insertBatch.run(b.agency, b.seq, b.bets.length);
        const bets = b.bets;
        for (let i = 0; i < bets.length; i++) {
          const bet = bets[i];
          this.#insertBet.run(b.agency, b.seq, bet[0], bet[1], bet[2], bet[3], bet[4]);
        }
        fresh.push(true);
      }
      this.#db.exec("COMMIT");
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
    return fresh;
  }

  /** Marks `agency` finished. */
  markDone(agency: number, batches: number): void {
    this.#db.prepare("INSERT INTO agencies_done (agency, batches, at) VALUES (?, ?, ?)").run(
      agency,
      batches,
      Date.now(),
    );
  }

  /** The finished agencies. */
  doneAgencies(): Set<number> {
    const rows = this.#db.prepare("SELECT agency FROM agencies_done").all() as Array<
      { agency: number }
    >;
    return new Set(rows.map((r) => Number(r.agency)));
  }

  /** Stored batch count and bet count of `agency`. */
  agencyCounts(agency: number): { batches: number; bets: number } {
    const row = this.#db.prepare(
      "SELECT count(*) AS b, coalesce(sum(count), 0) AS n FROM batches WHERE agency = ?",
    )
      .get(agency) as { b: number; n: number };
    return { batches: Number(row.b), bets: Number(row.n) };
  }

  /** Total stored bets. */
  totalBets(): number {
    return Number((this.#db.prepare("SELECT count(*) AS n FROM bets").get() as { n: number }).n);
  }

  /** Whether the draw was held. */
  drawn(): boolean {
    return this.#db.prepare("SELECT value FROM meta WHERE key = 'drawn'").get() !== undefined;
  }

  /** Holds the draw once: every bet whose number is `winning` wins. Returns the winner count. */
  draw(winning: number): number {
    if (this.drawn()) return this.winnerCount();
    this.#db.exec("BEGIN");
    try {
      this.#db.prepare(
        "INSERT INTO draw (agency, document) SELECT agency, document FROM bets WHERE number = ? ORDER BY rowid",
      )
        .run(winning);
      this.#db.prepare("INSERT INTO meta (key, value) VALUES ('drawn', ?)").run(String(winning));
      this.#db.exec("COMMIT");
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
    return this.winnerCount();
  }

  /** Number of winning bets. */
  winnerCount(): number {
    return Number((this.#db.prepare("SELECT count(*) AS n FROM draw").get() as { n: number }).n);
  }

  /** Winning documents of `agency`, in storage order. */
  winners(agency: number): string[] {
    const rows = this.#db.prepare("SELECT document FROM draw WHERE agency = ? ORDER BY rowid").all(
      agency,
    ) as Array<
      { document: string }
    >;
    return rows.map((r) => r.document);
  }

  /** Closes the database. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

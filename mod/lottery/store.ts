/**
 * The lottery server's SQLite store, by round: bets, stored batches (round, agency, seq)
 * so a resent batch is never stored twice and a different one under the same key is
 * detected, finished agencies, and each round's draw.
 *
 * A round is open until its draw; the next one starts explicitly (`startRound`). Version 1
 * files (before rounds) are converted when opened: their data becomes round 1.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqlite, rollback, type SqliteSchema } from "../storage/mod.ts";
import type { Bet } from "./bet.ts";

const SCHEMA_VERSION = 2;

/** A batch waiting to be stored. */
export interface PendingBatch {
  round: number;
  agency: number;
  seq: number;
  bets: Bet[];
}

/** How a stored batch differs from one sent again under the same (round, agency, seq). */
export interface BatchDifference {
  /** Bets stored under that key. */
  storedCount: number;
  /** Bets in the batch sent now. */
  sentCount: number;
  /** First bet (0-based) that differs, when both have it. */
  index?: number;
  /** The stored bet at `index`, as a CSV line. */
  stored?: string;
  /** The sent bet at `index`, as a CSV line. */
  sent?: string;
}

/** What storing one batch did: stored now, the same batch already stored, or a conflict. */
export type StoreOutcome =
  | { kind: "stored" }
  | { kind: "duplicate" }
  | { kind: "conflict"; difference: BatchDifference };

/** A round: its number, whether it is drawn, and what it was drawn with. */
export interface RoundInfo {
  round: number;
  drawn: boolean;
  winningNumber: number | null;
}

const CREATE_V2 = `
  CREATE TABLE bets (round INTEGER NOT NULL, agency INTEGER NOT NULL, seq INTEGER NOT NULL,
    first_name TEXT NOT NULL, last_name TEXT NOT NULL, document TEXT NOT NULL,
    birthdate TEXT NOT NULL, number INTEGER NOT NULL);
  CREATE TABLE batches (round INTEGER NOT NULL, agency INTEGER NOT NULL, seq INTEGER NOT NULL,
    count INTEGER NOT NULL, first_rowid INTEGER NOT NULL,
    PRIMARY KEY (round, agency, seq)) WITHOUT ROWID;
  CREATE TABLE agencies_done (round INTEGER NOT NULL, agency INTEGER NOT NULL,
    batches INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (round, agency)) WITHOUT ROWID;
  CREATE TABLE rounds (round INTEGER PRIMARY KEY, started_at REAL NOT NULL,
    drawn_at REAL, winning_number INTEGER);
  CREATE TABLE draw (round INTEGER NOT NULL, agency INTEGER NOT NULL, document TEXT NOT NULL);
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/** Converts a version 1 file (one implicit round) to version 2: everything becomes round 1. */
const MIGRATE_V1_TO_V2 = `
  ALTER TABLE bets ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
  CREATE TABLE batches_v2 (round INTEGER NOT NULL, agency INTEGER NOT NULL, seq INTEGER NOT NULL,
    count INTEGER NOT NULL, first_rowid INTEGER NOT NULL,
    PRIMARY KEY (round, agency, seq)) WITHOUT ROWID;
  INSERT INTO batches_v2 (round, agency, seq, count, first_rowid)
    SELECT 1, b.agency, b.seq, b.count,
      (SELECT min(rowid) FROM bets WHERE bets.agency = b.agency AND bets.seq = b.seq)
    FROM batches b;
  DROP TABLE batches;
  ALTER TABLE batches_v2 RENAME TO batches;
  CREATE TABLE agencies_done_v2 (round INTEGER NOT NULL, agency INTEGER NOT NULL,
    batches INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (round, agency)) WITHOUT ROWID;
  INSERT INTO agencies_done_v2 SELECT 1, agency, batches, at FROM agencies_done;
  DROP TABLE agencies_done;
  ALTER TABLE agencies_done_v2 RENAME TO agencies_done;
  ALTER TABLE draw ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
  CREATE TABLE rounds (round INTEGER PRIMARY KEY, started_at REAL NOT NULL,
    drawn_at REAL, winning_number INTEGER);
  INSERT INTO rounds (round, started_at, drawn_at, winning_number)
    SELECT 1, 0, (SELECT CASE WHEN value IS NULL THEN NULL ELSE 0 END), CAST(value AS INTEGER)
    FROM (SELECT (SELECT value FROM meta WHERE key = 'drawn') AS value);
  DELETE FROM meta WHERE key = 'drawn';`;

/** The lottery file's schema: version 2 added rounds; round 1 is open in a new file. */
const SCHEMA: SqliteSchema = {
  version: SCHEMA_VERSION,
  create: (db) => {
    db.exec(CREATE_V2);
    db.prepare("INSERT INTO rounds (round, started_at) VALUES (1, ?)").run(Date.now());
  },
  upgrades: { 1: MIGRATE_V1_TO_V2 },
};

/** Durable lottery state, one database file per server. */
export class LotteryStore {
  readonly #db: DatabaseSync;
  readonly #insertBet: StatementSync;
  readonly #insertBatch: StatementSync;
  readonly #batchOf: StatementSync;
  readonly #betsByRowid: StatementSync;
  #closed = false;

  constructor(path: string) {
    this.#db = openSqlite(path, { schema: SCHEMA });
    this.#insertBet = this.#db.prepare(
      "INSERT INTO bets (round, agency, seq, first_name, last_name, document, birthdate, number) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#insertBatch = this.#db.prepare(
      "INSERT INTO batches (round, agency, seq, count, first_rowid) VALUES (?, ?, ?, ?, ?)",
    );
    this.#batchOf = this.#db.prepare(
      "SELECT count, first_rowid FROM batches WHERE round = ? AND agency = ? AND seq = ?",
    );
    this.#betsByRowid = this.#db.prepare(
      "SELECT first_name, last_name, document, birthdate, number FROM bets WHERE rowid >= ? AND rowid < ? ORDER BY rowid",
    );
  }

  /** The round open for bets, or the last one if it is drawn and no next one was started. */
  currentRound(): RoundInfo {
    const row = this.#db.prepare(
      "SELECT round, drawn_at, winning_number FROM rounds ORDER BY round DESC LIMIT 1",
    ).get() as { round: number; drawn_at: number | null; winning_number: number | null };
    return roundInfo(row);
  }

  /** Round `round`, or undefined if it never existed. */
  round(round: number): RoundInfo | undefined {
    const row = this.#db.prepare(
      "SELECT round, drawn_at, winning_number FROM rounds WHERE round = ?",
    ).get(round) as
      | { round: number; drawn_at: number | null; winning_number: number | null }
      | undefined;
    return row ? roundInfo(row) : undefined;
  }

  /** Opens round `round` (greater than every round so far). */
  startRound(round: number): void {
    this.#db.prepare("INSERT INTO rounds (round, started_at) VALUES (?, ?)").run(round, Date.now());
  }

  /** Whether (round, agency, seq) is stored. */
  hasBatch(round: number, agency: number, seq: number): boolean {
    return this.#batchOf.get(round, agency, seq) !== undefined;
  }

  /**
   * How `bets` compares with the batch stored under (round, agency, seq): undefined when none
   * is stored, "same" when it holds exactly these bets, or what differs.
   */
  compareBatch(
    round: number,
    agency: number,
    seq: number,
    bets: Bet[],
  ): "same" | BatchDifference | undefined {
    const row = this.#batchOf.get(round, agency, seq) as
      | { count: number; first_rowid: number }
      | undefined;
    if (row === undefined) return undefined;
    const count = Number(row.count);
    const first = Number(row.first_rowid);
    const stored = this.#betsByRowid.all(first, first + count) as Array<
      { first_name: string; last_name: string; document: string; birthdate: string; number: number }
    >;
    const n = Math.min(stored.length, bets.length);
    for (let i = 0; i < n; i++) {
      const s = stored[i];
      const b = bets[i];
      if (
        s.first_name !== b[0] || s.last_name !== b[1] || s.document !== b[2] ||
        s.birthdate !== b[3] || Number(s.number) !== b[4]
      ) {
        return {
          storedCount: count,
          sentCount: bets.length,
          index: i,
          stored: [s.first_name, s.last_name, s.document, s.birthdate, s.number].join(","),
          sent: b.join(","),
        };
      }
    }
    if (count !== bets.length) return { storedCount: count, sentCount: bets.length };
    return "same";
  }

  /**
   * Stores batches in one transaction; each batch is all or nothing. A batch whose key is
   * already stored is not stored again: its outcome says whether it was the same batch
   * (`duplicate`) or another one (`conflict`, with what differs).
   */
  storeBatches(batches: PendingBatch[]): StoreOutcome[] {
    const outcomes: StoreOutcome[] = [];
    this.#inTransaction(() => {
      for (const b of batches) {
        const existing = this.compareBatch(b.round, b.agency, b.seq, b.bets);
        if (existing === "same") {
          outcomes.push({ kind: "duplicate" });
          continue;
        }
        if (existing !== undefined) {
          outcomes.push({ kind: "conflict", difference: existing });
          continue;
        }
        const bets = b.bets;
        let firstRowid = 0;
        for (let i = 0; i < bets.length; i++) {
          const bet = bets[i];
          const r = this.#insertBet.run(
            b.round,
            b.agency,
            b.seq,
            bet[0],
            bet[1],
            bet[2],
            bet[3],
            bet[4],
          );
          if (i === 0) firstRowid = Number(r.lastInsertRowid);
        }
        this.#insertBatch.run(b.round, b.agency, b.seq, bets.length, firstRowid);
        outcomes.push({ kind: "stored" });
      }
    });
    return outcomes;
  }

  /** Marks `agency` finished in `round`. */
  markDone(round: number, agency: number, batches: number): void {
    this.#db.prepare(
      "INSERT INTO agencies_done (round, agency, batches, at) VALUES (?, ?, ?, ?)",
    ).run(round, agency, batches, Date.now());
  }

  /** The agencies finished in `round`. */
  doneAgencies(round: number): Set<number> {
    const rows = this.#db.prepare("SELECT agency FROM agencies_done WHERE round = ?").all(
      round,
    ) as Array<{ agency: number }>;
    return new Set(rows.map((r) => Number(r.agency)));
  }

  /** Stored batch count and bet count of `agency` in `round`. */
  agencyCounts(round: number, agency: number): { batches: number; bets: number } {
    const row = this.#db.prepare(
      "SELECT count(*) AS b, coalesce(sum(count), 0) AS n FROM batches WHERE round = ? AND agency = ?",
    ).get(round, agency) as { b: number; n: number };
    return { batches: Number(row.b), bets: Number(row.n) };
  }

  /** Stored bets of `round`. */
  roundBets(round: number): number {
    return Number(
      (this.#db.prepare("SELECT coalesce(sum(count), 0) AS n FROM batches WHERE round = ?").get(
        round,
      ) as { n: number }).n,
    );
  }

  /** Stored bets of every round. */
  totalBets(): number {
    return Number((this.#db.prepare("SELECT count(*) AS n FROM bets").get() as { n: number }).n);
  }

  /**
   * Holds the draw of `round` once: every bet of that round whose number is `winning` wins.
   * Returns the winner count.
   */
  draw(round: number, winning: number): number {
    const info = this.round(round);
    if (info === undefined) throw new Error(`Cannot draw round ${round}: no such round`);
    if (info.drawn) return this.winnerCount(round);
    this.#inTransaction(() => {
      this.#db.prepare(
        "INSERT INTO draw (round, agency, document) SELECT round, agency, document FROM bets WHERE round = ? AND number = ? ORDER BY rowid",
      ).run(round, winning);
      this.#db.prepare("UPDATE rounds SET drawn_at = ?, winning_number = ? WHERE round = ?").run(
        Date.now(),
        winning,
        round,
      );
    });
    return this.winnerCount(round);
  }

  /** Number of winning bets of `round`. */
  winnerCount(round: number): number {
    return Number(
      (this.#db.prepare("SELECT count(*) AS n FROM draw WHERE round = ?").get(round) as {
        n: number;
      }).n,
    );
  }

  /** Winning documents of `agency` in `round`, in storage order. */
  winners(round: number, agency: number): string[] {
    const rows = this.#db.prepare(
      "SELECT document FROM draw WHERE round = ? AND agency = ? ORDER BY rowid",
    ).all(round, agency) as Array<{ document: string }>;
    return rows.map((r) => r.document);
  }

  /** Closes the database. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #inTransaction(work: () => void): void {
    this.#db.exec("BEGIN");
    try {
      work();
      this.#db.exec("COMMIT");
    } catch (err) {
      rollback(this.#db);
      throw err;
    }
  }
}

function roundInfo(
  row: { round: number; drawn_at: number | null; winning_number: number | null },
): RoundInfo {
  return {
    round: Number(row.round),
    drawn: row.drawn_at !== null,
    winningNumber: row.winning_number === null ? null : Number(row.winning_number),
  };
}

/**
 * Multi-row `INSERT` statements: one statement call per chunk of rows instead of one per
 * row, which is where most of the time of a per-tick write goes with `node:sqlite`.
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";

/** Rows per multi-row statement. */
const CHUNK = 32;

/** Inserts many rows into one table with as few statement calls as possible. */
export class BatchInsert {
  readonly #one: StatementSync;
  readonly #many: StatementSync;
  readonly #width: number;

  constructor(db: DatabaseSync, sqlHead: string, width: number) {
    this.#width = width;
    const tuple = `(${new Array(width).fill("?").join(",")})`;
    this.#one = db.prepare(`${sqlHead} VALUES ${tuple}`);
    this.#many = db.prepare(`${sqlHead} VALUES ${new Array(CHUNK).fill(tuple).join(",")}`);
  }

  /** Inserts `rows` (each an array of `width` values), in order. */
  run(rows: SQLInputValue[][]): void {
    let i = 0;
    if (rows.length >= CHUNK) {
      const args: SQLInputValue[] = new Array(CHUNK * this.#width);
      for (; i + CHUNK <= rows.length; i += CHUNK) {
        let k = 0;
        for (let j = i; j < i + CHUNK; j++) {
          const row = rows[j];
          for (let c = 0; c < this.#width; c++) args[k++] = row[c];
        }
        this.#many.run(...args);
      }
    }
    for (; i < rows.length; i++) this.#one.run(...rows[i]);
  }
}

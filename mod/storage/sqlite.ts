/**
 * Opening a node's SQLite database the same way everywhere, with the faults a user can
 * cause turned into one clear line: `--data` that is not a directory, a read-only file,
 * a file that is not a database or fails its integrity check. A store's schema is declared
 * once ({@linkcode SqliteSchema}): created on an empty file, upgraded step by step on an
 * older one, refused on a newer one.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** Error code of a reply for data that could not be stored. */
export const STORE_FAILED = "store_failed";

/** The database cannot be opened or written. The message is the one line to show. */
export class StorageError extends Error {
  /** Always `store_failed`. */
  readonly code = STORE_FAILED;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates the data directory `dir` (and its parents) unless it exists; throws
 * `StorageError` naming `--data` when it, or a parent, is not a directory.
 */
export function prepareDataDir(dir: string): void {
  try {
    const info = Deno.statSync(dir);
    if (!info.isDirectory) {
      throw new StorageError(`Cannot use --data ${dir}: it is a file, not a directory`);
    }
    return;
  } catch (err) {
    if (err instanceof StorageError) throw err;
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new StorageError(`Cannot use --data ${dir}: ${reason(err)}`, { cause: err });
    }
  }
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (err) {
    const why = err instanceof Deno.errors.AlreadyExists || err instanceof Deno.errors.NotADirectory
      ? "a part of the path is a file, not a directory"
      : reason(err);
    throw new StorageError(`Cannot use --data ${dir}: ${why}`, { cause: err });
  }
}

/** Options of {@linkcode openSqlite}. */
export interface OpenSqliteOptions {
  /**
   * PRAGMAs run right after opening.
   * @default {"PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000"}
   */
  pragmas?: string;
  /** Skip `PRAGMA quick_check` (for files just created). @default {false} */
  skipCheck?: boolean;
  /** The store's schema: created, upgraded or refused right after the check. */
  schema?: SqliteSchema;
}

/** One schema step: SQL to `exec`, or a function doing the work on the open database. */
export type SchemaStep = string | ((db: DatabaseSync) => void);

/**
 * A store's schema, versioned in `PRAGMA user_version`. Each step runs in its own
 * transaction that also sets `user_version`, so a failed step leaves the file at the
 * version it had before that step.
 *
 * ```ts
 * openSqlite(path, {
 *   schema: {
 *     version: 2,
 *     create: "CREATE TABLE t(a, b)",              // empty file (version 0) → 2
 *     upgrades: { 1: "ALTER TABLE t ADD COLUMN b" }, // 1 → 2
 *   },
 * });
 * ```
 */
export interface SqliteSchema {
  /** The version this peerd writes (≥ 1). */
  version: number;
  /** Creates the current schema on an empty file (`user_version` 0). */
  create: SchemaStep;
  /** `upgrades[v]` turns a version `v` file into version `v + 1`. */
  upgrades?: Readonly<Record<number, SchemaStep>>;
}

const DEFAULT_PRAGMAS =
  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000";

/**
 * Opens (or creates) the database at `path` for reading and writing, checks it with
 * `PRAGMA quick_check`, and runs the PRAGMAs. Throws `StorageError` with one line for a
 * read-only file, a file that is not a database, or a failed check — never a database a
 * write would fail on later.
 */
export function openSqlite(path: string, options: OpenSqliteOptions = {}): DatabaseSync {
  let exists = false;
  try {
    const info = Deno.statSync(path);
    exists = true;
    if (!info.isFile) throw new StorageError(`Cannot open database ${path}: not a file`);
  } catch (err) {
    if (err instanceof StorageError) throw err;
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new StorageError(`Cannot open database ${path}: ${reason(err)}`, { cause: err });
    }
  }
  if (exists) {
    try {
      Deno.openSync(path, { read: true, write: true }).close();
    } catch (err) {
      throw new StorageError(
        `Cannot open database ${path}: the file is read-only (${reason(err)})`,
        { cause: err },
      );
    }
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (err) {
    throw new StorageError(`Cannot open database ${path}: ${reason(err)}`, { cause: err });
  }
  try {
    db.exec(options.pragmas ?? DEFAULT_PRAGMAS);
    if (exists && !options.skipCheck) {
      const rows = db.prepare("PRAGMA quick_check").all() as Array<Record<string, unknown>>;
      const first = rows.map((r) => String(Object.values(r)[0]));
      if (first.length !== 1 || first[0] !== "ok") {
        throw new StorageError(
          `Cannot open database ${path}: integrity check failed (${
            first.slice(0, 2).join("; ")
          }); move the file away to start empty, or restore it`,
        );
      }
    }
    if (options.schema) applySchema(db, path, options.schema);
    return db;
  } catch (err) {
    try {
      db.close();
    } catch {
      // already unusable
    }
    if (err instanceof StorageError) throw err;
    throw new StorageError(
      `Cannot open database ${path}: ${
        reason(err)
      }; move the file away to start empty, or restore it`,
      { cause: err },
    );
  }
}

/** `PRAGMA user_version` of `db`. */
export function schemaVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number | bigint };
  return Number(row.user_version);
}

function runStep(db: DatabaseSync, step: SchemaStep, to: number): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    if (typeof step === "string") db.exec(step);
    else step(db);
    db.exec(`PRAGMA user_version = ${to}`);
    db.exec("COMMIT");
  } catch (err) {
    rollback(db);
    throw err;
  }
}

/**
 * Brings `db` (opened from `path`) to `schema.version`: creates it on an empty file, runs
 * each upgrade from the file's version on, each in its own transaction. Throws
 * `StorageError` with one line for a file newer than `schema.version`, a version with no
 * upgrade, or a failed step (the file then stays at the version before that step).
 */
function applySchema(db: DatabaseSync, path: string, schema: SqliteSchema): void {
  const target = schema.version;
  let version = schemaVersion(db);
  if (version > target) {
    throw new StorageError(
      `Cannot open database ${path}: schema version ${version} is newer than this peerd's ${target}; run a newer peerd, or move the file away to start empty`,
    );
  }
  if (version === 0) {
    try {
      runStep(db, schema.create, target);
    } catch (err) {
      throw new StorageError(
        `Cannot open database ${path}: creating schema version ${target} failed: ${reason(err)}`,
        { cause: err },
      );
    }
    return;
  }
  while (version < target) {
    const step = schema.upgrades?.[version];
    if (step === undefined) {
      throw new StorageError(
        `Cannot open database ${path}: schema version ${version} cannot be upgraded to ${target} by this peerd; move the file away to start empty`,
      );
    }
    try {
      runStep(db, step, version + 1);
    } catch (err) {
      throw new StorageError(
        `Cannot open database ${path}: upgrading schema version ${version} to ${
          version + 1
        } failed (${reason(err)}); the file is left at version ${version}`,
        { cause: err },
      );
    }
    version++;
  }
}

/** Whether `err` is a failure of SQLite (or of {@linkcode openSqlite}). */
export function isStorageFailure(err: unknown): boolean {
  return err instanceof StorageError ||
    (err instanceof Error && (err as { code?: unknown }).code === "ERR_SQLITE_ERROR");
}

/**
 * Rolls back the open transaction after a failed write, keeping the write's own error:
 * when SQLite already ended the transaction (a full disk, an I/O error), the ROLLBACK's
 * "no transaction is active" would otherwise hide why.
 */
export function rollback(db: DatabaseSync): void {
  try {
    db.exec("ROLLBACK");
  } catch {
    // no transaction left
  }
}

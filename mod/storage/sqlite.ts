/**
 * Opening a node's SQLite database the same way everywhere, with the faults a user can
 * cause turned into one clear line: `--data` that is not a directory, a read-only file,
 * a file that is not a database or fails its integrity check.
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

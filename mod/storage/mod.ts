/**
 * Storage shared by every role: one way to prepare `--data` and open a node's SQLite
 * database, with clear one-line errors for the faults a user can cause.
 *
 * ```ts
 * prepareDataDir(ctx.dataDir);
 * const db = openSqlite(`${ctx.dataDir}/queue.sqlite`);
 * ```
 *
 * @module
 */
export {
  isStorageFailure,
  openSqlite,
  type OpenSqliteOptions,
  prepareDataDir,
  rollback,
  StorageError,
  STORE_FAILED,
} from "./sqlite.ts";

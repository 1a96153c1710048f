/**
 * Storage shared by every role: one way to prepare `--data` and open a node's SQLite
 * database, with clear one-line errors for the faults a user can cause.
 *
 * ```ts
 * prepareDataDir(ctx.dataDir);
 * const db = openSqlite(`${ctx.dataDir}/queue.sqlite`, {
 *   schema: { version: 2, create: CREATE_V2, upgrades: { 1: UPGRADE_1_TO_2 } },
 * });
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
  type SchemaStep,
  schemaVersion,
  type SqliteSchema,
  StorageError,
  STORE_FAILED,
} from "./sqlite.ts";
export { StoreFailureLatch } from "./failure.ts";

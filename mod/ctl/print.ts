/**
 * JSON output of the command-line tools: one value on stdout (bigints as numbers).
 *
 * @module
 */

/** Prints a JSON value on stdout. */
export function printJson(value: unknown, pretty = true): void {
  console.log(
    JSON.stringify(
      value,
      (_k, v) => (typeof v === "bigint" ? Number(v) : v),
      pretty ? 2 : undefined,
    ),
  );
}

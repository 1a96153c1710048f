/**
 * peerd: one program that runs any role of a small distributed system, chosen by
 * `--role`. `peerd --help` lists the roles and commands.
 *
 * @module
 */
import { main } from "./mod/cli/main.ts";

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}

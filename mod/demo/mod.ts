/**
 * The demo (`peerd --role demo`, `deno task demo`) and the step contract subsystems
 * implement to appear in it.
 *
 * @module
 */
export { demoRole } from "./role.ts";
export type { DemoContext, DemoStep } from "../harness/mod.ts";

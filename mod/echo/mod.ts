/**
 * The echo role (`peerd --role echo`).
 *
 * @module
 */
export { echoRole } from "./role.ts";

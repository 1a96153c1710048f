/**
 * Processes: the role contract, the node server every role starts, graceful shutdown,
 * and starting copies of peerd (local clusters of them live in `mod/harness`).
 *
 * ```ts
 * const child = peerdCommand(["--role", "echo", "--listen", "127.0.0.1:0"]).spawn();
 * ```
 *
 * @module
 */
export {
  type CommandDefinition,
  defineRole,
  optionEnv,
  optionFlag,
  type OptionValues,
  type RoleContext,
  type RoleDefinition,
  roleMembers,
  type RoleOption,
  type RoleOptions,
  UsageError,
} from "./role.ts";
export {
  linkSecurity,
  type NodeServerOptions,
  nodeStatusFields,
  reportWireProblem,
  startNodeServer,
} from "./node_server.ts";
export {
  type CommandPromptOptions,
  type PromptCommand,
  promptCommandsOf,
  runCommandPrompt,
} from "./prompt.ts";
export { aborted, installShutdownSignals, SHUTDOWN_BOUND_MS } from "./lifecycle.ts";
export { isCompiledBinary, peerdArgv, peerdCommand, stopProcess } from "./spawn.ts";
export { Tick } from "./tick.ts";

/**
 * Processes: the role contract, the node server every role starts, graceful shutdown,
 * starting copies of peerd, and local clusters of real processes for the demo and tests.
 *
 * ```ts
 * await using cluster = await LocalCluster.start({ nodes: [{ name: "e1", role: "echo" }] });
 * const status = await cluster.node("e1").ctl("status");
 * ```
 *
 * @module
 */
export {
  type CommandDefinition,
  type RoleContext,
  type RoleDefinition,
  roleMembers,
  type RoleOption,
  UsageError,
} from "./role.ts";
export {
  linkSecurity,
  type NodeServerOptions,
  reportWireProblem,
  startNodeServer,
} from "./node_server.ts";
export { type CommandPromptOptions, type PromptCommand, runCommandPrompt } from "./prompt.ts";
export { aborted, installShutdownSignals, SHUTDOWN_BOUND_MS } from "./lifecycle.ts";
export { isCompiledBinary, peerdArgv, peerdCommand } from "./spawn.ts";
export type { DemoContext, DemoStep } from "./demo_step.ts";
export {
  ClusterNode,
  freePort,
  LocalCluster,
  type LocalClusterOptions,
  type NodeSpec,
  pause,
} from "./cluster.ts";
export { Tick } from "./tick.ts";

/**
 * Control of running nodes: the `ctl` frame handler every role installs, typed command
 * arguments (`ctlCommand`), and the client behind `peerd ctl <host:port> <cmd> [args…]`.
 *
 * ```ts
 * const reply = await ctlRequest({ hostname: "127.0.0.1", port: 7101 }, "status");
 * ```
 *
 * @module
 */
export {
  type CtlCommand,
  type CtlCommands,
  ctlHandler,
  ctlHelp,
  ctlRequest,
  type CtlRequestOptions,
} from "./control.ts";
export { printJson } from "./print.ts";
export {
  type CtlArg,
  type CtlArgs,
  ctlCommand,
  type CtlCommandSpec,
  type CtlFlags,
  ctlUsage,
  type CtlValues,
  type DescribedCtlCommand,
  parseCtlArgs,
} from "./args.ts";

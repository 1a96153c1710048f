/**
 * Every role and helper command of the binary, in the order `peerd --help` lists them.
 * Add a subsystem with one import and one entry.
 *
 * @module
 */
import type { CommandDefinition, RoleDefinition } from "../process/mod.ts";
import { echoRole } from "../echo/mod.ts";
import { demoRole } from "../demo/mod.ts";
import { ctlCommand } from "./ctl_command.ts";
import { traceCommand } from "./trace_command.ts";
// ── subsystem roles (one import line each) ──
import {
  agencyRole,
  composeCommand,
  echoCheckCommand,
  lotteryGenCommand,
  lotteryServerRole,
} from "../lottery/mod.ts";
import { ringRole } from "../ring/mod.ts";
import { queueCtlCommand, queueRole } from "../queue/mod.ts";
import { followerRole, leaderRole } from "../leader/mod.ts";
import { frontendRole, ratingsCommand, ratingsGenCommand, replicaRole } from "../ratings/mod.ts";
import { multicastRole } from "../multicast/mod.ts";
import { gossipRole, gossipSimCommand } from "../gossip/mod.ts";
import { brokerRole, daemonRole, momCommand } from "../mom/mod.ts";
import { labCommand } from "../lab/mod.ts";
import { httpTokenCommand } from "../http/mod.ts";
import { consoleCommand } from "../console/mod.ts";

/** The roles, by `--role` name. */
export const ROLES: readonly RoleDefinition[] = [
  demoRole,
  echoRole,
  // ── subsystem roles (one entry line each) ──
  lotteryServerRole,
  agencyRole,
  ringRole,
  queueRole,
  leaderRole,
  followerRole,
  replicaRole,
  frontendRole,
  multicastRole,
  gossipRole,
  brokerRole,
  daemonRole,
];

/** The helper subcommands. */
export const COMMANDS: readonly CommandDefinition[] = [
  ctlCommand,
  traceCommand,
  // ── subsystem commands (one entry line each) ──
  lotteryGenCommand,
  composeCommand,
  echoCheckCommand,
  queueCtlCommand,
  ratingsCommand,
  ratingsGenCommand,
  gossipSimCommand,
  momCommand,
  labCommand,
  httpTokenCommand,
  consoleCommand,
];

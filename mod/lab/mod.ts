/**
 * The lab: real peerd processes in network namespaces (one IP a node on a private bridge)
 * with partitions, one-way loss, pauses, kills and restarts — for tests, teaching and
 * trying a cluster as if on several machines. Linux, root, `ip` and `nft`.
 *
 * ```ts
 * const reason = await labAvailable();
 * if (reason) console.log(`skipped: ${reason}`);
 * else {
 *   await using lab = await Lab.up({ prefix: "demo", peers: [{ name: "g1", role: "gossip" }] });
 *   await lab.isolate("g1");
 *   await lab.heal();
 * }
 * ```
 *
 * @module
 */
export { Lab, labAvailable, LabUnavailableError } from "./lab.ts";
export {
  type LabDownReport,
  type LabNodeSpec,
  type LabNodeStatus,
  type LabStatus,
  type LabUpOptions,
  specsFromConfig,
} from "./specs.ts";
export {
  addCuts,
  candidateSubnets,
  checkPrefix,
  chooseSubnet,
  cidrsOverlap,
  type Cut,
  cutKey,
  expandArg,
  isolateCuts,
  type LabPlan,
  LabUsageError,
  NFT_TABLE,
  nftScript,
  type NodeNames,
  onewayCut,
  parseGroups,
  partitionCuts,
  planLab,
  PREFIX_RE,
} from "./plan.ts";
export { type LabNodeState, type LabState, readState, STATE_FILE, statePath } from "./state.ts";
export { EventLog } from "../events/mod.ts";
export { labCommand, parseRoleArgs } from "./command.ts";
export {
  allEqual,
  detectedAs,
  exactlyOnce,
  firstAfter,
  type LockInterval,
  lockIntervals,
  membershipConverged,
  type MemberView,
  mutualExclusion,
  perPublisherOrder,
  sameMultiset,
  valuesConverged,
} from "./checkers.ts";

/**
 * The replicated movie-ratings service of the gossip architecture: replica managers
 * (`--role replica`), front ends (`--role frontend`), the client (`peerd ratings`) and the
 * dataset generator (`peerd ratings-gen`).
 *
 * ```ts
 * import { leq, merge } from "./mod.ts";
 * leq({ rm1: 1 }, merge({ rm1: 1 }, { rm2: 3 })); // true
 * ```
 *
 * @module
 */
export { replicaRole } from "./replica_role.ts";
export {
  REPLICA_FRAME_TYPES,
  type ReplicaHandler,
  ReplicaNode,
  type ReplicaNodeOptions,
  type Responder,
} from "./replica_node.ts";
export {
  isPeerAddress,
  pushOrder,
  ReplicaPeers,
  type ReplicaPeersOptions,
  ringAfter,
} from "./replica_peers.ts";
export {
  type RatingsTransport,
  TcpRatingsTransport,
  type TcpRatingsTransportOptions,
} from "./transport.ts";
export { MemoryRatingsNetwork } from "./memory_network.ts";
export { frontendRole } from "./frontend_role.ts";
export { RatingsClient, ratingsCommand, RatingsSession } from "./client_command.ts";
export { ratingsGenCommand } from "./gen_command.ts";
export { ratingsDemo } from "./demo.ts";
export * from "./vector_ts.ts";
export * from "./update_log.ts";
export {
  cellKey,
  type Dataset,
  DatasetError,
  DEFAULT_SEED,
  generateDataset,
  isValidRating,
  type Movie,
  type Rating,
  readDatasetDir,
  writeDatasetDir,
} from "./dataset.ts";
export { type Cell, RatingsState, versionGreater } from "./ratings_state.ts";
export { ReplicaStore, type StoredReplica } from "./replica_store.ts";
export {
  MemoryJournal,
  type ReplicaJournal,
  ReplicaManager,
  type SnapshotCell,
} from "./replica_manager.ts";
export { type FeRequest, RATINGS_FRAMES, type RmRequest } from "./protocol.ts";

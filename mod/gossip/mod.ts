/**
 * Gossip dissemination: a last-writer-wins key/value map spread by push rumor mongering
 * (fanout, 1/k stop rule) and push-pull anti-entropy, with SWIM membership and failure
 * detection. The protocol ({@linkcode GossipNode}) is pure; it runs over TCP in the
 * `gossip` role and over a seeded in-memory network in `peerd gossip-sim`.
 *
 * ```ts
 * const net = new VirtualNetwork({ random: seededRandom(1) });
 * const a = new GossipNode({ name: "a", addr: "a", transport: net.transport("a"), seeds: ["b"] });
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export { type Entry, VersionedStore } from "./store.ts";
export { compareVersions, formatVersion, LamportClock, type Version } from "./version.ts";
export {
  type Member,
  type MemberChange,
  MemberTable,
  type MemberTableOptions,
} from "./membership.ts";
export * from "./messages.ts";
export { GOSSIP_FRAMES, GOSSIP_ROUTE, type GossipFrameType } from "./protocol.ts";
export { FailureDetector, type FailureDetectorOptions } from "./failure_detector.ts";
export { HotRumors } from "./rumors.ts";
export { deltaFor, digestOf, entriesFor, entryTuple, olderThan } from "./anti_entropy.ts";
export type { GossipTransport } from "./transport.ts";
export {
  GossipInputError,
  GossipNode,
  type GossipNodeOptions,
  type GossipStats,
  type PeerRef,
  type StopRule,
  type ValueView,
} from "./node.ts";
export { type RandomSource, sampleDistinct, seededRandom, shuffle } from "../random/mod.ts";
export {
  type MessageSink,
  type NetworkStats,
  VirtualNetwork,
  type VirtualNetworkOptions,
} from "./memory_network.ts";
export { TcpTransport, type TcpTransportOptions, type TcpTransportStats } from "./tcp_transport.ts";
export { simulate, type SimulationOptions, type SimulationResult } from "./simulation.ts";
export { exponentialGap, generateWords } from "./generator.ts";
export { WORDS } from "./words.ts";
export { gossipRole } from "./role.ts";
export { gossipSimCommand } from "./sim_command.ts";
export { gossipDemo } from "./demo.ts";

/**
 * Total-order multicast chat (`--role multicast`): Lamport-stamped messages delivered in
 * one identical order on every member, with a flush-based view change when a member
 * crashes and history transfer when one rejoins.
 *
 * ```ts
 * const group = new TotalOrderGroup("m1");
 * ```
 *
 * @module
 */
export {
  type ChatMessage,
  compareStamp,
  MAX_BATCH,
  MAX_BODY_LENGTH,
  messageId,
  parseChatMessage,
} from "./message.ts";
export { MEMBER_FRAME_TYPES, MULTICAST_FRAMES, MULTICAST_ROUTE } from "./protocol.ts";
export {
  type Ack,
  type FlushReport,
  type Installation,
  mergeFlushes,
  type ReceiveResult,
  type RejectReason,
  TotalOrderGroup,
  type View,
} from "./total_order.ts";
export { type HistoryEntry, type HistoryLog, HistoryStore } from "./history_store.ts";
export { MemoryHistory } from "./memory_history.ts";
export { SilenceDetector, type SilenceDetectorOptions } from "./failure_detector.ts";
export type { MulticastTransport } from "./transport.ts";
export {
  type MemberHooks,
  type MemberState,
  MulticastMember,
  type MulticastMemberOptions,
  type ReportedState,
} from "./member.ts";
export { ViewChanges } from "./view_change.ts";
export {
  type JoinerPart,
  type JoinRequest,
  type PeerInfo,
  readAck,
  readData,
  readFlush,
  readHeartbeat,
  readHistory,
  readInstall,
  readJoin,
  readJoinerPart,
  readNames,
  readPropose,
  readViewNumber,
} from "./frames.ts";
export { type OwnView, PeerStates, type PeerStatesOptions } from "./peer_states.ts";
export { type FrameSink, MemoryNetwork, type MemoryNetworkOptions } from "./memory_network.ts";
export { type CheckedEvent, checkMulticastEvents, type CheckOptions } from "./checker.ts";
export { SimGroup, type SimGroupOptions } from "./simulation.ts";
export { multicastLinks, type MulticastLinksOptions } from "./tcp_transport.ts";
export { MulticastNode, type MulticastNodeOptions, type NodeState } from "./node.ts";
export { multicastRole } from "./role.ts";
export { multicastDemo } from "./demo.ts";

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
export { type HistoryEntry, HistoryStore } from "./history_store.ts";
export { PeerLink, type PeerLinkOptions } from "./peer_link.ts";
export { MulticastNode, type MulticastNodeOptions, type NodeState } from "./node.ts";
export { multicastRole } from "./role.ts";
export { multicastDemo } from "./demo.ts";

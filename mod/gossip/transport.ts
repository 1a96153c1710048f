/**
 * The one thing the gossip protocol needs from a network: send a message to an address,
 * maybe losing it. Received messages are handed to `GossipNode.receive`.
 *
 * @module
 */
import type { GossipMessage } from "./messages.ts";

/** Fire-and-forget delivery. Implementations may drop messages (loss, dead peers, backpressure). */
export interface GossipTransport {
  /** Sends `msg` to the node listening at `addr`. Never throws, never blocks. */
  send(addr: string, msg: GossipMessage): void;
  /**
   * Forgets any connection to `addr` (its member was declared dead), so the
   * next `send` dials afresh instead of writing into a connection a partition may have
   * stalled. Optional: transports without connections ignore it.
   */
  reset?(addr: string): void;
}

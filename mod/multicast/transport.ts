/**
 * What the multicast protocol needs from a network: one FIFO link to each other member,
 * which may be down (frames sent then are dropped, and the protocol resends what matters
 * when the link comes back up, see `MulticastMember.linkUp`). Received frames are handed to
 * `MulticastMember.receive` with the authenticated sender's name.
 *
 * @module
 */
import type { Message } from "../wire/mod.ts";

/** Per-member FIFO links. Implementations: `multicastLinks` (TCP) and `MemoryNetwork`. */
export interface MulticastTransport {
  /** Sends `frame` to member `to`; false when that link is down (the frame is dropped). */
  send(to: string, frame: Message): boolean;
  /** Whether the link to `to` is up. */
  connected(to: string): boolean;
  /** Bytes queued but not yet written to `to` (0 when unknown). */
  pendingBytes(to: string): number;
  /**
   * `to` is suspected: drop the connection and redial (a TCP connection through a partition
   * sits in retransmission back-off long after the heal; a fresh one is up at once).
   */
  reset?(to: string): void;
}

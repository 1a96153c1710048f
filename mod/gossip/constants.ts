/**
 * Gossip wire constants: message types, member states and size limits. Append-only.
 *
 * @module
 */

/** Version of the gossip message set. */
export const GOSSIP_PROTOCOL_VERSION = 1;

/** Message types of the gossip protocol (all one-way; nothing carries a reply `rid`). */
export const GossipType = {
  /** Push rumor mongering: hot entries plus piggybacked member updates. */
  Rumor: "g.rumor",
  /** Anti-entropy opener (and join): digest of keys and versions, plus the member list. */
  Digest: "g.digest",
  /** Anti-entropy answer: entries the other side lacks, keys wanted back, member list. */
  Delta: "g.delta",
  /** SWIM direct probe. */
  Ping: "g.ping",
  /** SWIM probe answer (direct, or relayed for an indirect probe). */
  Ack: "g.ack",
  /** SWIM indirect probe request: "ping `target` for me". */
  PingReq: "g.pingreq",
} as const;

/** Member states as carried on the wire. */
export const MemberState = { Alive: 0, Suspect: 1, Dead: 2 } as const;

/** One of {@linkcode MemberState}. */
export type MemberStateValue = (typeof MemberState)[keyof typeof MemberState];

/** Names of member states, by wire value. */
export const MEMBER_STATE_NAMES = ["alive", "suspect", "dead"] as const;

/** Longest key accepted, in UTF-16 units. */
export const MAX_KEY_LENGTH = 256;

/** Default largest value accepted, in UTF-8 bytes (`--max-value`). */
export const DEFAULT_MAX_VALUE_BYTES = 64 * 1024;

/** Most entries, digest items or member updates accepted in one message. */
export const MAX_ITEMS_PER_MESSAGE = 20_000;

/** Budget of value bytes put in one anti-entropy delta (the rest goes next time). */
export const DELTA_BYTE_BUDGET = 4 * 1024 * 1024;

/** Most hot rumors pushed in one message (the others rotate in on later rounds). */
export const MAX_RUMORS_PER_MESSAGE = 256;

/** Most member updates piggybacked on one message. */
export const MAX_PIGGYBACK = 8;

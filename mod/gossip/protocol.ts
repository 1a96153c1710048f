/**
 * The gossip protocol's messages (protocol version {@linkcode GOSSIP_PROTOCOL_VERSION}).
 * {@linkcode GOSSIP_FRAMES} lists every message with its fields: it is the table in
 * docs/gossip.md (tests/protocol_docs_test.ts compares the two, checks it field for field
 * against {@linkcode GossipMessage}, the type every transport sends, and the role's handler
 * map is built from it). All messages are one-way: nothing carries a `rid` or gets a reply.
 *
 * @module
 */
import type { FrameSpec } from "../wire/mod.ts";
import { GOSSIP_PROTOCOL_VERSION, GossipType } from "./constants.ts";
import type { GossipMessage } from "./messages.ts";

/** Who sends every gossip message to whom. */
export const GOSSIP_ROUTE = "node → node";

/** Every message of the gossip protocol. */
export const GOSSIP_FRAMES = [
  {
    t: GossipType.Rumor,
    route: GOSSIP_ROUTE,
    fields: "from, e, m",
    reply: "",
    note: "rumor mongering: hot entries `e` (`[key, value, clock, writer, hops]`, at most " +
      "256) and member updates `m` (`[name, address, state, incarnation]`, state 0 alive, " +
      "1 suspect, 2 dead) to `fanout` random live peers each round",
  },
  {
    t: GossipType.Digest,
    route: GOSSIP_ROUTE,
    fields: "from, addr, d, m",
    reply: "",
    note: "anti-entropy opener and join: `d` is `[key, clock, writer]` per key, `m` the " +
      "whole member list; answered by a `g.delta`",
  },
  {
    t: GossipType.Delta,
    route: GOSSIP_ROUTE,
    fields: "from, e, want, m",
    reply: "",
    note: "anti-entropy answer: the entries the other side lacks or has older (at most " +
      "4 MiB of values), the keys `want`ed back, the member list; the opener answers a " +
      "non-empty `want` with one more `g.delta`",
  },
  {
    t: GossipType.Ping,
    route: GOSSIP_ROUTE,
    fields: "from, addr, seq, m",
    reply: "",
    note: "SWIM probe, answered by `g.ack` with the same `seq`; `m`: piggybacked updates",
  },
  {
    t: GossipType.Ack,
    route: GOSSIP_ROUTE,
    fields: "from, seq, m",
    reply: "",
    note: "SWIM probe answer, direct, or relayed by the helper of a `g.pingreq` with the " +
      "requester's `seq`",
  },
  {
    t: GossipType.PingReq,
    route: GOSSIP_ROUTE,
    fields: "from, seq, target, taddr",
    reply: "",
    note: "SWIM indirect probe: “ping `target` at `taddr` for me and relay its ack”",
  },
] as const satisfies readonly FrameSpec[];

/** The message types of the protocol (the `t` of {@linkcode GossipMessage}). */
export type GossipFrameType = GossipMessage["t"];

export { GOSSIP_PROTOCOL_VERSION };

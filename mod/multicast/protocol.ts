/**
 * The multicast protocol's frames, member to member, over FIFO links whose hello names the
 * sender. {@linkcode MULTICAST_FRAMES} lists every frame with its fields: it is the table in
 * docs/multicast.md (tests/protocol_docs_test.ts compares the two, and checks every frame the
 * members send in a simulated run with crashes, partitions and rejoins against it), and the
 * node's handler map is built from it ({@linkcode MEMBER_FRAME_TYPES}). All frames are
 * one-way: nothing carries a `rid` or gets a reply.
 *
 * @module
 */
import { framesOf, type FrameSpec } from "../wire/mod.ts";

/** Who sends every multicast frame to whom. */
export const MULTICAST_ROUTE = "member → member";

/** Every frame of the multicast protocol. */
export const MULTICAST_FRAMES = [
  {
    t: "mc.data",
    route: MULTICAST_ROUTE,
    fields: "view, msgs, resend?",
    reply: "",
    note: "chat messages `{id, from, seq, lamport, body}` stamped in view `view`, batched per " +
      "turn (at most 50,000 or about 4 MiB); `resend`: again after the link came back up",
  },
  {
    t: "mc.ack",
    route: MULTICAST_ROUTE,
    fields: "view, lamport, recv",
    reply: "",
    note: "“my clock is `lamport`, I hold `recv[s]` messages of each sender `s`”: a message " +
      "is delivered once every member's ack is past its stamp",
  },
  {
    t: "mc.hb",
    route: MULTICAST_ROUTE,
    fields: "view, state, primary, coord, members, delivered, lastView, lastMembers, lamport, recv",
    reply: "",
    note: "heartbeat every `--heartbeat` ms: the sender's view, state and coordinator, its " +
      "delivered count and last installed view, and an ack; silence suspects it",
  },
  {
    t: "mc.propose",
    route: MULTICAST_ROUTE,
    fields: "num, members, base",
    reply: "",
    note: "view change, coordinator to survivors: view `num` of `members`, from base view " +
      "`base`; a member accepts growing numbers only",
  },
  {
    t: "mc.flush",
    route: MULTICAST_ROUTE,
    fields: "num, clock, hold, nextSeq, ownSeq",
    reply: "",
    note: "a survivor's answer to `mc.propose`: its clock, the messages it holds undelivered, " +
      "its next sequence number per sender and its own; it stops acking in the old view",
  },
  {
    t: "mc.install",
    route: MULTICAST_ROUTE,
    fields: "num, members, msgs, clocks, nextSeq, maxClock, joiner?",
    reply: "",
    note: "the new view with the union of the flushed messages and the merged counters; " +
      "`joiner` (`{from, lastId, delivered, epoch}`) when it ends a history transfer",
  },
  {
    t: "mc.installed",
    route: MULTICAST_ROUTE,
    fields: "num",
    reply: "",
    note: "a member installed view `num` (to the coordinator)",
  },
  {
    t: "mc.commit",
    route: MULTICAST_ROUTE,
    fields: "num",
    reply: "",
    note: "`quorum` members installed view `num`: it is primary, its members deliver",
  },
  {
    t: "mc.join",
    route: MULTICAST_ROUTE,
    fields: "known, ownSeq, clock, have, last?, epoch",
    reply: "",
    note: "a restarted or excluded member asks the coordinator in: the highest view it knew, " +
      "its counters, how many messages it delivered and the last one's id",
  },
  {
    t: "mc.history",
    route: MULTICAST_ROUTE,
    fields: "after, entries",
    reply: "",
    note: "history transfer to a joiner, before its `mc.install`: the messages delivered " +
      "after the `after`-th, in order",
  },
  {
    t: "mc.leave",
    route: MULTICAST_ROUTE,
    fields: "",
    reply: "",
    note: "a polite leave (SIGTERM): the others stop waiting for the sender at once",
  },
] as const satisfies readonly FrameSpec[];

/** Every frame type a member receives from another member (what its server dispatches). */
export const MEMBER_FRAME_TYPES: readonly string[] = framesOf(MULTICAST_FRAMES, MULTICAST_ROUTE);

/**
 * The ring protocol's frames between members (each over the persistent link whose hello
 * names the sender) and the one the ring pushes to a lock holder's ctl client.
 * {@linkcode RING_FRAMES} lists every frame with its fields: it is the table in
 * docs/ring.md. tests/protocol_docs_test.ts compares the two, checks the node's handler map
 * against it, and every frame the cores send (the `send` and `request` effects of
 * `RingState`, with the replies of `RingNode`'s handlers) in a simulated run with
 * partitions, pauses and crashes.
 *
 * @module
 */
import type { FrameSpec } from "../wire/mod.ts";

/** The routes of the ring's frames. */
export const RING_ROUTES = {
  /** Member to member. */
  member: "member → member",
  /** A node to the ctl client holding its lock. */
  holder: "node → ctl client",
} as const;

/** Every frame of the ring protocol. */
export const RING_FRAMES = [
  {
    t: "ring.ping",
    route: RING_ROUTES.member,
    fields: "",
    reply: "ring.pong",
    note: "the link heartbeat: unanswered for `heartbeat × fail-after`, the link is closed " +
      "and the member counts as down",
  },
  {
    t: "ring.want",
    route: RING_ROUTES.member,
    fields: "",
    reply: "",
    note: "one-way broadcast of a node with a waiting request (re-announced while it waits): " +
      "the holder adds it to the token's `want` list",
  },
  {
    t: "ring.token",
    route: RING_ROUTES.member,
    fields: "gen, fence, hops, want, from",
    reply: "ring.token.ok {gen}",
    note: "the token: generation, last fence issued, passes, nodes waiting; `from` must be " +
      "the hello's name; a stale or duplicate one is refused with `stale_token {current}`",
  },
  {
    t: "ring.lease",
    route: RING_ROUTES.member,
    fields: "gen, round",
    reply: "ring.lease.ok {ok, maxGen}",
    note: "the holder's renewal, every lease/3: `ok` protects its lease there; refused " +
      "when a newer generation is known (`maxGen`: the highest seen there)",
  },
  {
    t: "ring.prepare",
    route: RING_ROUTES.member,
    fields: "ballot, reason, holding?",
    reply: "ring.prepare.ok {ok, maxGen, leased_ms, promised_ms, wanting}",
    note: "regeneration ballot (`holding`: the generation a holder renumbers); a refusal says " +
      "what stood in the way: a protected lease (`leased_ms`) or a recent promise to another " +
      "proposer (`promised_ms`); `wanting`: that node waits",
  },
  {
    t: "ring.release",
    route: RING_ROUTES.member,
    fields: "ballot",
    reply: "",
    note: "one-way, to every member a lost ballot asked: the promises it got stop refusing " +
      "other proposers at once",
  },
  {
    t: "lock.lost",
    route: RING_ROUTES.holder,
    fields: "fence, gen, id, reason, lease_end, late_ms, held_ms, reachable, majority",
    reply: "",
    note: "pushed to a ctl client that kept its connection after `lock`: the lock is lost " +
      "(`lease_end` wall-clock ms; `reachable` of `majority` needed)",
  },
] as const satisfies readonly FrameSpec[];

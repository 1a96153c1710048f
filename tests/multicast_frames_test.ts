/**
 * The pure parts of the multicast membership protocol: reading member frames
 * (`mod/multicast/frames.ts`) and the heartbeat knowledge of one member
 * (`mod/multicast/peer_states.ts`).
 */
import assert from "node:assert/strict";
import {
  MAX_BATCH,
  type PeerInfo,
  PeerStates,
  readData,
  readFlush,
  readHeartbeat,
  readInstall,
  readJoin,
  readJoinerPart,
  readPropose,
  TotalOrderGroup,
} from "../mod/multicast/mod.ts";
import { type Message, ProtocolError } from "../mod/wire/mod.ts";

const isMember = (n: string) => ["m1", "m2", "m3"].includes(n);

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "accepted";
  } catch (err) {
    return err instanceof ProtocolError ? err.code : String(err);
  }
}

Deno.test("readData() reads messages and resend, and refuses a batch above MAX_BATCH or a bad message", () => {
  const m = { id: "m1:1", from: "m1", seq: 1, lamport: 3, body: "hi" };
  assert.deepEqual(readData({ t: "mc.data", view: 2, msgs: [m], resend: true }), {
    view: 2,
    msgs: [m],
    resend: true,
  });
  assert.equal(readData({ t: "mc.data", view: 2, msgs: [] }).resend, false);
  const many = Array.from({ length: MAX_BATCH + 1 }, () => m);
  assert.equal(codeOf(() => readData({ t: "mc.data", view: 2, msgs: many })), "bad_field");
  assert.equal(
    codeOf(() => readData({ t: "mc.data", view: 2, msgs: [{ ...m, seq: 0 }] })),
    "bad_field",
  );
  assert.equal(codeOf(() => readData({ t: "mc.data", view: -1, msgs: [] })), "bad_field");
});

Deno.test("readHeartbeat() fills what an older sender leaves out and refuses names outside the peers file", () => {
  const { info, ack } = readHeartbeat(
    { t: "mc.hb", view: 4, members: ["m1", "m2"], lamport: 9, recv: { m1: 2 } },
    100,
    isMember,
  );
  assert.deepEqual(info, {
    view: 4,
    state: "member",
    coord: "",
    members: ["m1", "m2"],
    primary: false,
    delivered: 0,
    lastView: 0,
    lastMembers: [],
    at: 100,
  });
  assert.deepEqual(ack, { lamport: 9, recv: { m1: 2 } });
  const bad = { t: "mc.hb", view: 4, members: ["m1", "x9"], lamport: 9, recv: {} };
  assert.equal(codeOf(() => readHeartbeat(bad, 0, isMember)), "bad_field");
  const badLast = { ...bad, members: ["m1"], lastMembers: [7] };
  assert.equal(codeOf(() => readHeartbeat(badLast, 0, isMember)), "bad_field");
});

Deno.test("readFlush() gives back the report a TotalOrderGroup puts in its mc.flush", () => {
  const g = new TotalOrderGroup("m1");
  g.install({
    view: { id: 1, members: ["m1", "m2"] },
    msgs: [],
    clocks: {},
    nextSeq: {},
    maxClock: 0,
  });
  g.send("one");
  g.send("two");
  const report = g.flushReport();
  const frame: Message = { t: "mc.flush", num: 2, ...report };
  assert.deepEqual(readFlush(structuredClone(frame)), { num: 2, report });
  assert.equal(codeOf(() => readFlush({ ...frame, ownSeq: 0 })), "bad_field");
});

Deno.test("readPropose(), readJoin(), readInstall() and readJoinerPart() read what the protocol needs", () => {
  assert.deepEqual(readPropose({ t: "mc.propose", num: 3, members: ["m1"] }, isMember), {
    num: 3,
    members: ["m1"],
    base: -1, // missing: matches no installed view
  });
  assert.equal(
    codeOf(() => readPropose({ t: "mc.propose", num: 0, members: [] }, isMember)),
    "bad_field",
  );
  assert.deepEqual(
    readJoin({ t: "mc.join", known: 2, ownSeq: 5, clock: 7, have: 4, last: "m1:3" }, 50),
    { known: 2, ownSeq: 5, clock: 7, have: 4, last: "m1:3", epoch: 0, at: 50 },
  );
  const install: Message = {
    t: "mc.install",
    num: 5,
    members: ["m1", "m2"],
    msgs: [],
    clocks: { m1: 1 },
    nextSeq: { m1: 2 },
    maxClock: 1,
  };
  const plain = readInstall(install, isMember);
  assert.equal(plain.forJoiner, false);
  assert.deepEqual(plain.inst.view, { id: 5, members: ["m1", "m2"] });
  const joiner = { from: 3, lastId: "m1:3", delivered: { m1: 3 }, epoch: 2 };
  assert.equal(readInstall({ ...install, joiner }, isMember).forJoiner, true);
  assert.deepEqual(readJoinerPart({ ...install, joiner }), joiner);
  assert.equal(codeOf(() => readJoinerPart({ ...install, joiner: [1] })), "bad_field");
  assert.equal(codeOf(() => readJoinerPart({ ...install, joiner: { from: -1 } })), "bad_field");
});

function hb(view: number, state: string, at: number, more: Partial<PeerInfo> = {}): PeerInfo {
  return {
    view,
    state,
    coord: "m1",
    members: ["m1", "m2", "m3"],
    primary: state === "member",
    delivered: 0,
    lastView: view,
    lastMembers: [],
    at,
    ...more,
  };
}

Deno.test("PeerStates: a peer seen in the view that then says joining is rejoining, until its heartbeat goes stale", () => {
  const p = new PeerStates({ self: "m1", failTimeoutMs: 100 });
  const own = { state: "member", view: 3 };
  p.heard("m2", hb(0, "joining", 0), own);
  assert.equal(p.rejoining("m2", 10), false, "not seen in this view yet: it has not installed it");
  p.heard("m2", hb(3, "member", 20), own);
  p.heard("m2", hb(0, "joining", 30), own);
  assert.equal(p.rejoining("m2", 40), true);
  assert.equal(p.rejoining("m2", 200), false, "stale");
  p.newView();
  assert.equal(p.rejoining("m2", 40), false, "a new view starts over");
  assert.equal(p.rejoining("m1", 40), false, "never itself");
});

Deno.test("PeerStates: stuck flushing, unresponsive peers, the known view and a fresh primary", () => {
  const p = new PeerStates({ self: "m1", failTimeoutMs: 100 });
  const own = { state: "member", view: 3 };
  p.heard("m2", hb(3, "flushing", 0), own);
  p.heard("m2", hb(3, "flushing", 50), own); // the first heartbeat counts
  const none = () => false;
  assert.equal(p.stuckFlushing(["m1", "m2"], none, 60, 50), true);
  assert.equal(p.stuckFlushing(["m1", "m2"], (m) => m === "m2", 60, 50), false, "gone");
  assert.equal(p.stuckFlushing(["m1", "m3"], none, 60, 50), false, "not in the view");
  p.unresponsive("m3");
  assert.equal(p.isUnresponsive("m3"), true);
  p.heard("m3", hb(3, "member", 70), own);
  assert.equal(p.isUnresponsive("m3"), false, "a member heartbeat in this view clears it");
  assert.equal(p.knownView(80), 3);
  assert.equal(p.knownView(300), 0, "stale heartbeats show nothing");
  assert.equal(p.freshPrimary(80), "m3");
  assert.equal(p.freshPrimary(80, (n) => n === "m3"), undefined);
  p.forget("m3");
  assert.equal(p.freshPrimary(80), undefined);
});

Deno.test("PeerStates.bootstrapLeader(): the longest history, then file order, among fresh joining peers", () => {
  const p = new PeerStates({ self: "m2", failTimeoutMs: 100 });
  const own = { state: "joining", view: undefined };
  const rank = (n: string) => Number(n.slice(1));
  p.heard("m1", hb(0, "joining", 0, { delivered: 5 }), own);
  p.heard("m3", hb(0, "joining", 0, { delivered: 9 }), own);
  assert.equal(p.bootstrapLeader(10, 5, rank, () => false), "m3");
  assert.equal(p.bootstrapLeader(10, 5, rank, (n) => n === "m3"), "m1", "m3 suspected");
  assert.equal(p.bootstrapLeader(10, 9, rank, () => false), "m2", "equal: m2 before m3");
  assert.equal(p.bootstrapLeader(500, 0, rank, () => false), "m2", "stale peers do not count");
});

import assert from "node:assert/strict";
import {
  FENCE_BASE,
  nextFence,
  parseToken,
  passTarget,
  RingState,
  successorOf,
  type Token,
} from "../mod/ring/mod.ts";
import { ProtocolError } from "../mod/wire/mod.ts";

const MEMBERS = ["n1", "n2", "n3", "n4", "n5"];
const all = () => true;

function token(gen: number, n = 0, want: string[] = [], hops = 0): Token {
  return { gen, fence: gen * FENCE_BASE + n, hops, want };
}

Deno.test("nextFence() continues within a generation and jumps above every older one", () => {
  assert.equal(nextFence(token(1)), FENCE_BASE + 1);
  assert.equal(nextFence(token(1, 41)), FENCE_BASE + 42);
  assert.equal(nextFence(token(2)), 2 * FENCE_BASE + 1);
  assert.ok(nextFence(token(2)) > nextFence(token(1, FENCE_BASE - 2)));
});

Deno.test("passTarget() picks the next waiting live node in ring order, wrapping", () => {
  assert.equal(passTarget(MEMBERS, "n2", new Set(["n1", "n4"]), all), "n4");
  assert.equal(passTarget(MEMBERS, "n4", new Set(["n1", "n3"]), all), "n1");
  assert.equal(passTarget(MEMBERS, "n2", new Set(["n4", "n5"]), (n) => n !== "n4"), "n5");
  assert.equal(passTarget(MEMBERS, "n2", new Set(["n2"]), all), undefined);
  assert.equal(successorOf(MEMBERS, "n5", all), "n1");
  assert.equal(successorOf(MEMBERS, "n1", (n) => n !== "n2"), "n3");
});

Deno.test("RingState grants local requests in arrival order with strictly increasing fences", () => {
  const s = new RingState(MEMBERS, "n1");
  s.create(1, []);
  const a = s.request(0).request;
  const b = s.request(0).request;
  const first = s.next(all, 1);
  assert.equal(first.do, "grant");
  assert.equal(first.do === "grant" && first.grant.id, a.id);
  assert.equal(s.next(all, 2).do, "nothing", "one holder at a time");
  const released = s.release();
  assert.equal(released.fence, FENCE_BASE + 1);
  const second = s.next(all, 3);
  assert.equal(second.do === "grant" && second.grant.id, b.id);
  assert.equal(second.do === "grant" && second.grant.fence, FENCE_BASE + 2);
  s.release();
  assert.equal(s.next(all, 4).do, "park", "nobody wants it: the token parks");
});

Deno.test("RingState serves one local request per visit while other nodes wait", () => {
  const s = new RingState(MEMBERS, "n2");
  assert.equal(s.receiveToken(token(1, 5, ["n4"], 3)), undefined);
  s.request(0);
  s.request(0);
  assert.equal(s.next(all, 0).do, "grant");
  s.release();
  const step = s.next(all, 1);
  assert.deepEqual(step, { do: "pass", to: "n4" });
  const out = s.outgoing();
  assert.deepEqual(out.want.sort(), ["n2", "n4"], "still waiting here: joins want");
  assert.equal(out.hops, 4);
});

Deno.test("RingState refuses stale and duplicate tokens", () => {
  const s = new RingState(MEMBERS, "n3");
  assert.equal(s.receiveToken(token(2)), undefined);
  assert.deepEqual(s.receiveToken(token(1)), { reason: "stale", current: 2 });
  assert.deepEqual(s.receiveToken(token(2)), { reason: "duplicate", current: 2 });
  assert.equal(s.next(all, 0).do, "park");
});

Deno.test("RingState takes back its own token when it returns before the pass acknowledgement", () => {
  const s = new RingState(MEMBERS, "n1");
  s.create(1, ["n2"]);
  assert.deepEqual(s.next(all, 0), { do: "pass", to: "n2" });
  s.passing = true;
  const out = s.outgoing();
  assert.equal(s.receiveToken({ ...out, hops: out.hops + 1, want: [] }), undefined);
  assert.equal(s.passing, false);
  assert.equal(s.token?.hops, 2);
});

Deno.test("RingState ballots: only one of two concurrent regenerations creates a token", () => {
  const a = new RingState(MEMBERS, "n1");
  const b = new RingState(MEMBERS, "n2");
  const c = new RingState(MEMBERS, "n3");
  for (const s of [a, b, c]) s.maxGen = 4; // generation 4 was lost
  const ballotA = a.beginBallot();
  const ballotB = b.beginBallot();
  assert.equal(ballotA, 5);
  assert.equal(ballotB, 5);
  // c hears a first, then b; a and b each hear the other.
  assert.equal(c.prepare(ballotA).ok, true);
  assert.equal(c.prepare(ballotB).ok, false);
  assert.equal(b.prepare(ballotA).ok, false);
  assert.equal(a.prepare(ballotB).ok, false);
  // Neither collected every promise; a retries higher and wins; b's old ballot is dead.
  const retry = a.beginBallot();
  assert.equal([b.prepare(retry).ok, c.prepare(retry).ok].every(Boolean), true);
  assert.equal(a.mayCreate(retry), true);
  assert.equal(b.mayCreate(ballotB), false);
  a.create(retry, []);
  assert.deepEqual(c.receiveToken(token(5)), { reason: "stale", current: 6 });
  assert.equal(c.receiveToken(token(retry)), undefined);
});

Deno.test("RingState: a ballot that reaches the holder renumbers its token and reports holding", () => {
  const h = new RingState(MEMBERS, "n4");
  h.receiveToken(token(3, 7));
  h.request(0);
  assert.equal(h.next(all, 0).do, "grant");
  const reply = h.prepare(9);
  assert.deepEqual(reply, { ok: false, holding: true, maxGen: 9, wanting: false });
  assert.equal(h.token?.gen, 9);
  assert.equal(h.grant?.fence, 3 * FENCE_BASE + 8, "the current grant keeps its fence");
  h.release();
  h.request(0);
  const next = h.next(all, 1);
  assert.equal(next.do === "grant" && next.grant.fence, 9 * FENCE_BASE + 1);
});

Deno.test("RingState: wants heard while the token is away ride along when it arrives", () => {
  const s = new RingState(MEMBERS, "n1");
  s.hearWant("n3");
  s.hearWant("zz"); // not a member: ignored
  s.receiveToken(token(1));
  assert.deepEqual(s.next(all, 0), { do: "pass", to: "n3" });
  const dead = new RingState(MEMBERS, "n1");
  dead.receiveToken(token(1, 0, ["n3"]));
  assert.equal(dead.next((n) => n !== "n3", 0).do, "park", "an unreachable node's want waits");
  assert.deepEqual(dead.next(all, 0), { do: "pass", to: "n3" }, "and is served once reachable");
});

Deno.test("parseToken() rejects malformed tokens with bad_field", () => {
  const good = {
    t: "ring.token",
    gen: 2,
    fence: 2 * FENCE_BASE + 3,
    hops: 4,
    want: ["n1"],
    from: "n2",
  };
  assert.deepEqual(parseToken(good), { gen: 2, fence: 2 * FENCE_BASE + 3, hops: 4, want: ["n1"] });
  const bad: Array<Record<string, unknown>> = [
    { ...good, gen: "2" },
    { ...good, gen: 0 },
    { ...good, fence: 5 },
    { ...good, hops: -1 },
    { ...good, want: "n1" },
    { ...good, want: [1] },
    { ...good, from: undefined },
  ];
  for (const msg of bad) {
    assert.throws(() => parseToken(msg as never), (e: unknown) => {
      assert(e instanceof ProtocolError);
      assert.equal(e.code, "bad_field");
      return true;
    });
  }
});

Deno.test("RingState.release() refuses when not held or with the wrong fence", () => {
  const s = new RingState(MEMBERS, "n1");
  assert.throws(() => s.release(), /does not hold the lock/);
  s.create(1, []);
  s.request(0);
  s.next(all, 0);
  assert.throws(() => s.release(123), /held with fence/);
  assert.equal(s.release(FENCE_BASE + 1).fence, FENCE_BASE + 1);
});

import assert from "node:assert/strict";
import {
  FENCE_BASE,
  HolderLease,
  LeaseAcceptor,
  majorityOf,
  nextFence,
  parseToken,
  passTarget,
  protectMs,
  type RingEffect,
  RingNode,
  RingState,
  type RingStore,
  successorOf,
  type Token,
} from "../mod/ring/mod.ts";
import { EventSink, Logger } from "../mod/events/mod.ts";
import { type Message, ProtocolError } from "../mod/wire/mod.ts";
import { chaos, RingSim, settle } from "./ring_sim.ts";
import { mutualExclusion } from "../mod/lab/checkers.ts";

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

// ---- leases --------------------------------------------------------------------------

Deno.test("majorityOf() is the smallest majority of the configured ring", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(majorityOf), [1, 2, 2, 3, 3, 4]);
});

Deno.test("LeaseAcceptor promises no other node's ballot while a lease it acknowledged lasts", () => {
  const a = new LeaseAcceptor(1_000, { now: 0 });
  assert.deepEqual(a.renew(0, "n1", 1), { ok: true, learned: true });
  const refused = a.promise(500, "n2", 2);
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.leasedMs > 500 && refused.holder === "n1");
  assert.equal(a.maxGen, 1, "a refused ballot is not promised");
  // The holder itself may renumber its own token (holding its generation) meanwhile.
  assert.deepEqual(a.promise(600, "n1", 2, 1), { ok: true });
  assert.deepEqual(a.renew(700, "n1", 1), { ok: false, maxGen: 2 }, "older generations refused");
  assert.deepEqual(a.renew(700, "n1", 2), { ok: true, learned: false });
  // Only after the lease plus the drift allowance does another node get a promise.
  assert.equal(a.promise(700 + protectMs(1_000) - 1, "n2", 3).ok, false);
  assert.deepEqual(a.promise(700 + protectMs(1_000), "n2", 3), { ok: true });
  assert.equal(a.promise(10_000, "n3", 3).ok, false, "each ballot is promised once");
});

Deno.test("LeaseAcceptor: a promise refuses other proposers for a sixth of a lease, until its proposer releases it", () => {
  const a = new LeaseAcceptor(600, { now: 0 });
  assert.deepEqual(a.promise(0, "n1", 1), { ok: true });
  const locked = a.promise(10, "n2", 2);
  assert.ok(
    !locked.ok && locked.promisedMs === 90 && locked.leasedMs === 0 && locked.holder === "n1",
  );
  assert.equal(a.release("n2", 1), false, "only the proposer the promise went to releases it");
  assert.equal(a.release("n1", 2), false, "and only for that ballot");
  assert.equal(a.release("n1", 1), true);
  assert.deepEqual(a.promise(20, "n2", 2), { ok: true }, "released: the next proposer is promised");
  assert.equal(a.maxGen, 2);
  assert.equal(a.promise(30, "n1", 2).ok, false, "a released ballot is not promised again");
  assert.equal(a.promise(30 + a.graceMs, "n1", 3).ok, true, "the window ended");
});

Deno.test("LeaseAcceptor after a restart protects an unknown lease first (only if it ever saw a generation)", () => {
  const fresh = new LeaseAcceptor(1_000, { now: 0, maxGen: 0 });
  assert.equal(fresh.promise(0, "n2", 1).ok, true);
  const restarted = new LeaseAcceptor(1_000, { now: 5_000, maxGen: 7 });
  assert.equal(restarted.promise(5_000, "n2", 8).ok, false);
  assert.equal(restarted.promise(5_000 + protectMs(1_000), "n2", 7).ok, false, "not below maxGen");
  assert.equal(restarted.promise(5_000 + protectMs(1_000), "n2", 8).ok, true);
});

Deno.test("HolderLease counts from the start of a round, so waiting or a pause eats the lease", () => {
  const lease = new HolderLease(1_000, 2);
  const round = lease.begin(100, 1, "n1", 2);
  assert.equal(lease.valid(100), false, "own acknowledgement is not a majority of 3");
  // The acknowledgement is handled 5 s later (the process was stopped meanwhile).
  assert.equal(lease.ack(round, "n2"), true);
  assert.equal(lease.until, 1_100);
  assert.equal(lease.valid(5_100), false);
  const next = lease.begin(5_100, 1, "n1", 2);
  lease.ack(next, "n3");
  assert.equal(lease.valid(6_000), true);
  assert.equal(lease.remaining(6_000), 100);
  lease.clear();
  assert.equal(lease.valid(6_000), false);
});

// ---- the core, driven by hand -----------------------------------------------------------

/** The fence of the current grant (a call, so that assertions do not narrow the type). */
function fenceOf(s: RingState): number | undefined {
  return s.grant?.fence;
}

/** A core of a 3-node ring whose peers answer as told. */
class Driver {
  readonly s: RingState;
  now = 0;
  effects: RingEffect[] = [];

  constructor(self = "n1", options: { maxGen?: number } = {}) {
    this.s = new RingState(["n1", "n2", "n3"], self, { leaseMs: 1_000, now: 0, ...options });
  }

  take(): RingEffect[] {
    const out = [...this.effects, ...this.s.drain()];
    this.effects = [];
    return out;
  }

  requests(t: string): Array<Extract<RingEffect, { do: "request" }>> {
    const all = this.take();
    this.effects = all.filter((e) => !(e.do === "request" && e.msg.t === t));
    return all.filter((e): e is Extract<RingEffect, { do: "request" }> =>
      e.do === "request" && e.msg.t === t
    );
  }

  /** Every peer answers the outstanding `t` requests with `reply(to)`. */
  answer(t: string, reply: (to: string, msg: Message) => Message | undefined): number {
    const reqs = this.requests(t);
    for (const r of reqs) {
      const m = reply(r.to, r.msg);
      if (m) this.s.onReply(this.now, r.id, r.to, m);
      else this.s.onFailure(this.now, r.id, { kind: "timeout" });
    }
    return reqs.length;
  }

  /** Brings up n2 and n3 and makes n1 create the first token with their promises. */
  startWithToken(): void {
    this.s.peerUp(this.now, "n2");
    this.s.peerUp(this.now, "n3");
    this.answer("ring.prepare", () => ({ t: "ring.prepare.ok", ok: true, maxGen: 1 }));
    this.renewAll();
  }

  renewAll(): void {
    this.answer("ring.lease", () => ({ t: "ring.lease.ok", ok: true, maxGen: 1 }));
  }
}

Deno.test("RingState creates the first token with a majority's promises and acts only once leased", () => {
  const d = new Driver();
  d.s.peerUp(0, "n2");
  const prepares = d.requests("ring.prepare");
  assert.equal(prepares.length, 1, "n1 with n2 up is a majority of 3: the ballot goes out");
  assert.equal(prepares[0].msg.ballot, 1);
  d.s.request(0);
  d.s.onReply(0, prepares[0].id, "n2", { t: "ring.prepare.ok", ok: true, maxGen: 1 });
  assert.ok(d.s.token, "token created");
  d.effects = d.take();
  assert.ok(d.effects.some((e) => e.do === "persist" && e.maxGen === 1), "promise persisted");
  assert.equal(d.s.grant, undefined, "no grant before a renewal reached a majority");
  d.s.tick(1);
  d.renewAll();
  d.s.tick(2);
  assert.equal(fenceOf(d.s), FENCE_BASE + 1);
  assert.ok(d.take().some((e) => e.do === "granted"));
});

Deno.test("RingState loses a grant whose lease ran out at the first input after a pause, before anything else", () => {
  const d = new Driver();
  d.startWithToken();
  d.s.request(0);
  assert.ok(d.s.grant);
  d.take();
  // Stopped for 5 s: the next input is a ballot of another node that would be promised.
  const reply = d.s.onPrepare(5_000, "n2", 2);
  const effects = d.take();
  const lost = effects.find((e) => e.do === "lost");
  assert.ok(lost && lost.do === "lost", "lost before answering");
  assert.equal(lost.loss.leaseEnd, 1_000, "held until the lease ended, by its own clock");
  assert.equal(lost.loss.reason, "lease_expired");
  assert.equal(effects.indexOf(lost), 0);
  assert.equal(reply.ok, true, "its lease over, it promises the ballot");
  assert.equal(d.s.token, undefined, "and its generation-1 token is destroyed");
  assert.equal(d.s.grant, undefined);
  assert.throws(() => d.s.release(5_001), /was lost \(lease_expired\)/);
});

Deno.test("RingState: a holder reaching a majority keeps its lease; one that cannot loses it at lease end", () => {
  const d = new Driver();
  d.startWithToken();
  d.s.request(0);
  assert.ok(d.s.grant);
  for (let t = 300; t <= 3_000; t += 300) {
    d.now = t;
    d.s.tick(t);
    d.answer(
      "ring.lease",
      (to) => to === "n2" ? { t: "ring.lease.ok", ok: true, maxGen: 1 } : undefined,
    );
  }
  assert.ok(d.s.grant, "n2's acknowledgements keep it alive");
  // Now nobody answers.
  let lostAt = 0;
  for (let t = 3_100; t <= 6_000 && !lostAt; t += 50) {
    d.now = t;
    d.s.tick(t);
    d.answer("ring.lease", () => undefined);
    if (d.take().some((e) => e.do === "lost")) lostAt = t;
  }
  assert.ok(lostAt > 3_000 && lostAt <= 3_000 + 1_000 + 50, `lost at ${lostAt}`);
  assert.equal(d.s.grant, undefined);
});

Deno.test("RingState refuses stale and duplicate tokens", () => {
  const d = new Driver("n3");
  assert.equal(d.s.onToken(0, "n2", token(2)), undefined);
  assert.deepEqual(d.s.onToken(0, "n2", token(1)), { reason: "stale", current: 2 });
  assert.deepEqual(d.s.onToken(0, "n2", token(2)), { reason: "duplicate", current: 2 });
});

Deno.test("RingState destroys its token when a renewal meets a newer generation after its lease", () => {
  const d = new Driver();
  d.startWithToken();
  d.now = 2_000; // lease over (cut off); then the heal
  d.s.tick(d.now);
  d.answer("ring.lease", () => ({ t: "ring.lease.ok", ok: false, maxGen: 4 }));
  assert.equal(d.s.token, undefined);
  assert.ok(d.take().some((e) => e.do === "event" && e.ev === "token.stale"));
});

Deno.test("RingState renumbers its token when a newer ballot appears while its lease holds", () => {
  const d = new Driver();
  d.startWithToken();
  d.s.request(0);
  const fence = d.s.grant!.fence;
  d.now = 400;
  d.s.tick(d.now);
  // n3 promised someone's failed ballot 3: it refuses generation 1.
  d.answer(
    "ring.lease",
    (to) => to === "n3" ? { t: "ring.lease.ok", ok: false, maxGen: 3 } : undefined,
  );
  const prepares = d.requests("ring.prepare");
  assert.equal(prepares.length, 2);
  assert.equal(prepares[0].msg.ballot, 4);
  assert.equal(prepares[0].msg.holding, 1);
  d.s.onReply(d.now, prepares[0].id, prepares[0].to, { t: "ring.prepare.ok", ok: true, maxGen: 4 });
  assert.equal(d.s.token?.gen, 4);
  assert.equal(d.s.grant?.fence, fence, "the grant survives");
  d.s.release(d.now);
  d.s.request(d.now);
  d.s.tick(d.now);
  d.renewAll();
  assert.equal(d.s.grant?.fence, 4 * FENCE_BASE + 1, "fences jump with the generation");
});

Deno.test("RingState: a lost ballot releases its promises, and a rival's ballot defers our own", () => {
  const d = new Driver("n1");
  d.s.peerUp(0, "n2");
  const prepares = d.requests("ring.prepare");
  assert.equal(prepares.length, 1, "n1 with n2 up is a majority of 3: the ballot goes out");
  // n2 is held by another proposer's promise: n1's ballot cannot win.
  d.s.onReply(0, prepares[0].id, "n2", {
    t: "ring.prepare.ok",
    ok: false,
    maxGen: 0,
    leased_ms: 0,
    promised_ms: 80,
  });
  const released = d.take().filter((e) => e.do === "send" && e.msg.t === "ring.release");
  assert.deepEqual(
    released.map((e) => e.do === "send" && [e.to, e.msg.ballot]),
    [["n2", 1]],
    "everyone asked is told the ballot no longer runs",
  );
  d.s.peerUp(1, "n3");
  assert.deepEqual(d.s.onPrepare(1, "n3", 2), {
    ok: true,
    maxGen: 2,
    leased_ms: 0,
    promised_ms: 0,
    wanting: false,
  }, "our own promise was released too: the rival is promised at once");
  // While the rival may win, n1 starts no ballot of its own, even when its check is due.
  d.s.request(2);
  for (let t = 2; t < d.s.acceptor.graceMs; t += 20) d.s.tick(t);
  assert.equal(d.requests("ring.prepare").length, 0, "no ballot of ours inside the rival's window");
  d.s.onRelease(150, "n3", 2);
  for (let t = 150; t < 2_000 && d.requests("ring.prepare").length === 0; t += 20) d.s.tick(t);
  assert.ok(
    d.s.acceptor.maxGen > 2,
    "the rival released: n1 tried again, above the rival's ballot",
  );
});

Deno.test("RingState serves one local request per visit while other nodes wait, and passes in ring order", () => {
  const d = new Driver("n2");
  d.s.peerUp(0, "n1");
  d.s.peerUp(0, "n3");
  assert.equal(d.s.onToken(0, "n1", token(1, 5, ["n3"], 3)), undefined);
  d.s.request(0);
  d.s.request(0);
  d.renewAll();
  assert.equal(d.s.grant?.fence, FENCE_BASE + 6);
  d.s.release(1);
  const pass = d.requests("ring.token");
  assert.equal(pass.length, 1);
  assert.equal(pass[0].to, "n3");
  assert.deepEqual(
    (pass[0].msg.want as string[]).sort(),
    ["n2", "n3"],
    "n2 still waits: joins want",
  );
  assert.equal(d.s.holding(1), false, "no longer acting as holder once the pass left");
  d.s.onReply(2, pass[0].id, "n3", { t: "ring.token.ok", gen: 1 });
  assert.equal(d.s.token, undefined);
});

// ---- scenarios and randomized schedules in the simulation -------------------------------

function simulate(members: string[], seed: number): RingSim {
  return new RingSim({ members, seed, leaseMs: 300, passTimeoutMs: 200 });
}

function assertSafe(sim: RingSim): void {
  const problems = sim.check();
  assert.deepEqual(problems.slice(0, 5), [], `${problems.length} problems`);
}

Deno.test("sim: lock at n1, cut n1 off: n1 loses it at its lease end, n2 gets it later, one token after heal", () => {
  const sim = simulate(["n1", "n2", "n3"], 7);
  sim.run(500);
  sim.lock("n1", 60_000);
  sim.run(700);
  const first = sim.grants.at(-1)!;
  assert.equal(first.node, "n1");
  sim.cut(["n1"], ["n2", "n3"]);
  sim.lock("n2", 50);
  sim.run(3_000);
  const lost = sim.grants.find((g) => g.node === "n1" && g.how === "lost");
  assert.ok(lost, "n1 was told it lost the lock");
  const n2 = sim.grants.find((g) => g.node === "n2");
  assert.ok(n2, "the majority side got the lock");
  assert.ok(n2.at >= lost.end, `n2 at ${n2.at} before n1's lease end ${lost.end}`);
  assert.ok(n2.fence > lost.fence);
  assert.equal(sim.state("n1")!.grant, undefined);
  sim.heal();
  sim.lock("n1", 10);
  settle(sim, 5_000);
  assertSafe(sim);
  const tokens = sim.tokens();
  assert.equal(tokens.holders.length + tokens.inFlight, 1, JSON.stringify(tokens));
  assert.ok(sim.grants.some((g) => g.node === "n1" && g.at > 3_000), "n1 served after the heal");
});

Deno.test("sim: the holder is paused 10 leases: the ring moves on; on resume it loses the lock at once", () => {
  const sim = simulate(["n1", "n2", "n3"], 11);
  sim.run(500);
  sim.lock("n1", 60_000);
  sim.run(600);
  sim.pause("n1", 3_000);
  sim.load(20, 3_400);
  sim.run(3_400);
  const during = sim.grants.filter((g) => g.node !== "n1");
  assert.ok(during.length > 5, `${during.length} grants while n1 was stopped`);
  sim.run(3_700);
  const lost = sim.grants.find((g) => g.node === "n1" && g.how === "lost");
  assert.ok(lost && lost.end < during[0].at, "n1's lease had ended before the first other grant");
  settle(sim, 6_000);
  assertSafe(sim);
  const tokens = sim.tokens();
  assert.equal(tokens.holders.length + tokens.inFlight, 1, JSON.stringify(tokens));
});

Deno.test("sim: a token parked in a minority is destroyed after the heal; fences keep increasing", () => {
  const sim = simulate(["n1", "n2", "n3", "n4", "n5"], 3);
  sim.run(400);
  sim.lock("n1", 5);
  sim.run(600); // parked at n1
  sim.cut(["n1", "n2"], ["n3", "n4", "n5"]);
  sim.lock("n4", 5);
  sim.run(3_000);
  assert.ok(sim.grants.some((g) => g.node === "n4"));
  assert.ok(sim.state("n1")!.token, "n1 still has its parked generation-1 token (unleased)");
  sim.heal();
  settle(sim, 4_500);
  assertSafe(sim);
  assert.equal(sim.state("n1")!.token?.gen ?? 0, 0, "the old token is gone");
  const tokens = sim.tokens();
  assert.equal(tokens.holders.length + tokens.inFlight, 1, JSON.stringify(tokens));
});

Deno.test("sim: kill -9 of the holder, and of every node: generations and fences continue", () => {
  const sim = simulate(["n1", "n2", "n3"], 5);
  sim.run(400);
  sim.lock("n2", 60_000);
  sim.run(700);
  sim.crash("n2", 300);
  sim.lock("n3", 5);
  sim.run(2_000);
  for (const n of ["n1", "n2", "n3"]) sim.crash(n, 100);
  sim.run(2_200);
  sim.lock("n1", 5);
  settle(sim, 5_000);
  assertSafe(sim);
  const fences = sim.grants.map((g) => g.fence);
  assert.ok(fences.length >= 3);
  assert.ok(Math.floor(fences.at(-1)! / FENCE_BASE) >= 3, `last fence ${fences.at(-1)}`);
});

Deno.test("sim: the holder crashes while every other node contends: a new token soon after its lease ends", () => {
  // Duelling proposers used to lock one another out for many rounds (each holding a
  // promise window of its own); regeneration must follow the dead holder's lease.
  const leaseMs = 3_000;
  for (const size of [3, 5, 7]) {
    const names = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    for (let seed = 1; seed <= 60; seed++) {
      const sim = new RingSim({ members: names, seed, leaseMs, passTimeoutMs: 2_000, loss: 0 });
      sim.run(1_000);
      sim.lock("n2", 1e9);
      sim.run(2_000);
      const holder = sim.grants.at(-1)?.node;
      assert.ok(holder, `${size} nodes, seed ${seed}: a first grant`);
      const crashAt = sim.now;
      sim.crash(holder, 1e9);
      for (const n of names) if (n !== holder) sim.lock(n, 50);
      sim.run(crashAt + 20_000);
      const next = sim.grants.find((g) => g.at > crashAt);
      assert.ok(next, `${size} nodes, seed ${seed}: no grant after the crash`);
      assert.ok(
        next.at - crashAt <= protectMs(leaseMs) + 400,
        `${size} nodes, seed ${seed}: next grant ${
          Math.round(next.at - crashAt)
        } ms after the crash`,
      );
      assertSafe(sim);
    }
  }
});

Deno.test("sim: randomized partitions, one-way cuts, pauses, crashes, loss and drift never give two leases", () => {
  const seeds = Number(Deno.env.get("RING_SIM_SEEDS") ?? 300);
  for (let seed = 1; seed <= seeds; seed++) {
    const { sim, names } = chaos(seed);
    const problems = sim.check();
    assert.deepEqual(problems.slice(0, 3), [], `seed ${seed}: ${problems.length} problems`);
    const tokens = sim.tokens();
    assert.ok(
      tokens.holders.length + tokens.inFlight <= 1,
      `seed ${seed}: tokens after heal ${JSON.stringify(tokens)}`,
    );
    const served = new Set(sim.grants.filter((g) => g.at >= 14_000).map((g) => g.node));
    assert.equal(
      served.size,
      names.length,
      `seed ${seed}: after the heal only ${[...served]} served`,
    );
  }
});

Deno.test("mutualExclusion() finds overlapping holds, uses a lost lock's lease end, and checks fences", () => {
  const ev = (node: string, ts: number, ev: string, fence: number, extra = {}) => ({
    ts,
    node,
    role: "ring",
    ev,
    fence,
    ...extra,
  });
  const ok = [
    ev("n1", 10, "lock.acquired", 1),
    ev("n1", 90, "lock.lost", 1, { lease_end: 40 }), // noticed late (paused), held until 40
    ev("n2", 50, "lock.acquired", 2),
    ev("n2", 60, "lock.released", 2),
  ];
  assert.deepEqual(mutualExclusion(ok), []);
  const overlap = [
    ...ok.slice(0, 1),
    ev("n1", 90, "lock.lost", 1, { lease_end: 55 }),
    ...ok.slice(2),
  ];
  assert.equal(mutualExclusion(overlap).length, 1);
  const open = [ev("n1", 10, "lock.acquired", 1), ev("n2", 50, "lock.acquired", 2)];
  assert.equal(mutualExclusion(open).length, 1, "an open hold lasts");
  assert.deepEqual(mutualExclusion(open, { n1: 20 }), [], "unless its node was killed");
  const fences = [ev("n1", 10, "lock.acquired", 5), ev("n1", 11, "lock.released", 5)];
  fences.push(ev("n2", 20, "lock.acquired", 4), ev("n2", 21, "lock.released", 4));
  assert.equal(mutualExclusion(fences).length, 1);
});

Deno.test("RingNode stops safely when its promise cannot be stored: store.failed, onFatal, nothing sent", async () => {
  const seen: string[] = [];
  const events = new EventSink({ node: "n1", role: "ring", listener: (e) => seen.push(e.ev) });
  const log = new Logger({ node: "n1", role: "ring", level: "error" });
  const failing = {
    maxGen: 0,
    saveMaxGen() {
      throw new Error("attempt to write a readonly database");
    },
    close() {},
  } as unknown as RingStore;
  let fatal: Error | undefined;
  const node = new RingNode({
    self: "n1",
    members: [{ name: "n1", hostname: "127.0.0.1", port: 1, options: {} }],
    events,
    log,
    maxFrame: 1 << 20,
    store: failing,
    onFatal: (err) => (fatal = err),
  });
  try {
    node.start(); // a one-member ring creates its token: the promise must be stored first
    assert.match(fatal?.message ?? "", /Cannot store generation 1 in ring\.db: attempt to write/);
    assert.ok(seen.includes("store.failed"));
    assert.ok(!seen.includes("token.created"), "no token from a promise that is not on disk");
  } finally {
    await node.close();
    events.close();
  }
});

Deno.test("RingState.clockSkipped(): time the monotonic clock missed (a suspend) counts against the lease", () => {
  const d = new Driver();
  d.startWithToken();
  d.s.request(0);
  assert.ok(d.s.grant);
  d.take();
  d.s.clockSkipped(200, 900); // 200 ms on the monotonic clock, 1.1 s on the wall
  const lost = d.take().find((e) => e.do === "lost");
  assert.ok(lost && lost.do === "lost");
  assert.equal(lost.loss.leaseEnd, 100);
  assert.equal(d.s.grant, undefined);
});

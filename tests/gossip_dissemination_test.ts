/**
 * The pure parts of gossip dissemination: the hot rumor set of rumor mongering
 * (`mod/gossip/rumors.ts`) and the digest/delta computations of anti-entropy
 * (`mod/gossip/anti_entropy.ts`).
 */
import assert from "node:assert/strict";
import {
  deltaFor,
  digestOf,
  entriesFor,
  HotRumors,
  seededRandom,
  VersionedStore,
} from "../mod/gossip/mod.ts";

function storeOf(...entries: [string, string, number, string][]): VersionedStore {
  const s = new VersionedStore();
  for (const [key, value, clock, node] of entries) {
    s.apply({ key, value, version: { clock, node }, hops: 0 });
  }
  return s;
}

Deno.test("HotRumors.takeRound() rotates keys through messages and retires each after cap rounds", () => {
  const hot = new HotRumors();
  for (const k of ["a", "b", "c"]) hot.mark(k);
  const id = (k: string) => k;
  assert.deepEqual(hot.takeRound(2, 2, id), ["a", "b"]);
  assert.deepEqual(hot.takeRound(2, 2, id), ["c", "a"], "what was sent went to the back");
  assert.deepEqual(hot.takeRound(2, 2, id), ["b", "c"]);
  assert.equal(hot.size, 0, "each was pushed twice");
  hot.mark("gone");
  assert.deepEqual(hot.takeRound(5, 9, () => undefined), []);
  assert.equal(hot.size, 0, "a key without an entry is dropped");
});

Deno.test("HotRumors.mark() of a hot key restarts its rounds but keeps its turn", () => {
  const hot = new HotRumors();
  hot.mark("a");
  hot.mark("b");
  assert.deepEqual(hot.takeRound(1, 2, (k) => k), ["a"]); // a: 1 round, now behind b
  hot.mark("a");
  assert.deepEqual(hot.takeRound(2, 2, (k) => k), ["b", "a"], "a kept its place behind b");
  // without the mark a would have retired in that round, after its second push
  assert.deepEqual(hot.takeRound(2, 2, (k) => k), ["b", "a"]);
  assert.equal(hot.size, 0);
});

Deno.test("HotRumors.duplicate(): the counter rule stops after k receipts, the coin rule with probability 1/k", () => {
  const hot = new HotRumors();
  hot.mark("a");
  const never = () => 0.99;
  assert.equal(hot.duplicate("a", "counter", 3, never), false);
  assert.equal(hot.duplicate("a", "counter", 3, never), false);
  assert.equal(hot.duplicate("a", "counter", 3, never), true);
  assert.equal(hot.size, 0);
  assert.equal(hot.duplicate("a", "counter", 3, never), false, "no longer hot");
  let stopped = 0;
  const random = seededRandom(7);
  for (let i = 0; i < 4_000; i++) {
    hot.mark("b");
    if (hot.duplicate("b", "coin", 4, random)) stopped++;
  }
  assert.ok(stopped > 850 && stopped < 1_150, `about 1 in 4 stops, got ${stopped} of 4000`);
});

Deno.test("deltaFor() sends what the peer lacks or has older and wants what it has newer", () => {
  const mine = storeOf(["a", "1", 5, "n1"], ["b", "2", 3, "n1"], ["c", "3", 1, "n2"], [
    "d",
    "4",
    2,
    "n1",
  ]);
  const { e, want } = deltaFor(mine, [
    ["a", 5, "n1"], // same version: nothing
    ["b", 3, "n0"], // same clock, lower writer: older there
    ["c", 4, "n1"], // newer there: wanted
    ["x", 1, "n3"], // unknown here: wanted
  ], 1 << 20);
  assert.deepEqual(e.map((t) => t[0]), ["b", "d"]);
  assert.deepEqual(want, ["c", "x"]);
  assert.deepEqual(digestOf(mine), [["a", 5, "n1"], ["b", 3, "n1"], ["c", 1, "n2"], [
    "d",
    2,
    "n1",
  ]]);
});

Deno.test("deltaFor() and entriesFor() stop at the byte budget; entriesFor() skips unknown keys", () => {
  const big = "v".repeat(100);
  const mine = storeOf(["a", big, 1, "n1"], ["b", big, 1, "n1"], ["c", big, 1, "n1"]);
  // each entry costs 100 + 1 + 16 = 117 bytes of the budget
  assert.equal(deltaFor(mine, [], 250).e.length, 2);
  assert.equal(deltaFor(mine, [], 116).e.length, 0);
  assert.deepEqual(entriesFor(mine, ["c", "zz", "a", "b"], 234).map((t) => t[0]), ["c", "a"]);
  assert.deepEqual(entriesFor(mine, ["a"], 1 << 20)[0], ["a", big, 1, "n1", 0]);
});

/** The pure parts of a replica's peer side (`mod/ratings/replica_peers.ts`). */
import assert from "node:assert/strict";
import { isPeerAddress, pushOrder, ringAfter } from "../mod/ratings/mod.ts";

Deno.test("ringAfter() lists the other replicas after this one in sorted ring order, wrapping", () => {
  assert.deepEqual(ringAfter(["rm3", "rm1", "rm4"], "rm2"), ["rm3", "rm4", "rm1"]);
  assert.deepEqual(ringAfter(["rm1", "rm2"], "rm2"), ["rm1"]);
  assert.deepEqual(ringAfter(["rm2", "rm1"], "rm1"), ["rm2"]);
  assert.deepEqual(ringAfter([], "rm1"), []);
});

Deno.test("pushOrder() puts the replicas with a link up first, each part in ring order", () => {
  const up = new Set(["rm4", "rm1"]);
  assert.deepEqual(
    pushOrder(["rm3", "rm4", "rm5", "rm1"], (n) => up.has(n)),
    ["rm4", "rm1", "rm3", "rm5"],
  );
  assert.deepEqual(pushOrder(["rm3", "rm4"], () => false), ["rm3", "rm4"]);
});

Deno.test("isPeerAddress() takes host:port only", () => {
  assert.equal(isPeerAddress("127.0.0.1:7401"), true);
  assert.equal(isPeerAddress("[::1]:7401"), true);
  assert.equal(isPeerAddress("127.0.0.1"), false);
  assert.equal(isPeerAddress(":7401"), false);
  assert.equal(isPeerAddress("host:port"), false);
});

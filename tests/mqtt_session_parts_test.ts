/** The pure pieces of an MQTT session: the delivery window and the subscriptions' match. */
import assert from "node:assert/strict";
import {
  deliveryPacketId,
  DeliveryWindow,
  PACKET_ID_SPACE,
} from "../mod/mom/mqtt/delivery_window.ts";
import { SessionSubscriptions } from "../mod/mom/mqtt/session_subscriptions.ts";

Deno.test("DeliveryWindow: the acknowledged position stops before the oldest unsettled delivery", () => {
  const w = new DeliveryWindow();
  assert.equal(w.next(1), true);
  w.sent(1, 1, deliveryPacketId(1));
  assert.equal(w.next(2), true);
  w.settle(2); // QoS 0
  assert.equal(w.next(3), true);
  w.sent(3, 2, deliveryPacketId(3));
  assert.equal(w.next(3), false, "not after the cursor");
  assert.equal(w.inflight, 2);
  assert.equal(w.acked, 0);
  assert.equal(w.oldest, 1);
  // PUBREC for 3 first: 1 still holds the position back
  w.release(w.get(deliveryPacketId(3))!);
  assert.equal(w.acked, 0);
  assert.equal(w.get(deliveryPacketId(3))!.state, "released");
  // PUBACK for 1: everything up to the cursor is settled
  w.finish(deliveryPacketId(1), w.get(deliveryPacketId(1))!);
  assert.equal(w.acked, 3);
  assert.equal(w.oldest, undefined);
  assert.equal(w.inflight, 1, "3 is in flight until PUBCOMP");
  w.finish(deliveryPacketId(3), w.get(deliveryPacketId(3))!);
  assert.equal(w.inflight, 0);
  assert.equal(w.get(deliveryPacketId(3)), undefined);
});

Deno.test("DeliveryWindow.resume(): a QoS 2 delivery released before a reconnect is in flight until PUBCOMP; settle() with nothing in flight moves the position", () => {
  const w = new DeliveryWindow();
  w.resume(7, 6);
  assert.equal(w.inflight, 1);
  assert.equal(w.get(7)!.state, "released");
  w.next(10);
  w.settle(10);
  assert.equal(w.acked, 10);
  w.finish(7, w.get(7)!);
  assert.equal(w.inflight, 0);
  assert.equal(deliveryPacketId(0), 1);
  assert.equal(deliveryPacketId(PACKET_ID_SPACE - 1), PACKET_ID_SPACE);
  assert.equal(deliveryPacketId(PACKET_ID_SPACE), 1, "ids wrap, never 0");
});

Deno.test("SessionSubscriptions.match(): highest QoS, no-local for own publications, identifiers; the cache follows changes", () => {
  const subs = new SessionSubscriptions();
  const base = { noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
  subs.set({ ...base, filter: "a/+", qos: 1, identifier: 4 });
  subs.set({ ...base, filter: "a/#", qos: 2, noLocal: true });
  assert.deepEqual(subs.match("a/b", false), {
    qos: 2,
    retainAsPublished: false,
    identifiers: [4],
  });
  assert.equal(subs.match("a/b", true).qos, 1, "no-local: not for its own publication");
  assert.equal(subs.match("x", false).qos, -1);
  subs.delete("a/+");
  assert.equal(subs.match("a/b", true).qos, -1, "the cache was cleared");
  subs.set({ ...base, filter: "a/b", qos: 0, retainAsPublished: true });
  assert.equal(subs.match("a/b", false).retainAsPublished, true);
  assert.deepEqual(subs.filters().sort(), ["a/#", "a/b"]);
  assert.equal(subs.has("a/#"), true);
  assert.equal(subs.get("a/b")!.qos, 0);
});

/**
 * The pure pieces of the MOM daemon, without sockets or SQLite: the in-memory inbox, waiting
 * receives, duplicate suppression by publisher, local routing and its early hand-out rule,
 * the outbox stream, the delivery stream, the inbox queue, the answers of a commit.
 */
import assert from "node:assert/strict";
import type { Delivery, InboxEntry, OutboxEntry } from "../mod/mom/daemon_store.ts";
import {
  EARLY_SEND_LIMIT,
  OutboxStream,
  type StreamConnection,
  type StreamLink,
} from "../mod/mom/outbox_stream.ts";
import { PUMP_CHUNK } from "../mod/mom/protocol.ts";
import {
  answerCommitted,
  commitPositions,
  noteDelivered,
  type PendingPublish,
  refuseBatch,
} from "../mod/mom/commit_batch.ts";
import { INBOX_RESERVATION, InboxQueue } from "../mod/mom/inbox_queue.ts";
import {
  ACK_EVERY,
  ACK_LAZY_MS,
  DeliveryStream,
  localUsersOf,
} from "../mod/mom/delivery_stream.ts";
import { committedEntries, entryBytes, InboxMemory, SharedEntry } from "../mod/mom/inbox_memory.ts";
import {
  EARLY_HANDOUT,
  localRecipients,
  mayHandOutEarly,
  quiet,
} from "../mod/mom/local_routing.ts";
import { PublisherSeqs } from "../mod/mom/publisher_seqs.ts";
import { MAX_PUBS_PER_FRAME, pubsFrames, readPubs } from "../mod/mom/pubs_frames.ts";
import { retainedFor } from "../mod/mom/retained.ts";
import { ReceiveWaiters, wakeRows } from "../mod/mom/receive_waiters.ts";
import { SubscriptionIndex } from "../mod/mom/subscriptions.ts";
import { InterestAcks, SubscriptionCounts } from "../mod/mom/interest.ts";
import { decode } from "@msgpack/msgpack";
import { ENCODED, type Message, type PeerSession } from "../mod/wire/mod.ts";

function delivery(users: number[], n: number, bytes = 1): Delivery {
  return { users, id: `d1:${n}`, topic: "T", payload: new Uint8Array(bytes), from: 9 };
}

Deno.test("InboxMemory.after() answers only from the position its memory starts at, and drops acknowledged entries", () => {
  const mem = new InboxMemory();
  assert.equal(mem.after(1, 0, 10), undefined, "no memory: read from the store");
  mem.start(1, 11); // nothing stored from 11 on
  const incoming = [delivery([1], 1), delivery([2], 2), delivery([1, 2], 3)];
  const entries = committedEntries(incoming, 11);
  mem.remember(incoming, entries);
  assert.deepEqual(mem.after(1, 10, 10)!.map((e) => e.seq), [11, 13]);
  assert.equal(mem.after(1, 5, 10), undefined, "positions before the memory start are on disk");
  assert.deepEqual(mem.after(1, 10, 1)!.map((e) => e.seq), [11], "max holds");
  // `from` past `after`: hand out after it, acknowledge only up to `after`
  assert.deepEqual(mem.after(1, 10, 10, 11)!.map((e) => e.seq), [13]);
  const before = mem.bytes;
  assert.deepEqual(mem.after(1, 11, 10)!.map((e) => e.seq), [13]);
  assert.equal(before - mem.bytes, entryBytes(entries[0]), "the acknowledged entry is freed");
  assert.equal(mem.has(2), false, "user 2 never started: nothing kept for it");
  mem.drop(1);
  assert.equal(mem.bytes, 0);
  assert.equal(mem.after(1, 11, 10), undefined);
});

Deno.test("InboxMemory.remember() drops a user past its bounds (it reads from the store again)", () => {
  const mem = new InboxMemory({ maxEntries: 2, maxBytes: 1 << 20, maxTotalBytes: 1 << 20 });
  mem.start(1, 1);
  mem.start(2, 1);
  const incoming = [delivery([1, 2], 1), delivery([1, 2], 2), delivery([1], 3)];
  mem.remember(incoming, committedEntries(incoming, 1));
  assert.equal(mem.has(1), false, "a third unacknowledged entry is over the bound");
  assert.deepEqual(mem.after(2, 0, 10)!.map((e) => e.seq), [1, 2]);
  const small = new InboxMemory({ maxBytes: 200 });
  small.start(1, 1);
  const big = [delivery([1], 1, 500)];
  small.remember(big, committedEntries(big, 1));
  assert.equal(small.has(1), false);
  assert.equal(small.bytes, 0);
});

Deno.test("committedEntries() shares one pre-encoded entry among several recipients", () => {
  const incoming = [delivery([1], 1), delivery([1, 2], 2)];
  const [one, shared] = committedEntries(incoming, 7);
  assert.equal(one instanceof SharedEntry, false);
  assert.equal(shared instanceof SharedEntry, true);
  const bytes = (shared as SharedEntry)[ENCODED]();
  assert.equal((shared as SharedEntry)[ENCODED](), bytes, "encoded once");
  const back = decode(bytes) as Record<string, unknown>;
  assert.equal(back.seq, 8);
  assert.equal(back.id, "d1:2");
  assert.equal("meta" in back, false);
});

Deno.test("PublisherSeqs.fresh() drops a publication at or below the highest from its daemon, pending or committed", () => {
  const seqs = new PublisherSeqs(new Map([["d1", 5]]));
  assert.equal(seqs.fresh("d1:5"), false);
  assert.equal(seqs.fresh("d1:6"), true);
  assert.equal(seqs.fresh("d1:6"), false, "pending counts");
  assert.equal(seqs.fresh("d2:1"), true);
  assert.equal(seqs.fresh("odd"), true, "an id of another shape is never dropped");
  const taken = seqs.takePending();
  assert.deepEqual([...taken], [["d1", 6], ["d2", 1]]);
  assert.equal(seqs.takePending().size, 0);
  seqs.committed(taken);
  assert.equal(seqs.fresh("d2:1"), false, "committed counts");
  assert.equal(seqs.fresh("d1:7"), true);
});

function session(replies: Message[]): PeerSession {
  return {
    reply: (_req: Message, rep: Message) => {
      replies.push(rep);
      return true;
    },
  } as unknown as PeerSession;
}

Deno.test("wakeRows() gives a waiting receive its user's entries after its position, at most max", () => {
  const incoming = [delivery([1], 1), delivery([2], 2), delivery([1, 2], 3), delivery([1], 4)];
  const entries = committedEntries(incoming, 1);
  assert.deepEqual(wakeRows(1, incoming, entries, 0, 10).map((e) => e.seq), [1, 3, 4]);
  assert.deepEqual(wakeRows(2, incoming, entries, 0, 10).map((e) => e.seq), [2, 3]);
  assert.deepEqual(wakeRows(1, incoming, entries, 1, 10).map((e) => e.seq), [3, 4]);
  assert.deepEqual(wakeRows(1, incoming, entries, 0, 2).map((e) => e.seq), [1, 3]);
  const solo = [delivery([1], 1), delivery([1], 2)];
  const soloEntries = committedEntries(solo, 5);
  assert.equal(wakeRows(1, solo, soloEntries, 0, 10), soloEntries, "all of it: no copy");
});

Deno.test("ReceiveWaiters: woken by a commit, answered empty when the user goes, forgotten with the connection", () => {
  const waiters = new ReceiveWaiters();
  const replies: Message[] = [];
  const s = session(replies);
  const other = session([]);
  try {
    waiters.wait(s, { t: "receive" }, { user: 1, after: 0, max: 10, waitMs: 60_000 });
    waiters.wait(s, { t: "receive" }, { user: 2, after: 0, max: 10, waitMs: 60_000 });
    waiters.wait(other, { t: "receive" }, { user: 3, after: 0, max: 10, waitMs: 60_000 });
    const incoming = [delivery([1], 1)];
    waiters.wake([1], incoming, committedEntries(incoming, 1));
    assert.equal(replies.length, 1);
    assert.deepEqual((replies[0].messages as InboxEntry[]).map((e) => e.seq), [1]);
    assert.equal(waiters.has(1), false, "answered receives are gone");
    waiters.dropUser(2);
    assert.deepEqual(replies[1], { t: "messages", messages: [] });
    waiters.sessionClosed(other);
    assert.equal(waiters.has(3), false);
  } finally {
    waiters.close();
  }
});

Deno.test("ReceiveWaiters: a receive whose wait runs out is answered with nothing", async () => {
  const waiters = new ReceiveWaiters();
  const replies: Message[] = [];
  try {
    waiters.wait(session(replies), { t: "receive" }, { user: 1, after: 0, max: 1, waitMs: 1 });
    for (let i = 0; i < 200 && replies.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(replies, [{ t: "messages", messages: [] }]);
    assert.equal(waiters.has(1), false);
  } finally {
    waiters.close();
  }
});

Deno.test("ReceiveWaiters: one timer serves many deadlines; a receive answered before its deadline is not answered again", async () => {
  const waiters = new ReceiveWaiters();
  const replies: Array<[number, Message]> = [];
  const as = (user: number) =>
    ({ reply: (_: Message, m: Message) => replies.push([user, m]) }) as unknown as PeerSession;
  try {
    waiters.wait(as(3), { t: "receive" }, { user: 3, after: 0, max: 1, waitMs: 60_000 });
    waiters.wait(as(2), { t: "receive" }, { user: 2, after: 0, max: 1, waitMs: 20 });
    waiters.wait(as(1), { t: "receive" }, { user: 1, after: 0, max: 1, waitMs: 1 });
    waiters.wait(as(4), { t: "receive" }, { user: 4, after: 0, max: 1, waitMs: 40 });
    waiters.wait(as(5), { t: "receive" }, { user: 5, after: 0, max: 1, waitMs: 80 });
    const incoming = [delivery([4], 1)];
    waiters.wake([4], incoming, committedEntries(incoming, 1));
    // until user 5's wait (80 ms) runs out, past user 4's (40 ms)
    for (let i = 0; i < 400 && !replies.some(([u]) => u === 5); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(replies.map(([u, m]) => [u, (m.messages as InboxEntry[]).length]), [
      [4, 1],
      [1, 0],
      [2, 0],
      [5, 0],
    ], "in deadline order, user 4 once");
    assert.equal(waiters.has(3), true, "a later deadline still waits");
  } finally {
    waiters.close();
  }
});

Deno.test("localRecipients(): local subscribers of the topic, the publisher only with own", () => {
  const subs = new SubscriptionIndex();
  subs.add(1, "a/+", false);
  subs.add(2, "a/#", false);
  subs.add(3, "a/b", true);
  subs.add(4, "a/b", false);
  const users = new Set([1, 2, 3]); // 4 is not (or no longer) local
  assert.deepEqual(localRecipients(subs, users, "a/b", 1)!.sort(), [2, 3]);
  assert.deepEqual(localRecipients(subs, users, "a/b", 3)!.sort(), [1, 2, 3]);
  assert.equal(localRecipients(subs, users, "x", 1), undefined);
  assert.equal(localRecipients(subs, new Set([1]), "a/b", 1), undefined);
});

Deno.test("mayHandOutEarly() never hands a waiting receive an entry ahead of an earlier one of the same commit; quiet() is low load", () => {
  assert.equal(mayHandOutEarly(4, undefined, 5), true);
  assert.equal(mayHandOutEarly(5, undefined, 5), false, "already past it");
  assert.equal(mayHandOutEarly(3, 4, 5), false, "position 4 comes first, uncommitted");
  assert.equal(mayHandOutEarly(4, 4, 5), true, "it has 4 already");
  assert.equal(quiet(4, 0.5), true);
  assert.equal(quiet(5, 10), false);
  assert.equal(quiet(0, 0.1), false);
});

Deno.test("readPubs() reads what pubsFrames() writes, and refuses a frame of the wrong shape", () => {
  const meta = Uint8Array.of(1);
  const [frame] = pubsFrames([
    { seq: 4, user: 1, topic: "a", payload: Uint8Array.of(1), local: true },
    { seq: 5, user: 2, topic: "b", payload: Uint8Array.of(2), local: true, meta },
  ]);
  const p = readPubs(frame);
  assert.equal(p.seq, 4);
  assert.deepEqual(p.users, [1, 2]);
  assert.deepEqual(p.topics, ["a", "b"]);
  assert.equal(p.local, true);
  assert.deepEqual(p.metas, [null, meta]);
  const bad = (m: Message) =>
    assert.throws(() => readPubs(m), (e: Error & { code?: string }) => e.code === "bad_field");
  bad({ t: "pubs", seq: 1, users: [1], topics: ["a"], payloads: [] });
  bad({ t: "pubs", seq: 1, users: [0], topics: ["a"], payloads: [Uint8Array.of(1)] });
  bad({ t: "pubs", seq: 1, users: [1], topics: ["a"], payloads: ["text"] });
  bad({ t: "pubs", seq: 0, users: [], topics: [], payloads: [] });
  const n = MAX_PUBS_PER_FRAME + 1;
  bad({
    t: "pubs",
    seq: 1,
    users: Array(n).fill(1),
    topics: Array(n).fill("a"),
    payloads: Array(n).fill(Uint8Array.of(1)),
  });
});

Deno.test("retainedFor(): matching retained topics, none starting with $ for a leading wildcard", () => {
  const row = (topic: string) => ({
    topic,
    id: `d1:${topic}`,
    payload: Uint8Array.of(1),
    from: 1,
    meta: Uint8Array.of(4),
  });
  const rows = [row("a/b"), row("a/c"), row("$SYS/x"), row("b")];
  assert.deepEqual(retainedFor("a/+", rows).map((m) => m.topic), ["a/b", "a/c"]);
  assert.deepEqual(retainedFor("#", rows).map((m) => m.topic), ["a/b", "a/c", "b"]);
  assert.deepEqual(retainedFor("$SYS/#", rows).map((m) => m.topic), ["$SYS/x"]);
});

Deno.test("SubscriptionCounts: a daemon hears of other daemons' subscriptions only, never its own", () => {
  const c = new SubscriptionCounts();
  assert.equal(c.others("d1"), false, "nobody subscribes");
  c.add("d1", 2);
  assert.equal(c.others("d1"), false, "d1's own subscriptions do not count for d1");
  assert.equal(c.others("d2"), true);
  c.add("d2");
  assert.equal(c.others("d1"), true);
  c.remove("d2");
  assert.equal(c.others("d1"), false);
  c.remove("d1", 5); // more than it has: none left, never negative
  assert.equal(c.others("d2"), false);
  c.add("d3");
  assert.equal(c.others("d2"), true, "the total stayed exact after the over-removal");
});

Deno.test("InterestAcks: a wait ends at an acknowledgement of its notice or a later one, at a detach, or at its bound", async () => {
  const acks = new InterestAcks();
  const order: string[] = [];
  const a1 = acks.wait("d1", 1).then(() => order.push("d1#1"));
  const a2 = acks.wait("d1", 2).then(() => order.push("d1#2"));
  const b = acks.wait("d2", 1).then(() => order.push("d2"));
  acks.ack("d1", 1);
  await a1;
  assert.deepEqual(order, ["d1#1"], "notice 2 is not acknowledged by ok 1");
  acks.ack("d1", 5);
  await a2;
  acks.drop("d2");
  await b;
  assert.deepEqual(order, ["d1#1", "d1#2", "d2"]);
  const t0 = performance.now();
  await acks.wait("d3", 1, 30);
  assert.ok(performance.now() - t0 >= 25, "an unanswered notice waits its bound, then gives up");
  const late = acks.wait("d4", 1);
  acks.drop(); // the broker stops: nothing waits, no timer left behind
  await late;
});

/** A broker connection in memory: records frames; `pending` bytes wait until `drain()`. */
class MemoryLink implements StreamLink {
  frames: Message[] = [];
  pending = 0;
  up = true;
  #drained: Array<() => void> = [];
  readonly #conn: StreamConnection;
  constructor() {
    const drained = () =>
      this.pending === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => this.#drained.push(resolve));
    const pendingBytes = () => this.pending;
    this.#conn = {
      send: (msg) => {
        this.frames.push(msg);
        return this.pending === 0;
      },
      conn: {
        get pendingBytes(): number {
          return pendingBytes();
        },
        drained,
      },
    };
  }
  get client(): StreamConnection | undefined {
    return this.up ? this.#conn : undefined;
  }
  send(msg: Message): boolean {
    return this.up ? this.#conn.send(msg) : false;
  }
  drain(): void {
    this.pending = 0;
    for (const resolve of this.#drained.splice(0)) resolve();
  }
  /** The seqs of the publications sent, in order. */
  seqs(): number[] {
    return this.frames.flatMap((f) => {
      const p = readPubs(f);
      return p.users.map((_, i) => p.seq + i);
    });
  }
}

function outboxEntry(seq: number): OutboxEntry {
  return { seq, user: 1, topic: "T", payload: Uint8Array.of(seq & 255), local: false };
}

/** Polls `cond` for at most `rounds` turns of the event loop. */
async function until(cond: () => boolean, rounds = 1_000): Promise<void> {
  for (let i = 0; i < rounds && !cond(); i++) await new Promise((r) => setTimeout(r, 0));
  assert.ok(cond(), "condition not reached");
}

Deno.test("OutboxStream.sendNow(): one frame per turn, in seq order, never past an unsent durable publication or a congested link", async () => {
  const link = new MemoryLink();
  const stream = new OutboxStream(link, () => [], 0, (t) => assert.fail(t));
  assert.equal(stream.sendNow(outboxEntry(1), 0), true);
  assert.equal(stream.sendNow(outboxEntry(2), 1), true);
  assert.equal(link.frames.length, 0, "sent at the end of the turn");
  await Promise.resolve();
  assert.equal(link.frames.length, 1, "both in one frame");
  assert.deepEqual(link.seqs(), [1, 2]);
  assert.equal(stream.sent, 2);
  assert.equal(stream.sendNow(outboxEntry(4), 3), false, "3 is durable and not sent yet");
  link.pending = EARLY_SEND_LIMIT;
  assert.equal(stream.sendNow(outboxEntry(3), 2), false, "congested");
  link.pending = 0;
  link.up = false;
  assert.equal(stream.sendNow(outboxEntry(3), 2), false, "link down");
  assert.equal(stream.sent, 2);
});

Deno.test("OutboxStream.pump(): streams the committed outbox after `sent` in chunks, waits for a congested link, stops when closed", async () => {
  const link = new MemoryLink();
  const stored = Array.from({ length: PUMP_CHUNK * 2 + 5 }, (_, i) => outboxEntry(i + 1));
  const reads: number[] = [];
  const read = (after: number, max: number) => {
    reads.push(after);
    return stored.filter((e) => e.seq > after).slice(0, max);
  };
  const stream = new OutboxStream(link, read, stored.length, (t) => assert.fail(t));
  stream.sent = 3; // the broker had seen 1..3
  link.pending = 1; // the first round waits for the queued bytes
  stream.pump();
  assert.equal(stream.sendNow(outboxEntry(stored.length + 1), stored.length), false, "pumping");
  await Promise.resolve();
  assert.equal(link.frames.length, 0, "waits for the link to drain");
  link.drain();
  await until(() => stream.sent === stored.length);
  assert.deepEqual(link.seqs(), stored.slice(3).map((e) => e.seq));
  assert.equal(stream.sentStored, stored.length - 3);
  assert.equal(reads[0], 3);
  // caught up: nothing more is read until more is committed
  const before = reads.length;
  stream.pump();
  await until(() => true);
  assert.equal(reads.length, before);
  // more committed than stored (acknowledged meanwhile): caught up without sending
  stream.committed = stored.length + 10;
  stream.pump();
  await until(() => stream.sent === stored.length + 10);
  // a closed stream does not pump
  stream.close();
  stream.committed += 1;
  stream.pump();
  await until(() => true);
  assert.equal(stream.sent, stored.length + 10);
});

function deliver(dseq: number, id: string, users: unknown[]): Message {
  return { t: "deliver", dseq, id, topic: "T", payload: Uint8Array.of(1), from: 7, users };
}

Deno.test("localUsersOf(): the local users a delivery names, whatever the broker's list holds", () => {
  const local = new Set([1, 2]);
  const one = [1];
  assert.equal(localUsersOf(one, local), one, "one local user: the list itself");
  assert.deepEqual(localUsersOf([3, 2, 1], local), [2, 1]);
  assert.deepEqual(localUsersOf([3], local), []);
  assert.deepEqual(localUsersOf("1", local), []);
  assert.deepEqual(localUsersOf(undefined, local), []);
});

Deno.test("DeliveryStream.receive(): a resend by dseq is dropped (and dacked once committed), a publication seen before is dropped by its publisher's seq", () => {
  const sent: Message[] = [];
  const stream = new DeliveryStream({ send: (m) => sent.push(m) > 0, up: true }, {
    lastDseq: 4,
    brokerEpoch: "b",
    seen: new Map([["d2", 10]]),
  });
  const local = new Set([1]);
  assert.equal(stream.receive(deliver(4, "d2:11", [1]), local), undefined, "dseq 4 is stored");
  assert.deepEqual(sent, [{ t: "dack", dseq: 4 }], "its resend is acknowledged again");
  assert.equal(
    stream.receive(deliver(5, "d2:10", [1]), local),
    undefined,
    "seq 10 of d2 is stored",
  );
  assert.equal(stream.received, 5);
  const d = stream.receive(deliver(6, "d2:11", [1, 3]), local)!;
  assert.deepEqual(d.users, [1]);
  assert.equal(d.id, "d2:11");
  assert.equal(stream.receive(deliver(7, "d3:1", [3]), local), undefined, "no local user");
  assert.equal(stream.received, 7);
  sent.length = 0;
  assert.equal(stream.receive(deliver(6, "d2:11", [1]), local), undefined);
  assert.deepEqual(sent, [], "not everything received is committed: no dack yet");
  assert.throws(() => stream.receive({ t: "deliver", dseq: 0 }, local));
  stream.close();
});

Deno.test("DeliveryStream.commit(): a dack at once after ACK_EVERY deliveries, else one lazily; a new broker incarnation starts afresh", async () => {
  const sent: Message[] = [];
  const link = { send: (m: Message) => sent.push(m) > 0, up: true };
  const stream = new DeliveryStream(link, { lastDseq: 0, brokerEpoch: "b1", seen: new Map() });
  stream.commit(ACK_EVERY);
  assert.deepEqual(sent, [{ t: "dack", dseq: ACK_EVERY }]);
  stream.commit(ACK_EVERY + 1);
  stream.commit(ACK_EVERY + 2);
  assert.equal(sent.length, 1, "a small batch waits");
  await until(() => sent.length === 2, ACK_LAZY_MS * 50);
  assert.deepEqual(sent[1], { t: "dack", dseq: ACK_EVERY + 2 }, "one dack for both");
  assert.equal(stream.attached({ t: "attached", broker: "b1" }), false, "same incarnation");
  assert.equal(stream.attached({ t: "attached", broker: "b2", acked: 3 }), true);
  assert.equal(stream.committed, 3);
  assert.equal(stream.received, 3);
  assert.equal(stream.brokerEpoch, "b2");
  stream.commit(3 + ACK_EVERY - 1);
  stream.close(); // (the op sanitizer fails this test if the lazy dack's timer outlived it)
  assert.equal(sent.length, 2);
});

Deno.test("InboxQueue: positions after the store's, an early hand-out at low load only after the user's earlier entry of the commit, reserved on disk", async () => {
  const metas: Record<string, number>[] = [];
  const store = { nextPosition: 11, setMeta: (v: Record<string, number>) => metas.push(v) };
  const waiters = new ReceiveWaiters();
  const inbox = new InboxQueue(store, waiters);
  const replies: Message[] = [];
  try {
    assert.equal(inbox.queue(delivery([1, 2], 1)), 11);
    assert.equal(inbox.length, 1);
    assert.equal(inbox.take().length, 1);
    store.nextPosition = 12;
    // the last commit ran just now: early hand-outs wait until it is quiet
    const taken = performance.now();
    await until(() => performance.now() - taken > EARLY_HANDOUT.quietMs);
    waiters.wait(session(replies), { t: "receive" }, {
      user: 1,
      after: 11,
      max: 10,
      waitMs: 60_000,
    });
    inbox.queueLocal(delivery([1], 2), true, false);
    assert.equal(replies.length, 1, "handed out before the commit");
    assert.deepEqual((replies[0].messages as InboxEntry[]).map((e) => e.seq), [12]);
    assert.deepEqual(metas, [{ inbox_reserved: 12 + INBOX_RESERVATION }]);
    // a receive after 11 while 12 is in this commit: 13 would skip 12, so it waits
    waiters.wait(session(replies), { t: "receive" }, {
      user: 1,
      after: 11,
      max: 10,
      waitMs: 60_000,
    });
    inbox.queueLocal(delivery([1], 3), true, false);
    assert.equal(replies.length, 1);
    assert.equal(waiters.has(1), true);
    // a transient one, not early: queued; its position is reserved (already, within the
    // reservation)
    inbox.queueLocal(delivery([3], 4), false, true);
    assert.equal(inbox.length, 3);
    assert.equal(metas.length, 1);
  } finally {
    waiters.close();
  }
});

/** A session recording replies and error replies. */
function recorder(): { s: PeerSession; replies: Message[]; errors: string[] } {
  const replies: Message[] = [];
  const errors: string[] = [];
  const s = {
    reply: (_req: Message, rep: Message) => replies.push(rep) > 0,
    replyError: (_req: Message, err: Error & { code?: string }) => errors.push(err.code ?? ""),
  } as unknown as PeerSession;
  return { s, replies, errors };
}

Deno.test("commit_batch: a commit's meta values, its answers (or its refusal), the receives it wakes", () => {
  const r = recorder();
  const out: PendingPublish[] = [
    { entry: outboxEntry(7), session: r.s, rid: 1 },
    { entry: outboxEntry(8), session: r.s, rid: undefined, meta: { "mqtt.q2.1.9": 1 } },
  ];
  assert.deepEqual(commitPositions(out, 5, 5), { last_seq: 8, "mqtt.q2.1.9": 1 });
  assert.deepEqual(commitPositions([], 6, 5), { last_dseq: 6 });
  const emitted: string[] = [];
  const events = { active: true, emit: (t: string) => void emitted.push(t) };
  answerCommitted(out, [{ session: r.s, msg: { t: "flush" } }], "d1", events);
  assert.deepEqual(r.replies, [{ t: "published", id: "d1:7" }, { t: "flushed" }]);
  assert.deepEqual(emitted, ["msg.published", "msg.published"]);
  refuseBatch(out, [{ session: r.s, msg: { t: "flush" } }], new Error("disk full"));
  assert.deepEqual(r.errors, ["store_failed", "store_failed"], "the one with a rid, the flush");
  const woken = new Set<number>();
  const count = noteDelivered(
    [delivery([1, 2], 1), delivery([3], 2)],
    new Set([2, 3]),
    { active: false, emit: () => assert.fail("no listener: no event") },
    woken,
  );
  assert.equal(count, 3);
  assert.deepEqual([...woken], [2, 3]);
});

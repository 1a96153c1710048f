import assert from "node:assert/strict";
import { seededRandom } from "../mod/random/mod.ts";
import {
  type Ack,
  type ChatMessage,
  compareStamp,
  type FlushReport,
  mergeFlushes,
  TotalOrderGroup,
} from "../mod/multicast/mod.ts";

type Frame =
  | { kind: "data"; view: number; msgs: ChatMessage[] }
  | { kind: "ack"; view: number; ack: Ack };

/**
 * An in-memory group: per-pair FIFO queues, frames taken from a random non-empty queue,
 * each node batching its sends and acks per "tick" like the daemon does.
 */
class SimGroup {
  readonly nodes = new Map<string, TotalOrderGroup>();
  readonly delivered = new Map<string, ChatMessage[]>();
  readonly queues = new Map<string, Frame[]>();
  readonly pending = new Map<string, ChatMessage[]>();
  readonly alive = new Set<string>();
  /** Nodes stuck in a flush: they neither tick nor read (frames wait, like the buffer). */
  readonly frozen = new Set<string>();
  replies = new Map<string, string>();

  constructor(readonly names: string[], readonly random: () => number) {
    for (const n of names) {
      this.nodes.set(n, new TotalOrderGroup(n));
      this.delivered.set(n, []);
      this.pending.set(n, []);
      this.alive.add(n);
    }
    const view = { id: 1, members: names };
    const reports = new Map(names.map((n) => [n, this.nodes.get(n)!.flushReport()]));
    const inst = mergeFlushes(view, reports);
    for (const g of this.nodes.values()) g.install(inst);
  }

  send(name: string, body: string): ChatMessage {
    const m = this.nodes.get(name)!.send(body);
    this.pending.get(name)!.push(m);
    return m;
  }

  /** One node's tick: data out, ack out, deliveries (each may trigger a causal reply). */
  tick(name: string): void {
    if (this.frozen.has(name)) return;
    const g = this.nodes.get(name)!;
    const members = g.view!.members.filter((m) => m !== name);
    const out = this.pending.get(name)!.splice(0);
    const view = g.view!.id;
    if (out.length) {
      for (const to of members) this.#queue(name, to).push({ kind: "data", view, msgs: out });
    }
    const ack = g.takeAck();
    if (ack) { for (const to of members) this.#queue(name, to).push({ kind: "ack", view, ack }); }
    for (const m of g.deliver()) {
      this.delivered.get(name)!.push(m);
      if (m.body.startsWith("q") && this.random() < 0.3) {
        const reply = this.send(name, `re ${m.id}`);
        this.replies.set(reply.id, m.id);
      }
    }
  }

  /** Delivers the head frame of a random non-empty queue; false when all are empty. */
  step(): boolean {
    const ready = (to: string) => this.alive.has(to) && !this.frozen.has(to);
    const busy = [...this.queues].filter(([k, q]) => q.length > 0 && ready(k.split(">")[1]));
    if (busy.length === 0) return false;
    const [key, q] = busy[Math.floor(this.random() * busy.length)];
    const [from, to] = key.split(">");
    const frame = q.shift()!;
    const g = this.nodes.get(to)!;
    // Like the daemon: frames of an older view are in that view's flush (or from the dead).
    if (!g.isMember(from) || frame.view < g.view!.id) return true;
    if (frame.kind === "data") {
      for (const m of frame.msgs) assert.deepEqual(g.receive(from, m), { ok: true });
    } else g.observe(from, frame.ack);
    return true;
  }

  /** Runs until no frame moves and nothing is left to deliver. */
  drain(): void {
    for (let i = 0; i < 1_000_000; i++) {
      for (const n of this.alive) this.tick(n);
      if (!this.step() && [...this.alive].every((n) => this.pending.get(n)!.length === 0)) {
        for (const n of this.alive) this.tick(n);
        if (
          [...this.queues].every(([k, q]) => q.length === 0 || !this.alive.has(k.split(">")[1]))
        ) {
          return;
        }
      }
    }
    throw new Error("simulation did not settle");
  }

  /** Crashes `name`: each of its outgoing queues keeps only a random FIFO prefix. */
  crash(name: string): void {
    this.alive.delete(name);
    for (const [key, q] of this.queues) {
      if (key.startsWith(`${name}>`)) q.splice(Math.floor(this.random() * (q.length + 1)));
    }
    this.pending.get(name)!.length = 0;
  }

  /** The survivors' view change: flush reports merged by the coordinator, then installed. */
  /**
   * Returns how many messages survivors adopted from each other's reports. With
   * `installAt`, only those nodes get the install (the coordinator died while sending it);
   * the others stay frozen in the flush.
   */
  viewChange(id: number, installAt?: string[]): number {
    const members = this.names.filter((n) => this.alive.has(n));
    for (const n of members) this.tick(n); // stamped data leaves in the old view
    const reports = new Map(members.map((n) => [n, this.nodes.get(n)!.flushReport()]));
    const inst = mergeFlushes({ id, members }, reports);
    let adopted = 0;
    for (const n of members) {
      if (installAt && !installAt.includes(n)) {
        this.frozen.add(n);
        continue;
      }
      this.frozen.delete(n);
      const g = this.nodes.get(n)!;
      adopted += inst.msgs.filter((m) => m.seq >= g.nextSeqOf(m.from)).length;
      g.install(inst);
    }
    return adopted;
  }

  #queue(from: string, to: string): Frame[] {
    const key = `${from}>${to}`;
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, q = []);
    return q;
  }
}

function assertFifo(seq: ChatMessage[]): void {
  const last = new Map<string, number>();
  for (const m of seq) {
    assert.ok(m.seq > (last.get(m.from) ?? 0), `${m.id} out of sender order`);
    last.set(m.from, m.seq);
  }
}

function runRandom(sim: SimGroup, sends: number): void {
  for (let i = 0; i < sends; i++) {
    const alive = [...sim.alive];
    sim.send(alive[Math.floor(sim.random() * alive.length)], `q${i}`);
    const moves = Math.floor(sim.random() * 6);
    for (let k = 0; k < moves; k++) {
      if (sim.random() < 0.5) sim.tick(alive[Math.floor(sim.random() * alive.length)]);
      else sim.step();
    }
  }
}

Deno.test("TotalOrderGroup delivers one identical, sender-FIFO, causal order under random interleavings", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const sim = new SimGroup(["a", "b", "c", "d"].slice(0, 2 + (seed % 3)), seededRandom(seed));
    runRandom(sim, 120);
    sim.drain();
    const seqs = [...sim.delivered.values()];
    const total = [...sim.nodes.values()].reduce((n, g) => n + g.ownSeq - 1, 0);
    for (const seq of seqs) {
      assert.deepEqual(seq.map((m) => m.id), seqs[0].map((m) => m.id), `seed ${seed}`);
      assert.equal(seq.length, total, `seed ${seed}: every message delivered`);
      assertFifo(seq);
      for (let i = 1; i < seq.length; i++) assert.ok(compareStamp(seq[i - 1], seq[i]) < 0);
      const pos = new Map(seq.map((m, i) => [m.id, i]));
      for (const [reply, original] of sim.replies) {
        assert.ok(
          pos.get(original)! < pos.get(reply)!,
          `seed ${seed}: ${reply} before ${original}`,
        );
      }
    }
  }
});

Deno.test("TotalOrderGroup survivors of a crash agree on the dead member's messages after a flush", () => {
  let adoptedTotal = 0;
  for (let seed = 100; seed < 160; seed++) {
    const random = seededRandom(seed);
    const sim = new SimGroup(["a", "b", "c", "d"], random);
    runRandom(sim, 60);
    const victim = ["a", "b", "c", "d"][seed % 4];
    const before = sim.delivered.get(victim)!.map((m) => m.id);
    sim.crash(victim);
    // Survivors keep exchanging (and possibly delivering) until they stall on the dead one.
    for (let i = 0; i < 200; i++) {
      for (const n of sim.alive) sim.tick(n);
      sim.step();
    }
    adoptedTotal += sim.viewChange(2);
    runRandom(sim, 30);
    sim.drain();
    const seqs = [...sim.alive].map((n) => sim.delivered.get(n)!.map((m) => m.id));
    for (const seq of seqs) assert.deepEqual(seq, seqs[0], `seed ${seed}`);
    assertFifo(sim.delivered.get([...sim.alive][0])!);
    // What the dead member delivered before it died is a prefix of the survivors' order.
    assert.deepEqual(seqs[0].slice(0, before.length), before, `seed ${seed}`);
    for (const g of sim.nodes.values()) if (sim.alive.has(g.self)) assert.equal(g.held, 0);
  }
  // The flush mattered: some survivors lacked messages of the dead that others held.
  assert.ok(adoptedTotal > 0);
});

Deno.test("TotalOrderGroup survivors agree when the coordinator dies while sending the install", () => {
  for (let seed = 300; seed < 340; seed++) {
    const random = seededRandom(seed);
    const sim = new SimGroup(["a", "b", "c", "d"], random);
    runRandom(sim, 50);
    sim.crash("d");
    for (let i = 0; i < 100; i++) {
      for (const n of sim.alive) sim.tick(n);
      sim.step();
    }
    // a coordinates view 2 of a, b, c; its install reaches a and b, then a dies.
    sim.viewChange(2, ["a", "b"]);
    for (let i = 0; i < 200; i++) {
      for (const n of sim.alive) sim.tick(n);
      sim.step();
    }
    const aDelivered = sim.delivered.get("a")!.map((m) => m.id);
    sim.crash("a");
    for (let i = 0; i < 200; i++) {
      for (const n of sim.alive) sim.tick(n);
      sim.step();
    }
    sim.viewChange(3); // b coordinates view 3 of b, c; c was still frozen in view 2's flush
    runRandom(sim, 20);
    sim.drain();
    const b = sim.delivered.get("b")!.map((m) => m.id);
    const c = sim.delivered.get("c")!.map((m) => m.id);
    assert.deepEqual(c, b, `seed ${seed}`);
    assert.deepEqual(b.slice(0, aDelivered.length), aDelivered, `seed ${seed}`);
  }
});

Deno.test("TotalOrderGroup.receive() refuses forged, duplicate, out-of-order and stale messages", () => {
  const a = new TotalOrderGroup("a");
  const b = new TotalOrderGroup("b");
  const inst = mergeFlushes(
    { id: 1, members: ["a", "b"] },
    new Map([["a", a.flushReport()], ["b", b.flushReport()]]),
  );
  a.install(inst);
  b.install(inst);
  const m1 = a.send("one");
  const m2 = a.send("two");
  assert.deepEqual(b.receive("a", m1), { ok: true });
  assert.equal((b.receive("a", m1) as { reason: string }).reason, "duplicate");
  assert.equal((b.receive("c", m2) as { reason: string }).reason, "not_in_view");
  assert.equal((b.receive("a", { ...m2, from: "c" }) as { reason: string }).reason, "forged");
  assert.equal((b.receive("a", { ...m2, id: "a:9" }) as { reason: string }).reason, "forged");
  assert.equal(
    (b.receive("a", { ...m2, seq: 3, id: "a:3" }) as { reason: string }).reason,
    "gap",
  );
  assert.equal(
    (b.receive("a", { ...m2, lamport: m1.lamport }) as { reason: string }).reason,
    "stale_lamport",
  );
  assert.deepEqual(b.receive("a", m2), { ok: true });
  // a:2 (stamp 2) shows nothing below it can still come from a, so a:1 goes; a:2 waits
  // for something from a stamped above it.
  assert.deepEqual(b.deliver().map((m) => m.id), ["a:1"]);
  assert.deepEqual(b.deliver(), []);
  b.observe("a", a.takeAck()!);
  assert.deepEqual(b.deliver().map((m) => m.id), ["a:2"]);
});

Deno.test("mergeFlushes() unions held messages, takes the largest counters and clocks", () => {
  const msg = (from: string, seq: number, lamport: number): ChatMessage => ({
    id: `${from}:${seq}`,
    from,
    seq,
    lamport,
    body: "x",
  });
  const inst = mergeFlushes(
    { id: 3, members: ["a", "b", "e"] },
    new Map<string, FlushReport>([
      ["a", {
        clock: 9,
        hold: [msg("c", 2, 5), msg("c", 3, 7)],
        nextSeq: { c: 4, a: 3 },
        ownSeq: 3,
      }],
      ["b", { clock: 12, hold: [msg("c", 2, 5)], nextSeq: { c: 3, b: 6 }, ownSeq: 6 }],
    ]),
    new Map([["e", { ownSeq: 20001, clock: 4 }]]),
  );
  assert.deepEqual(inst.msgs.map((m) => m.id), ["c:2", "c:3"]);
  assert.deepEqual(inst.nextSeq, { c: 4, a: 3, b: 6, e: 20001 });
  assert.equal(inst.maxClock, 12);
  assert.deepEqual(inst.clocks, { a: 9, b: 12, e: 12 });
});

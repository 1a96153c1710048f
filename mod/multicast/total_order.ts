/**
 * The ordering core of the multicast role, free of sockets and timers: Lamport clock,
 * hold-back queue, acknowledgement state and the delivery condition, plus the state a
 * node reports in a view-change flush and how an installed view is applied.
 *
 * @module
 */
import { type ChatMessage, compareStamp, messageId } from "./message.ts";

/** A group view: its number and its members (peers-file order). */
export interface View {
  /** View number; grows by at least one at every change. */
  id: number;
  /** Member names. */
  members: string[];
}

/** Why an incoming message was refused. */
export type RejectReason =
  | "not_in_view"
  | "forged"
  | "duplicate"
  | "gap"
  | "stale_lamport";

/** Outcome of {@linkcode TotalOrderGroup.receive}. */
export type ReceiveResult = { ok: true } | { ok: false; reason: RejectReason; detail: string };

/** An acknowledgement: "my clock is `lamport`; I hold `recv[s]` messages of each sender s". */
export interface Ack {
  /** Sender's Lamport clock; everything it sends later is stamped higher. */
  lamport: number;
  /** Highest contiguous sequence number received, per sender. */
  recv: Record<string, number>;
}

/** What one member reports to the coordinator in a view-change flush. */
export interface FlushReport {
  /** The member's Lamport clock. */
  clock: number;
  /** Messages it holds but has not delivered. */
  hold: ChatMessage[];
  /** Next expected sequence number per sender. */
  nextSeq: Record<string, number>;
  /** Its own next sequence number. */
  ownSeq: number;
}

/** A view as installed by every member: the agreed undelivered messages and counters. */
export interface Installation {
  /** The new view. */
  view: View;
  /** Union of every survivor's undelivered messages. */
  msgs: ChatMessage[];
  /** Each member's clock at the flush (the largest for joiners). */
  clocks: Record<string, number>;
  /** Next sequence number per sender after the union. */
  nextSeq: Record<string, number>;
  /** The largest clock reported. */
  maxClock: number;
}

/**
 * Total-order multicast state of one node (ISIS-style Lamport ordering with batched acks).
 *
 * Each message carries the stamp `(lamport, from)`; stamps are totally ordered. A node
 * holds received messages in a queue sorted by stamp and delivers the head `m` once, for
 * every other member `q` of the view: (1) something stamped above `m` arrived from `q`
 * (a message, ack or heartbeat; links are FIFO and `q`'s clock only grows, so nothing
 * stamped below `m` can still come from `q`), and (2) `q` has acknowledged holding `m`
 * itself. (2) makes every delivered message known to every member, so a crash never
 * leaves a message delivered by one node and unknown to the survivors.
 */
export class TotalOrderGroup {
  /** This node's name. */
  readonly self: string;
  #clock = 0;
  #view: View | undefined;
  #members = new Set<string>();
  #nextSeq = new Map<string, number>();
  #deliveredSeq = new Map<string, number>();
  #ownSeq = 1;
  #hold: ChatMessage[] = [];
  #lastSeen = new Map<string, number>();
  #recvOf = new Map<string, Map<string, number>>();
  #needAck = false;
  #credited: ChatMessage[] = [];

  constructor(self: string, options: { ownSeq?: number } = {}) {
    this.self = self;
    this.#ownSeq = Math.max(1, options.ownSeq ?? 1);
  }

  /** The Lamport clock. */
  get clock(): number {
    return this.#clock;
  }

  /** The installed view, if any. */
  get view(): View | undefined {
    return this.#view;
  }

  /** Messages received and not yet delivered. */
  get held(): number {
    return this.#hold.length;
  }

  /** This node's next own sequence number. */
  get ownSeq(): number {
    return this.#ownSeq;
  }

  /** Whether `name` is a member of the installed view. */
  isMember(name: string): boolean {
    return this.#members.has(name);
  }

  /** Next expected sequence number of `from`. */
  nextSeqOf(from: string): number {
    return this.#nextSeq.get(from) ?? 1;
  }

  /** Highest sequence number of `from` that `member` has acknowledged holding. */
  recvOf(member: string, from: string): number {
    return this.#recvOf.get(member)?.get(from) ?? 0;
  }

  /** Own messages still held back, with sequence numbers above `after` (for resending). */
  ownHeldAfter(after: number): ChatMessage[] {
    return this.#hold.filter((m) => m.from === this.self && m.seq > after)
      .sort((a, b) => a.seq - b.seq);
  }

  /** Stamps a new message of this node and holds it back. Requires an installed view. */
  send(body: string): ChatMessage {
    if (!this.#view) throw new Error("Cannot send: no view installed");
    this.#clock++;
    const seq = this.#ownSeq++;
    const msg: ChatMessage = {
      id: messageId(this.self, seq),
      from: this.self,
      seq,
      lamport: this.#clock,
      body,
    };
    this.#nextSeq.set(this.self, seq + 1);
    this.#insert(msg);
    this.#needAck = true;
    return msg;
  }

  /**
   * Takes a message that arrived from member `link` (the authenticated sender). Checks it
   * is from a view member, not forged, the next of its sender, and stamped above
   * everything `link` sent before.
   */
  receive(link: string, msg: ChatMessage): ReceiveResult {
    if (!this.#members.has(link)) {
      return { ok: false, reason: "not_in_view", detail: `${link} is not in the view` };
    }
    if (msg.from !== link) {
      return { ok: false, reason: "forged", detail: `message from ${msg.from} sent by ${link}` };
    }
    if (msg.id !== messageId(msg.from, msg.seq)) {
      return {
        ok: false,
        reason: "forged",
        detail: `id ${msg.id} does not match ${msg.from}:${msg.seq}`,
      };
    }
    const next = this.nextSeqOf(link);
    if (msg.seq < next) {
      return { ok: false, reason: "duplicate", detail: `${msg.id} was already received` };
    }
    if (msg.seq > next) {
      return {
        ok: false,
        reason: "gap",
        detail: `${msg.id} arrived before ${messageId(link, next)}`,
      };
    }
    const seen = this.#lastSeen.get(link) ?? 0;
    if (msg.lamport <= seen) {
      return {
        ok: false,
        reason: "stale_lamport",
        detail: `${msg.id} stamped ${msg.lamport}, not above ${seen} already seen from ${link}`,
      };
    }
    this.#clock = Math.max(this.#clock, msg.lamport) + 1;
    this.#lastSeen.set(link, msg.lamport);
    this.#nextSeq.set(link, msg.seq + 1);
    this.#setRecv(link, link, msg.seq);
    this.#insert(msg);
    this.#needAck = true;
    return { ok: true };
  }

  /** Takes an ack or heartbeat of member `link`. Ignored for non-members. */
  observe(link: string, ack: Ack): void {
    if (!this.#members.has(link)) return;
    if (ack.lamport > (this.#lastSeen.get(link) ?? 0)) this.#lastSeen.set(link, ack.lamport);
    if (ack.lamport > this.#clock) this.#clock = ack.lamport;
    for (const [from, seq] of Object.entries(ack.recv)) this.#setRecv(link, from, seq);
  }

  /** The ack to multicast now, if anything was sent or received since the last one. */
  takeAck(): Ack | undefined {
    if (!this.#needAck || !this.#view) return undefined;
    this.#needAck = false;
    this.#clock++;
    return { lamport: this.#clock, recv: this.recvVector() };
  }

  /** The current clock and receive vector (for heartbeats; does not tick the clock). */
  heartbeat(): Ack {
    return { lamport: this.#clock, recv: this.recvVector() };
  }

  /** Highest contiguous sequence number received per sender. */
  recvVector(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [from, next] of this.#nextSeq) out[from] = next - 1;
    return out;
  }

  /** Removes and returns every message that may be delivered now, in delivery order. */
  deliver(): ChatMessage[] {
    const out: ChatMessage[] = [];
    if (!this.#view) return out;
    let i = 0;
    for (; i < this.#hold.length; i++) {
      const m = this.#hold[i];
      if (!this.#deliverable(m)) break;
      this.#deliveredSeq.set(m.from, m.seq);
      out.push(m);
    }
    if (i > 0) this.#hold.splice(0, i);
    return out;
  }

  /** Highest delivered sequence number per sender. */
  deliveredVector(): Record<string, number> {
    return Object.fromEntries(this.#deliveredSeq);
  }

  /**
   * What this node reports in a view-change flush: everything it holds, plus the union of
   * the last installation (whose messages it may have delivered on the install's credit
   * while a member that never got that install lacks them).
   */
  flushReport(): FlushReport {
    const hold = this.#hold.slice();
    const ids = new Set(hold.map((m) => m.id));
    for (const m of this.#credited) if (!ids.has(m.id)) hold.push(m);
    return {
      clock: this.#clock,
      hold,
      nextSeq: Object.fromEntries(this.#nextSeq),
      ownSeq: this.#ownSeq,
    };
  }

  /**
   * Applies an installed view at a member that took part in the flush: adds the agreed
   * messages it lacks, adopts the new membership, and credits every member with what the
   * flush showed it holds.
   */
  install(inst: Installation): void {
    const msgs = inst.msgs.slice().sort((a, b) =>
      a.from < b.from ? -1 : a.from > b.from ? 1 : a.seq - b.seq
    );
    for (const m of msgs) {
      if (m.seq < this.nextSeqOf(m.from)) continue;
      this.#insert(m);
      this.#nextSeq.set(m.from, m.seq + 1);
    }
    this.#adopt(inst);
  }

  /**
   * Applies an installed view at a joining node: its state becomes the coordinator's,
   * given as the installation plus what the coordinator had delivered per sender.
   */
  installAsJoiner(inst: Installation, delivered: Record<string, number>): void {
    this.#deliveredSeq = new Map(Object.entries(delivered));
    this.#nextSeq = new Map();
    this.#hold = [];
    this.#lastSeen = new Map();
    this.#recvOf = new Map();
    for (const [from, seq] of this.#deliveredSeq) this.#nextSeq.set(from, seq + 1);
    const msgs = inst.msgs.filter((m) => m.seq > (delivered[m.from] ?? 0));
    for (const m of msgs) this.#insert(m);
    this.#adopt(inst);
  }

  /** Forgets the view and everything undelivered (after being excluded). */
  leave(): void {
    this.#view = undefined;
    this.#members = new Set();
    this.#hold = [];
    this.#lastSeen = new Map();
    this.#recvOf = new Map();
    this.#needAck = false;
    this.#credited = [];
  }

  #adopt(inst: Installation): void {
    this.#credited = inst.msgs.slice();
    this.#view = { id: inst.view.id, members: inst.view.members.slice() };
    this.#members = new Set(inst.view.members);
    for (const [from, next] of Object.entries(inst.nextSeq)) {
      if (next > this.nextSeqOf(from)) this.#nextSeq.set(from, next);
    }
    for (const q of inst.view.members) {
      const c = inst.clocks[q] ?? inst.maxClock;
      if (c > (this.#lastSeen.get(q) ?? 0)) this.#lastSeen.set(q, c);
      for (const [from, next] of Object.entries(inst.nextSeq)) this.#setRecv(q, from, next - 1);
    }
    this.#clock = Math.max(this.#clock, inst.maxClock);
    this.#ownSeq = Math.max(this.#ownSeq, this.nextSeqOf(this.self));
    this.#nextSeq.set(this.self, this.#ownSeq);
    this.#needAck = true;
  }

  #deliverable(m: ChatMessage): boolean {
    for (const q of this.#members) {
      if (q === this.self) continue;
      const seen = this.#lastSeen.get(q) ?? 0;
      if (!(seen > m.lamport || (seen === m.lamport && q > m.from))) return false;
      if (q !== m.from && this.recvOf(q, m.from) < m.seq) return false;
    }
    return true;
  }

  #setRecv(member: string, from: string, seq: number): void {
    let row = this.#recvOf.get(member);
    if (!row) this.#recvOf.set(member, row = new Map());
    if (seq > (row.get(from) ?? 0)) row.set(from, seq);
  }

  #insert(m: ChatMessage): void {
    const hold = this.#hold;
    // Fast path: most messages arrive in stamp order.
    if (hold.length === 0 || compareStamp(hold[hold.length - 1], m) < 0) {
      hold.push(m);
      return;
    }
    let lo = 0;
    let hi = hold.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareStamp(hold[mid], m) < 0) lo = mid + 1;
      else hi = mid;
    }
    hold.splice(lo, 0, m);
  }
}

/**
 * Merges the flush reports of a view change into the installation every member applies:
 * the union of held messages (deduplicated by id), the largest next sequence number per
 * sender (a joiner's own counter included), and each member's clock.
 */
export function mergeFlushes(
  view: View,
  reports: Map<string, FlushReport>,
  joiners: Map<string, { ownSeq: number; clock: number }> = new Map(),
): Installation {
  const byId = new Map<string, ChatMessage>();
  const nextSeq: Record<string, number> = {};
  const clocks: Record<string, number> = {};
  let maxClock = 0;
  const bump = (from: string, next: number) => {
    if (next > (nextSeq[from] ?? 1)) nextSeq[from] = next;
  };
  for (const [member, report] of reports) {
    clocks[member] = report.clock;
    maxClock = Math.max(maxClock, report.clock);
    for (const m of report.hold) {
      if (!byId.has(m.id)) byId.set(m.id, m);
      bump(m.from, m.seq + 1);
    }
    for (const [from, next] of Object.entries(report.nextSeq)) bump(from, next);
    bump(member, report.ownSeq);
  }
  for (const [name, j] of joiners) {
    maxClock = Math.max(maxClock, j.clock);
    bump(name, j.ownSeq);
  }
  for (const name of joiners.keys()) clocks[name] = maxClock;
  const msgs = [...byId.values()].sort(compareStamp);
  return { view, msgs, clocks, nextSeq, maxClock };
}

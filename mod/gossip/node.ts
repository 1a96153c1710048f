/**
 * The gossip protocol of one node, free of I/O: push rumor mongering with fanout and the
 * 1/k stop rule, push-pull anti-entropy on digests, SWIM failure detection, and a
 * last-writer-wins key/value map with Lamport versions. Time comes in through `tick(now)`,
 * messages through `receive(msg, now)`, and everything leaves through a
 * {@linkcode GossipTransport}; the daemon and the simulation run this same class.
 *
 * @module
 */
import {
  DEFAULT_MAX_VALUE_BYTES,
  DELTA_BYTE_BUDGET,
  GossipType,
  MAX_KEY_LENGTH,
  MAX_RUMORS_PER_MESSAGE,
  MEMBER_STATE_NAMES,
  MemberState,
} from "./constants.ts";
import { type Member, type MemberChange, MemberTable } from "./membership.ts";
import type {
  DeltaMessage,
  DigestMessage,
  EntryTuple,
  GossipMessage,
  RumorMessage,
} from "./messages.ts";
import { deltaFor, digestOf, entriesFor, entryTuple } from "./anti_entropy.ts";
import { HotRumors, type StopRule } from "./rumors.ts";
import { type RandomSource, sampleDistinct } from "../random/mod.ts";
import { FailureDetector } from "./failure_detector.ts";
import { type Entry, VersionedStore } from "./store.ts";
import type { GossipTransport } from "./transport.ts";
import { LamportClock, type Version } from "./version.ts";

/** A peer to talk to. */
export interface PeerRef {
  /** Node name. */
  name: string;
  /** Its address. */
  addr: string;
}

/** Options of {@linkcode GossipNode}. */
export interface GossipNodeOptions {
  /** This node's name. */
  name: string;
  /** This node's address, as others reach it. */
  addr: string;
  /** Where messages go. */
  transport: GossipTransport;
  /** Randomness (seeded in simulations). @default {Math.random} */
  random?: RandomSource;
  /** Peers each hot rumor is pushed to per round. @default {3} */
  fanout?: number;
  /** A node that receives a rumor it already knows stops spreading it with probability 1/k. @default {5} */
  k?: number;
  /**
   * `coin`: a node that receives a rumor it already knows stops spreading it with
   * probability 1/k (the assignment's rule); `counter`: it stops after k such receipts.
   * @default {"coin"}
   */
  stopRule?: StopRule;
  /** Rumor round length. @default {200} */
  gossipIntervalMs?: number;
  /** Mean time between anti-entropy exchanges. @default {1000} */
  antiEntropyIntervalMs?: number;
  /** SWIM probe period; 0 turns failure detection off. @default {1000} */
  probeIntervalMs?: number;
  /** Wait for a direct ack before asking others to probe. @default {400} */
  probeTimeoutMs?: number;
  /** Members asked to probe indirectly. @default {3} */
  indirectProbes?: number;
  /** How long a member stays suspect before it is declared dead. @default {3000} */
  suspectTimeoutMs?: number;
  /** Largest value, in UTF-8 bytes. @default {65536} */
  maxValueBytes?: number;
  /** Rounds a rumor stays hot at most (0: 4·⌈log2(n+1)⌉ + 8). @default {0} */
  maxHotRounds?: number;
  /** Overlay: gossip only with these members (by name). Full membership when absent. */
  neighbours?: readonly string[];
  /** Addresses to join through (any one reachable is enough). */
  seeds?: readonly string[];
  /**
   * A fixed peer list shared by every node of a large simulation (no SWIM, no member
   * tables). The daemon never sets it.
   */
  staticPeers?: readonly PeerRef[];
  /** Receives the node's events (`rumor.learned`, `member.up`, …). */
  emit?: (ev: string, fields: Record<string, unknown>) => void;
}

/** How a node decides to stop spreading a rumor (see {@linkcode GossipNodeOptions.stopRule}). */
export type { StopRule };

/** A spread or stored value, as shown to users. */
export interface ValueView {
  /** The key. */
  key: string;
  /** The value. */
  value: string;
  /** Its version. */
  version: Version;
}

/** Why a local write was refused. */
export class GossipInputError extends Error {
  /** Error code for the ctl reply. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "GossipInputError";
    this.code = code;
  }
}

/** Counters of one node. */
export interface GossipStats {
  /** Messages handed to the transport, by type. */
  sent: Record<string, number>;
  /** Messages received, by type. */
  received: Record<string, number>;
  /** Entries learned (newer than what was stored). */
  learned: number;
  /** Rumors received that were already known. */
  duplicates: number;
  /** Rumor rounds run with something hot. */
  rounds: number;
  /** Messages or entries discarded. */
  discarded: number;
}

const encoder = new TextEncoder();

/** Chance per anti-entropy exchange of also contacting one member believed dead. */
const DEAD_RETRY_PROBABILITY = 0.1;

function utf8Length(s: string): number {
  return s.length * 3 <= 1024 ? s.length * 3 : encoder.encode(s).length;
}

/**
 * One gossip node. Call `start(now)` once, `tick(now)` often (every few ms in the daemon,
 * once per round in a simulation) and `receive(msg, now)` for every message. Messages
 * are one-way: an answer is a new message to the sender's address.
 */
export class GossipNode {
  readonly name: string;
  readonly addr: string;
  readonly #o: Required<
    Omit<GossipNodeOptions, "neighbours" | "seeds" | "staticPeers" | "emit" | "random">
  >;
  readonly #transport: GossipTransport;
  readonly #random: RandomSource;
  readonly #emit: (ev: string, fields: Record<string, unknown>) => void;
  readonly #store = new VersionedStore();
  readonly #clock = new LamportClock();
  readonly #hot = new HotRumors();
  readonly #members: MemberTable | undefined;
  readonly #detector: FailureDetector | undefined;
  readonly #static: readonly PeerRef[] | undefined;
  readonly #neighbours: ReadonlySet<string> | undefined;
  readonly #seeds: readonly string[];
  readonly #stats: GossipStats = {
    sent: {},
    received: {},
    learned: 0,
    duplicates: 0,
    rounds: 0,
    discarded: 0,
  };
  #candidates: readonly PeerRef[] | undefined;
  #candidatesVersion = -1;
  #nextGossip = 0;
  #nextAntiEntropy = 0;
  #started = false;
  #left = false;

  constructor(options: GossipNodeOptions) {
    this.name = options.name;
    this.addr = options.addr;
    this.#transport = options.transport;
    this.#random = options.random ?? Math.random;
    this.#emit = options.emit ?? (() => {});
    this.#o = {
      name: options.name,
      addr: options.addr,
      transport: options.transport,
      fanout: options.fanout ?? 3,
      k: options.k ?? 5,
      stopRule: options.stopRule ?? "coin",
      gossipIntervalMs: options.gossipIntervalMs ?? 200,
      antiEntropyIntervalMs: options.antiEntropyIntervalMs ?? 1000,
      probeIntervalMs: options.probeIntervalMs ?? 1000,
      probeTimeoutMs: options.probeTimeoutMs ?? 400,
      indirectProbes: options.indirectProbes ?? 3,
      suspectTimeoutMs: options.suspectTimeoutMs ?? 3000,
      maxValueBytes: options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
      maxHotRounds: options.maxHotRounds ?? 0,
    };
    this.#static = options.staticPeers;
    this.#neighbours = options.neighbours ? new Set(options.neighbours) : undefined;
    this.#seeds = (options.seeds ?? []).filter((s) => s !== options.addr);
    if (!this.#static) {
      const members = new MemberTable(
        { name: this.name, addr: this.addr },
        { onChange: (c) => this.#onMemberChange(c) },
      );
      this.#members = members;
      this.#detector = new FailureDetector({
        name: this.name,
        addr: this.addr,
        members,
        random: this.#random,
        send: (addr, msg) => this.#send(addr, msg),
        probeIntervalMs: this.#o.probeIntervalMs,
        probeTimeoutMs: this.#o.probeTimeoutMs,
        indirectProbes: this.#o.indirectProbes,
        suspectTimeoutMs: this.#o.suspectTimeoutMs,
        probeable: (name) => this.#inOverlay(name),
      });
    }
  }

  /** `overlay` when gossip is limited to listed neighbours, else `full`. */
  get topology(): "overlay" | "full" {
    return this.#neighbours ? "overlay" : "full";
  }

  /** The overlay neighbours, if any. */
  get neighbours(): string[] | undefined {
    return this.#neighbours ? [...this.#neighbours] : undefined;
  }

  /** Counters. */
  get stats(): Readonly<GossipStats> {
    return this.#stats;
  }

  /** The Lamport clock's current value. */
  get clock(): number {
    return this.#clock.time;
  }

  /** This node's SWIM incarnation. */
  get incarnation(): number {
    return this.#members?.self.incarnation ?? 0;
  }

  /** Number of keys stored. */
  get keyCount(): number {
    return this.#store.size;
  }

  /** Number of rumors this node is still spreading. */
  get hotCount(): number {
    return this.#hot.size;
  }

  /** Whether the key is stored (any version). */
  has(key: string): boolean {
    return this.#store.get(key) !== undefined;
  }

  /** The stored value of `key`. */
  get(key: string): ValueView | undefined {
    const e = this.#store.get(key);
    return e ? { key: e.key, value: e.value, version: e.version } : undefined;
  }

  /** Member counts by state (this node counted as alive); all alive with static peers. */
  memberCounts(): { alive: number; suspect: number; dead: number } {
    return this.#members?.counts() ?? { alive: this.#static?.length ?? 0, suspect: 0, dead: 0 };
  }

  /** Every member, this node first: name, address, state, incarnation. */
  members(): { name: string; address: string; state: string; incarnation: number }[] {
    const view = (m: Readonly<Member>) => ({
      name: m.name,
      address: m.addr,
      state: MEMBER_STATE_NAMES[m.state],
      incarnation: m.incarnation,
    });
    if (!this.#members) {
      return (this.#static ?? []).map((p) => ({
        name: p.name,
        address: p.addr,
        state: "alive",
        incarnation: 0,
      }));
    }
    const others = this.#members.all().sort((a, b) => a.name.localeCompare(b.name));
    return [view(this.#members.self), ...others.map(view)];
  }

  /** Starts the timers (staggered) and contacts the seeds. */
  start(now: number): void {
    if (this.#started) return;
    this.#started = true;
    this.#nextGossip = now + this.#o.gossipIntervalMs;
    this.#nextAntiEntropy = now + this.#random() * this.#o.antiEntropyIntervalMs;
    this.#detector?.start(now);
    if (this.#members && this.#seeds.length > 0) this.#join();
  }

  /** A local write: a new version (newer than anything seen here), spread as a hot rumor. */
  spread(key: string, value: string): ValueView {
    this.#checkInput(key, value);
    const version = { clock: this.#clock.tick(), node: this.name };
    this.#store.apply({ key, value, version, hops: 0 });
    this.#hot.mark(key);
    this.#emit("rumor.spread", { key, version });
    return { key, value, version };
  }

  /** Runs whatever timers are due at `now`. */
  tick(now: number): void {
    if (!this.#started || this.#left) return;
    if (now >= this.#nextGossip) {
      this.#gossipRound();
      this.#nextGossip = Math.max(this.#nextGossip + this.#o.gossipIntervalMs, now);
    }
    if (now >= this.#nextAntiEntropy) {
      this.#antiEntropy();
      // jittered between 0.5 and 1.5 intervals, so exchanges do not synchronise
      this.#nextAntiEntropy = now + this.#o.antiEntropyIntervalMs * (0.5 + this.#random());
    }
    this.#detector?.tick(now);
  }

  /** Handles one received message. */
  receive(msg: GossipMessage, now: number): void {
    if (this.#left) return;
    this.#stats.received[msg.t] = (this.#stats.received[msg.t] ?? 0) + 1;
    const members = this.#members;
    if (members) {
      // a sender introduces itself by its address (digest, ping) or its own entry in `m`
      if ("m" in msg) {
        for (const u of msg.m) members.apply(u, now);
      }
      if (!members.get(msg.from)) {
        if (msg.t === GossipType.Digest || msg.t === GossipType.Ping) {
          members.apply([msg.from, msg.addr, MemberState.Alive, 0], now);
        } else {
          this.#discard("unknown_member", { from: msg.from, type: msg.t });
          return;
        }
      }
    }
    switch (msg.t) {
      case GossipType.Rumor:
        return this.#onRumor(msg);
      case GossipType.Digest:
        return this.#onDigest(msg);
      case GossipType.Delta:
        return this.#onDelta(msg);
      case GossipType.Ping:
        return this.#detector?.onPing(msg);
      case GossipType.Ack:
        return this.#detector?.onAck(msg);
      case GossipType.PingReq:
        return this.#detector?.onPingReq(msg, now);
    }
  }

  /** Leaves politely: tells a few members this node is gone, then ignores everything. */
  leave(): void {
    if (this.#left || !this.#members) return;
    const tuple = this.#members.leaveTuple();
    const targets = sampleDistinct(this.#random, this.#members.reachable(), 2 * this.#o.fanout);
    for (const t of targets) {
      this.#send(t.addr, { t: GossipType.Rumor, from: this.name, e: [], m: [tuple] });
    }
    this.#left = true;
  }

  // ── rumor mongering ──

  #gossipRound(): void {
    if (this.#hot.size === 0) return;
    const targets = sampleDistinct(
      this.#random,
      this.#gossipCandidates(),
      this.#o.fanout,
      (p) => p.name === this.name,
    );
    if (targets.length === 0) return;
    this.#stats.rounds++;
    const cap = this.#o.maxHotRounds || 4 * Math.ceil(Math.log2(this.#population() + 1)) + 8;
    // rotate: what was sent goes to the back of the queue, so many hot keys take turns
    const entries = this.#hot.takeRound(MAX_RUMORS_PER_MESSAGE, cap, (key) => {
      const e = this.#store.get(key);
      return e && entryTuple(e);
    });
    for (const t of targets) {
      const m = this.#members?.piggyback() ?? [];
      this.#send(t.addr, { t: GossipType.Rumor, from: this.name, e: entries, m });
    }
  }

  #onRumor(msg: RumorMessage): void {
    for (const e of msg.e) {
      const learned = this.#learn(e, msg.from, "rumor");
      if (learned !== false) continue;
      this.#stats.duplicates++;
      this.#hot.duplicate(e[0], this.#o.stopRule, this.#o.k, this.#random);
    }
  }

  /** Stores an entry if newer; returns true if learned, false if known, undefined if discarded. */
  #learn(e: EntryTuple, from: string, via: "rumor" | "anti-entropy"): boolean | undefined {
    const [key, value, clock, node, hops] = e;
    if (utf8Length(value) > this.#o.maxValueBytes) {
      this.#discard("value_too_large", { from, key, bytes: encoder.encode(value).length });
      return undefined;
    }
    this.#clock.observe(clock);
    const entry: Entry = { key, value, version: { clock, node }, hops: hops + 1 };
    if (!this.#store.apply(entry)) return false;
    this.#stats.learned++;
    this.#hot.mark(key);
    this.#emit("rumor.learned", { key, version: entry.version, from, hops: entry.hops, via });
    return true;
  }

  // ── anti-entropy ──

  #antiEntropy(): void {
    const candidates = this.#gossipCandidates();
    const partner = sampleDistinct(this.#random, candidates, 1, (p) => p.name === this.name)[0];
    if (!partner) {
      if (this.#members && this.#seeds.length > 0) this.#join();
      return;
    }
    this.#send(partner.addr, this.#digest());
    // Now and then, also try one member believed dead: if it is back (a healed partition,
    // a restart), it learns it was declared dead, refutes, and is taken back.
    if (this.#members && this.#random() < DEAD_RETRY_PROBABILITY) {
      const dead = this.#members.all().filter((m) =>
        m.state === MemberState.Dead && this.#inOverlay(m.name)
      );
      const pick = sampleDistinct(this.#random, dead, 1)[0];
      if (pick) this.#send(pick.addr, this.#digest());
    }
  }

  #join(): void {
    const digest = this.#digest();
    for (const seed of this.#seeds) this.#send(seed, digest);
  }

  #digest(): DigestMessage {
    return {
      t: GossipType.Digest,
      from: this.name,
      addr: this.addr,
      d: digestOf(this.#store),
      m: this.#members?.snapshot() ?? [],
    };
  }

  #onDigest(msg: DigestMessage): void {
    const { e, want } = deltaFor(this.#store, msg.d, DELTA_BYTE_BUDGET);
    if (e.length === 0 && want.length === 0 && !this.#members) return;
    this.#send(msg.addr, {
      t: GossipType.Delta,
      from: this.name,
      e,
      want,
      m: this.#members?.snapshot() ?? [],
    });
  }

  #onDelta(msg: DeltaMessage): void {
    for (const e of msg.e) this.#learn(e, msg.from, "anti-entropy");
    if (msg.want.length === 0) return;
    const addr = this.#addrOf(msg.from);
    if (!addr) return;
    const e = entriesFor(this.#store, msg.want, DELTA_BYTE_BUDGET);
    if (e.length > 0) {
      this.#send(addr, { t: GossipType.Delta, from: this.name, e, want: [], m: [] });
    }
  }

  #onMemberChange(c: MemberChange): void {
    if (c.state === "alive") {
      this.#emit("member.up", {
        peer: c.peer,
        addr: c.addr,
        was: c.was,
        incarnation: c.incarnation,
      });
    } else if (c.state === "suspect") {
      this.#emit("member.suspect", { peer: c.peer, incarnation: c.incarnation });
    } else this.#emit("member.down", { peer: c.peer, incarnation: c.incarnation, was: c.was });
    // a member declared dead may sit behind a stalled connection (a partition leaves TCP
    // retransmitting with growing back-off): the next message to it dials afresh. Not on
    // suspicion, which load alone can cause: redialling then would only add work.
    if (c.state === "dead" && c.addr) this.#transport.reset?.(c.addr);
  }

  // ── helpers ──

  #gossipCandidates(): readonly PeerRef[] {
    if (this.#static) return this.#static;
    const members = this.#members!;
    if (this.#candidatesVersion !== members.version || !this.#candidates) {
      this.#candidates = members.reachable().filter((m) => this.#inOverlay(m.name));
      this.#candidatesVersion = members.version;
    }
    return this.#candidates;
  }

  #inOverlay(name: string): boolean {
    return this.#neighbours === undefined || this.#neighbours.has(name);
  }

  #population(): number {
    return this.#static?.length ?? (this.#members!.reachable().length + 1);
  }

  #addrOf(name: string): string | undefined {
    if (this.#members) return this.#members.get(name)?.addr;
    return name;
  }

  #checkInput(key: string, value: string): void {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new GossipInputError(
        "bad_key",
        `Cannot spread: the key must be 1..${MAX_KEY_LENGTH} characters`,
      );
    }
    const bytes = encoder.encode(value).length;
    if (bytes > this.#o.maxValueBytes) {
      throw new GossipInputError(
        "value_too_large",
        `Cannot spread ${key}: the value has ${bytes} bytes, more than the limit ${this.#o.maxValueBytes}`,
      );
    }
  }

  #discard(reason: string, fields: Record<string, unknown>): void {
    this.#stats.discarded++;
    this.#emit("gossip.discard", { reason, ...fields });
  }

  #send(addr: string, msg: GossipMessage): void {
    this.#stats.sent[msg.t] = (this.#stats.sent[msg.t] ?? 0) + 1;
    this.#transport.send(addr, msg);
  }
}

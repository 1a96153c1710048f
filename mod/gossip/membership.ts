/**
 * SWIM membership: the member table with incarnation numbers, the precedence rules that
 * decide which update wins, and the queue of updates piggybacked on outgoing messages.
 *
 * @module
 */
import {
  MAX_PIGGYBACK,
  MEMBER_STATE_NAMES,
  MemberState,
  type MemberStateValue,
} from "./constants.ts";
import type { MemberTuple } from "./messages.ts";

/** One known member. */
export interface Member {
  /** Node name. */
  name: string;
  /** Where it listens (`host:port`, or a virtual address). */
  addr: string;
  /** Alive, suspect or dead. */
  state: MemberStateValue;
  /** Its incarnation: only the member itself raises it, to refute suspicion. */
  incarnation: number;
  /** When the state last changed (ms, the node's clock). */
  changedAt: number;
}

/** A change of a member's state, as reported to the node. */
export interface MemberChange {
  /** The member. */
  peer: string;
  /** Its address. */
  addr: string;
  /** The new state. */
  state: "alive" | "suspect" | "dead";
  /** The state before (`unknown` for a new member). */
  was: "alive" | "suspect" | "dead" | "unknown";
  /** Its incarnation. */
  incarnation: number;
}

/** Options of {@linkcode MemberTable}. */
export interface MemberTableOptions {
  /** Called for every state change of another member. */
  onChange?: (change: MemberChange) => void;
  /** Each update is piggybacked `mult × ⌈log2(n+2)⌉` times. @default {4} */
  retransmitMult?: number;
}

interface Queued {
  tuple: MemberTuple;
  sent: number;
}

/**
 * The member table of one node. Updates follow SWIM's precedence: `alive(i)` beats any
 * state with a lower incarnation; `suspect(i)` beats `alive(j ≤ i)` and `suspect(j < i)`;
 * `dead(i)` beats `alive`/`suspect` with `j ≤ i`. Rumors about this node itself with an
 * incarnation at least its own make it refute: it raises its incarnation and spreads
 * `alive`.
 */
export class MemberTable {
  readonly #self: Member;
  readonly #members = new Map<string, Member>();
  readonly #queue = new Map<string, Queued>();
  readonly #options: MemberTableOptions;
  #reachable: Member[] | undefined;
  #version = 0;

  constructor(self: { name: string; addr: string }, options: MemberTableOptions = {}) {
    this.#self = { ...self, state: MemberState.Alive, incarnation: 0, changedAt: 0 };
    this.#options = options;
  }

  /** This node's own entry. */
  get self(): Readonly<Member> {
    return this.#self;
  }

  /** Bumped on every change of the reachable set (for caches). */
  get version(): number {
    return this.#version;
  }

  /** Other members known, in any state. */
  get size(): number {
    return this.#members.size;
  }

  /** The member called `name` (not this node). */
  get(name: string): Readonly<Member> | undefined {
    return this.#members.get(name);
  }

  /** Every other member, in any state. */
  all(): Readonly<Member>[] {
    return [...this.#members.values()];
  }

  /** Other members that are alive or suspect: those that still get gossip and probes. */
  reachable(): readonly Readonly<Member>[] {
    this.#reachable ??= [...this.#members.values()].filter((m) => m.state !== MemberState.Dead);
    return this.#reachable;
  }

  /** Counts by state (this node included as alive). */
  counts(): { alive: number; suspect: number; dead: number } {
    const c = { alive: 1, suspect: 0, dead: 0 };
    for (const m of this.#members.values()) c[MEMBER_STATE_NAMES[m.state]]++;
    return c;
  }

  /** This node's entry and every member's, as tuples (for state sync). */
  snapshot(): MemberTuple[] {
    const out: MemberTuple[] = [this.#tuple(this.#self)];
    for (const m of this.#members.values()) out.push(this.#tuple(m));
    return out;
  }

  /** Up to `max` queued updates, least-sent first; each is dropped after its quota. */
  piggyback(max = MAX_PIGGYBACK): MemberTuple[] {
    if (this.#queue.size === 0) return [];
    const limit = (this.#options.retransmitMult ?? 4) *
      Math.ceil(Math.log2(this.#members.size + 2));
    const picked = [...this.#queue.entries()].sort((a, b) => a[1].sent - b[1].sent).slice(0, max);
    for (const [name, q] of picked) {
      q.sent++;
      if (q.sent >= limit) this.#queue.delete(name);
    }
    return picked.map(([, q]) => q.tuple);
  }

  /** Applies an update heard from anyone; returns whether the table changed. */
  apply(update: MemberTuple, now: number): boolean {
    const [name, addr, state, inc] = update;
    if (name === this.#self.name) return this.#aboutSelf(state, inc);
    const cur = this.#members.get(name);
    if (!cur) {
      const m: Member = { name, addr, state, incarnation: inc, changedAt: now };
      this.#members.set(name, m);
      this.#changed(m, "unknown", state !== MemberState.Dead);
      return true;
    }
    let wins: boolean;
    if (state === MemberState.Alive) wins = inc > cur.incarnation;
    else if (state === MemberState.Suspect) {
      wins = (cur.state === MemberState.Alive && inc >= cur.incarnation) ||
        (cur.state === MemberState.Suspect && inc > cur.incarnation);
    } else wins = cur.state !== MemberState.Dead && inc >= cur.incarnation;
    if (!wins) {
      if (state === MemberState.Dead && cur.state === MemberState.Dead && inc > cur.incarnation) {
        cur.incarnation = inc;
      }
      return false;
    }
    const was = MEMBER_STATE_NAMES[cur.state];
    const stateChanged = cur.state !== state;
    cur.addr = addr;
    cur.state = state;
    cur.incarnation = inc;
    if (stateChanged) cur.changedAt = now;
    this.#changed(cur, was, stateChanged);
    return true;
  }

  /** This node's own verdict: `name` did not answer a probe. */
  suspect(name: string, now: number): boolean {
    const m = this.#members.get(name);
    if (!m || m.state !== MemberState.Alive) return false;
    return this.apply([name, m.addr, MemberState.Suspect, m.incarnation], now);
  }

  /** This node's own verdict: `name` stayed suspect too long. */
  declareDead(name: string, now: number): boolean {
    const m = this.#members.get(name);
    if (!m || m.state === MemberState.Dead) return false;
    return this.apply([name, m.addr, MemberState.Dead, m.incarnation], now);
  }

  /** Suspects whose suspicion started at or before `before`. */
  expiredSuspects(before: number): Readonly<Member>[] {
    const out: Member[] = [];
    for (const m of this.#members.values()) {
      if (m.state === MemberState.Suspect && m.changedAt <= before) out.push(m);
    }
    return out;
  }

  /** This node leaves: its own entry as `dead`, to be sent to others. */
  leaveTuple(): MemberTuple {
    return [this.#self.name, this.#self.addr, MemberState.Dead, this.#self.incarnation];
  }

  #aboutSelf(state: MemberStateValue, inc: number): boolean {
    const self = this.#self;
    if ((state !== MemberState.Alive && inc >= self.incarnation) || inc > self.incarnation) {
      self.incarnation = inc + 1;
      this.#enqueue(self);
      return true;
    }
    return false;
  }

  #changed(m: Member, was: MemberChange["was"], report: boolean): void {
    this.#reachable = undefined;
    this.#version++;
    this.#enqueue(m);
    if (report) {
      this.#options.onChange?.({
        peer: m.name,
        addr: m.addr,
        state: MEMBER_STATE_NAMES[m.state],
        was,
        incarnation: m.incarnation,
      });
    }
  }

  #enqueue(m: Member): void {
    this.#queue.set(m.name, { tuple: this.#tuple(m), sent: 0 });
  }

  #tuple(m: Member): MemberTuple {
    return [m.name, m.addr, m.state, m.incarnation];
  }
}

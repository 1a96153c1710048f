/**
 * A multicast group in virtual time: {@linkcode MulticastMember}s (the daemon's core) over
 * a {@linkcode MemoryNetwork}, with in-memory histories that survive a crash, and the
 * faults of a real network: partitions (held or reset), one-way cuts, pauses and crashes.
 * Tests and the checker use it; a run is a function of its seed.
 *
 * @module
 */
import { type RandomSource, seededRandom } from "../random/mod.ts";
import type { CheckedEvent } from "./checker.ts";
import { MemoryHistory } from "./memory_history.ts";
import { MemoryNetwork, type MemoryNetworkOptions } from "./memory_network.ts";
import { MulticastMember } from "./member.ts";

/** Options of {@linkcode SimGroup}. */
export interface SimGroupOptions {
  /** Number of members (`m1`…`mN`). */
  n: number;
  /** Seed of every random choice. */
  seed: number;
  /** Members a primary view needs. @default {majority} */
  quorum?: number;
  /** Heartbeat period (virtual ms). @default {50} */
  heartbeatMs?: number;
  /** Failure timeout (virtual ms). @default {400} */
  failTimeoutMs?: number;
  /** Virtual ms per step. @default {5} */
  stepMs?: number;
  /** Frames delivered per step, at most. @default {40} */
  framesPerStep?: number;
  /** Receives the members' log lines (debugging a seed). @default {none} */
  log?: (node: string, level: string, line: string, now: number) => void;
  /** Sees every frame a member sends (see {@linkcode MemoryNetworkOptions}). @default {none} */
  onFrame?: MemoryNetworkOptions["onSend"];
}

const quietLog = { debug() {}, info() {}, warn() {}, error() {} };

/** A simulated group (see the module doc). */
export class SimGroup {
  /** Member names. */
  readonly names: string[];
  /** The network. */
  readonly net: MemoryNetwork;
  /** Each member's history (kept across a crash, like its SQLite file). */
  readonly histories = new Map<string, MemoryHistory>();
  /** The running member of each name. */
  readonly members = new Map<string, MulticastMember>();
  /** Every event, in emission order. */
  readonly events: CheckedEvent[] = [];
  /** Paused members (SIGSTOP): they neither run nor read; frames to them wait. */
  readonly paused = new Set<string>();
  /** Crashed members. */
  readonly down = new Set<string>();
  /** Sends refused with `no_quorum`, per member. */
  readonly refused = new Map<string, number>();
  /** The virtual clock. */
  now = 0;
  readonly #o: Required<Omit<SimGroupOptions, "quorum" | "log" | "onFrame">> & SimGroupOptions;
  readonly #random: RandomSource;
  readonly #dirty = new Set<string>();
  readonly #nextTick = new Map<string, number>();
  #sent = 0;

  constructor(options: SimGroupOptions) {
    this.#o = {
      heartbeatMs: 50,
      failTimeoutMs: 400,
      stepMs: 5,
      framesPerStep: 40,
      ...options,
    };
    this.#random = seededRandom(options.seed);
    this.net = new MemoryNetwork({
      random: seededRandom(options.seed * 7 + 1),
      onSend: options.onFrame,
    });
    this.names = Array.from({ length: options.n }, (_, i) => `m${i + 1}`);
    for (const name of this.names) {
      this.histories.set(name, new MemoryHistory());
      this.#boot(name);
    }
  }

  /** The seeded random source of the run (for fault schedules). */
  get random(): RandomSource {
    return this.#random;
  }

  /** Members a primary view needs. */
  get quorum(): number {
    return this.members.get(this.names[0])!.quorum;
  }

  #boot(name: string): void {
    const member = new MulticastMember({
      name,
      members: this.names,
      transport: this.net.transport(name),
      history: this.histories.get(name)!,
      now: this.now,
      failTimeoutMs: this.#o.failTimeoutMs,
      flushTimeoutMs: this.#o.failTimeoutMs * 2,
      bootstrapMs: this.#o.failTimeoutMs,
      quorum: this.#o.quorum,
      hooks: {
        events: {
          emit: (ev, fields = {}) => this.events.push({ node: name, ev, t: this.now, ...fields }),
          debug: () => {},
        },
        log: this.#o.log ? this.#logger(name) : quietLog,
        schedule: () => this.#dirty.add(name),
      },
    });
    this.members.set(name, member);
    this.net.attach(name, member);
    this.#nextTick.set(name, this.now + this.#random() * this.#o.heartbeatMs);
    member.start(this.now);
  }

  #logger(name: string) {
    const log = this.#o.log!;
    return {
      debug: (m: string) => log(name, "debug", m, this.now),
      info: (m: string) => log(name, "info", m, this.now),
      warn: (m: string) => log(name, "warn", m, this.now),
      error: (m: string) => log(name, "error", m, this.now),
    };
  }

  /** Whether `name` runs (not crashed, not paused). */
  running(name: string): boolean {
    return !this.down.has(name) && !this.paused.has(name);
  }

  /** Advances virtual time by `ms`. `sendEveryMs`: each running member sends that often. */
  run(ms: number, options: { sendEveryMs?: number } = {}): void {
    const end = this.now + ms;
    while (this.now < end) this.step(options.sendEveryMs);
  }

  /** Runs until `pred` holds; throws after `maxMs` of virtual time. */
  runUntil(pred: () => boolean, what: string, maxMs = 30_000): void {
    const end = this.now + maxMs;
    while (!pred()) {
      if (this.now >= end) throw new Error(`no ${what} within ${maxMs} virtual ms`);
      this.step();
    }
  }

  /** One step: timers, a random share of the frames in flight, flushes, sends. */
  step(sendEveryMs?: number): void {
    this.now += this.#o.stepMs;
    const o = this.#o;
    for (const name of this.names) {
      if (!this.running(name) || this.#nextTick.get(name)! > this.now) continue;
      this.#nextTick.set(name, this.now + o.heartbeatMs);
      this.members.get(name)!.tick(this.now);
    }
    const blocked = new Set([...this.paused, ...this.down]);
    let budget = Math.ceil(this.#random() * o.framesPerStep);
    while (budget > 0) {
      const got = this.net.deliver(
        this.now,
        Math.min(budget, 1 + Math.floor(this.#random() * 6)),
        blocked,
      );
      if (got === 0) break;
      budget -= got;
      this.#flushDirty();
    }
    this.#flushDirty();
    if (sendEveryMs !== undefined) {
      for (const name of this.names) {
        if (this.running(name) && this.#random() < o.stepMs / sendEveryMs) this.send(name);
      }
      this.#flushDirty();
    }
  }

  #flushDirty(): void {
    for (const name of [...this.#dirty]) {
      this.#dirty.delete(name);
      if (this.running(name)) this.members.get(name)!.flush();
    }
  }

  /** `name` sends a message; false when refused (`no_quorum` or another error). */
  send(name: string, body = `${name} says #${++this.#sent}`): boolean {
    try {
      this.members.get(name)!.send(body, this.now);
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code ?? "error";
      if (code === "no_quorum") this.refused.set(name, (this.refused.get(name) ?? 0) + 1);
      return false;
    }
  }

  /** SIGSTOP. */
  pause(name: string): void {
    this.paused.add(name);
  }

  /** SIGCONT. */
  resume(name: string): void {
    this.paused.delete(name);
  }

  /** kill -9: state is lost but the history (committed per batch) survives. */
  crash(name: string): void {
    this.down.add(name);
    this.paused.delete(name);
    this.net.setDown(name, true);
  }

  /** Restarts a crashed member from its history. */
  restart(name: string): void {
    this.down.delete(name);
    this.#boot(name);
    this.net.setDown(name, false);
  }

  /** Whether every member runs in one primary view of all, with nothing in flight. */
  settled(): boolean {
    const views = this.names.map((n) => this.members.get(n)!.view);
    const first = views[0];
    return this.down.size === 0 && this.paused.size === 0 &&
      views.every((v) =>
        v.primary && v.id === first.id && v.members.length === this.names.length
      ) &&
      this.names.every((n) => {
        const m = this.members.get(n)!;
        return m.held === 0 && m.outboxSize === 0;
      }) &&
      this.names.every((n) =>
        this.histories.get(n)!.count === this.histories.get(this.names[0])!.count
      );
  }

  /** Final histories (ids in order) by member. */
  historyIds(): Map<string, string[]> {
    return new Map(this.names.map((n) => [n, this.histories.get(n)!.ids()]));
  }
}

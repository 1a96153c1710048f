/**
 * A deterministic simulation of a ring of {@linkcode RingState} cores — the same code the
 * daemon runs — over a simulated network: per-link FIFO delivery with random delays,
 * partitions (one-way or both), messages lost or held back until a heal, a failure
 * detector with delays, process pauses (the process stops; its clock does not), crashes
 * with restarts (only `maxGen` survives), clock rates that differ, and timers that fire
 * late. A checker records, in real (simulated) time, when every node believed it held an
 * unexpired lease, every grant, and every fence.
 *
 * @module
 */
import { seededRandom } from "../mod/random/mod.ts";
import { RingState, type Token } from "../mod/ring/mod.ts";
import type { Message } from "../mod/wire/mod.ts";

/** Options of {@linkcode RingSim}. */
export interface RingSimOptions {
  /** Member names. */
  members: string[];
  /** Seed of everything random. */
  seed: number;
  /** Lease (ms). @default {300} */
  leaseMs?: number;
  /** Pass timeout (ms). @default {200} */
  passTimeoutMs?: number;
  /** Largest clock rate difference from 1 (e.g. 0.009). @default {0.009} */
  drift?: number;
  /** Message loss probability on a connected link. @default {0.002} */
  loss?: number;
  /** Sees every frame a core sends and every reply it gets (checks of the protocol). @default {none} */
  onFrame?: (from: string, to: string, msg: Message) => void;
}

/** A time span in which one node believed it held an unexpired lease. */
export interface Claim {
  node: string;
  from: number;
  to: number;
}

/** One grant as the checker saw it. */
export interface GrantRecord {
  node: string;
  fence: number;
  at: number;
  end: number;
  how: "released" | "lost" | "crashed" | "open";
}

interface SimNode {
  name: string;
  index: number;
  state: RingState | undefined;
  epoch: number;
  rate: number;
  offset: number;
  pausedUntil: number;
  inbox: Array<() => void>;
  maxGen: number;
  wakeAt: number;
  claim: Claim | undefined;
  clientRequests: Map<number, number>;
}

interface Scheduled {
  at: number;
  seq: number;
  run: () => void;
}

/** The simulation; `run(until)` advances it. */
export class RingSim {
  /** Real (simulated) time, ms. */
  now = 0;
  /** Lease claims (closed and open). */
  readonly claims: Claim[] = [];
  /** Grants in the order they happened. */
  readonly grants: GrantRecord[] = [];
  /** Problems the checker found while running. */
  readonly violations: string[] = [];
  /** Events the cores emitted, counted by name. */
  readonly eventCounts = new Map<string, number>();
  /** When set, every effect is written here as one line (for debugging a seed). */
  trace: string[] | undefined;
  readonly random: () => number;
  readonly leaseMs: number;
  readonly members: string[];
  readonly #nodes: SimNode[];
  readonly #queue: Scheduled[] = [];
  #seq = 0;
  readonly #cut = new Set<string>();
  readonly #held: Array<{ from: string; to: string; deliver: () => void }> = [];
  readonly #fifo = new Map<string, number>();
  readonly #passTimeoutMs: number;
  readonly #loss: number;
  readonly #onFrame: RingSimOptions["onFrame"];
  #tokensInFlight = 0;
  #clientLoad = 0;

  constructor(options: RingSimOptions) {
    this.random = seededRandom(options.seed);
    this.members = options.members;
    this.leaseMs = options.leaseMs ?? 300;
    this.#passTimeoutMs = options.passTimeoutMs ?? 200;
    this.#loss = options.loss ?? 0.002;
    this.#onFrame = options.onFrame;
    const drift = options.drift ?? 0.009;
    this.#nodes = options.members.map((name, index) => ({
      name,
      index,
      state: undefined,
      epoch: 0,
      rate: 1 + (this.random() * 2 - 1) * drift,
      offset: this.random() * 1e6,
      pausedUntil: -Infinity,
      inbox: [],
      maxGen: 0,
      wakeAt: Infinity,
      claim: undefined,
      clientRequests: new Map(),
    }));
    for (const n of this.#nodes) this.#boot(n);
    // Everyone connects to everyone shortly after start.
    for (const a of this.#nodes) {
      for (const b of this.#nodes) {
        if (a !== b) this.#at(5 + this.random() * 20, () => this.#linkUp(a, b));
      }
    }
  }

  /** Runs until real time `until`. */
  run(until: number): void {
    for (let steps = 0; steps < 5_000_000; steps++) {
      const next = this.#pop();
      if (!next || next.at > until) {
        if (next) this.#push(next);
        this.now = Math.max(this.now, until);
        return;
      }
      if (next.at < this.now) throw new Error("simulation time went backwards");
      this.now = next.at;
      next.run();
    }
    throw new Error("simulation did not finish in 5,000,000 steps");
  }

  /** A node's core (undefined while crashed). */
  state(name: string): RingState | undefined {
    return this.#node(name).state;
  }

  /** A node's clock now. */
  clock(name: string): number {
    return this.#local(this.#node(name), this.now);
  }

  /** Random lock requests at every node: about `perSecond` per node while `until`. */
  load(perSecond: number, until: number): void {
    this.#clientLoad = perSecond;
    for (const n of this.#nodes) this.#nextClient(n, until);
  }

  /** Asks for the lock at `name` now; holds it `holdMs` once granted. */
  lock(name: string, holdMs = 20, timeoutMs = Infinity): void {
    const n = this.#node(name);
    this.#input(n, (t, s) => {
      const { request } = s.request(t);
      n.clientRequests.set(request.id, holdMs);
      if (Number.isFinite(timeoutMs)) {
        const epoch = n.epoch;
        this.#at(timeoutMs, () => {
          if (n.epoch !== epoch) return;
          this.#input(n, (_t, s2) => {
            s2.cancel(request.id);
            n.clientRequests.delete(request.id);
          });
        });
      }
    });
  }

  /** Cuts the links from every node of `a` to every node of `b` (and back unless `oneWay`). */
  cut(a: string[], b: string[], oneWay = false): void {
    this.trace?.push(`${this.now.toFixed(2)} CUT ${a} ${oneWay ? "->" : "<->"} ${b}`);
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue;
        this.#cut.add(`${x}>${y}`);
        if (!oneWay) this.#cut.add(`${y}>${x}`);
        this.#detect(x, y);
      }
    }
  }

  /** Heals every cut; messages held back are delivered (in order) shortly after. */
  heal(): void {
    this.trace?.push(`${this.now.toFixed(2)} HEAL`);
    const pairs = [...this.#cut];
    this.#cut.clear();
    const held = this.#held.splice(0);
    for (const h of held) this.#at(1 + this.random() * 5, h.deliver);
    for (const key of pairs) {
      const [x, y] = key.split(">");
      this.#at(20 + this.random() * 200, () => {
        const a = this.#node(x);
        const b = this.#node(y);
        if (this.#connected(a, b)) {
          this.#linkUp(a, b);
          this.#linkUp(b, a);
        }
      });
    }
  }

  /** Stops the process `name` for `ms` (SIGSTOP … SIGCONT). */
  pause(name: string, ms: number): void {
    this.trace?.push(`${this.now.toFixed(2)} PAUSE ${name} ${ms.toFixed(0)}`);
    const n = this.#node(name);
    n.pausedUntil = Math.max(n.pausedUntil, this.now + ms);
    this.#at(ms, () => this.#resume(n));
  }

  /** Kills `name` (kill -9) and starts it again after `downMs`. */
  crash(name: string, downMs: number): void {
    const n = this.#node(name);
    if (!n.state) return;
    this.trace?.push(`${this.now.toFixed(2)} CRASH ${name} ${downMs.toFixed(0)}`);
    this.#closeClaim(n, this.now);
    for (const g of this.grants) {
      if (g.node === name && g.how === "open") {
        g.how = "crashed";
        g.end = this.now;
      }
    }
    n.state = undefined;
    n.epoch++;
    n.inbox = [];
    n.clientRequests.clear();
    n.pausedUntil = -Infinity;
    for (const other of this.#nodes) {
      if (other !== n) this.#at(1 + this.random() * 5, () => this.#linkDown(other, n));
    }
    this.#at(downMs, () => {
      this.#boot(n);
      for (const other of this.#nodes) {
        if (other === n) continue;
        this.#at(10 + this.random() * 40, () => {
          if (this.#connected(n, other)) {
            this.#linkUp(n, other);
            this.#linkUp(other, n);
          }
        });
      }
    });
  }

  /** Nodes holding a token now, and token frames still on the way. */
  tokens(): { holders: string[]; inFlight: number } {
    return {
      holders: this.#nodes.filter((n) => n.state?.token !== undefined).map((n) => n.name),
      inFlight: this.#tokensInFlight,
    };
  }

  /** Closes open claims and grants at the current time and checks everything. */
  check(): string[] {
    const problems = [...this.violations];
    const claims = [...this.claims, ...this.#nodes.flatMap((n) => n.claim ? [n.claim] : [])]
      .sort((a, b) => a.from - b.from);
    for (let i = 0; i < claims.length; i++) {
      for (let j = i + 1; j < claims.length && claims[j].from < claims[i].to; j++) {
        const a = claims[i];
        const b = claims[j];
        if (a.node !== b.node && b.from < a.to - 1e-6) {
          problems.push(
            `two leases at once: ${a.node} [${a.from.toFixed(3)}, ${
              a.to.toFixed(3)
            }] and ${b.node} [${b.from.toFixed(3)}, ${b.to.toFixed(3)}]`,
          );
        }
      }
    }
    for (let i = 1; i < this.grants.length; i++) {
      const a = this.grants[i - 1];
      const b = this.grants[i];
      if (b.fence <= a.fence) {
        problems.push(`fence ${b.fence} at ${b.node} after ${a.fence} at ${a.node}`);
      }
    }
    return problems;
  }

  // ---- internals ----------------------------------------------------------------------

  #node(name: string): SimNode {
    const n = this.#nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  #local(n: SimNode, t: number): number {
    return n.offset + n.rate * t;
  }

  #real(n: SimNode, local: number): number {
    return (local - n.offset) / n.rate;
  }

  #at(delay: number, run: () => void): void {
    this.#push({ at: this.now + Math.max(0, delay), seq: this.#seq++, run });
  }

  /** A binary heap on (at, seq). */
  #push(item: Scheduled): void {
    const q = this.#queue;
    q.push(item);
    let i = q.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(q[p], q[i])) break;
      [q[p], q[i]] = [q[i], q[p]];
      i = p;
    }
  }

  #pop(): Scheduled | undefined {
    const q = this.#queue;
    if (q.length === 0) return undefined;
    const top = q[0];
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l], q[m])) m = l;
        if (r < q.length && before(q[r], q[m])) m = r;
        if (m === i) break;
        [q[m], q[i]] = [q[i], q[m]];
        i = m;
      }
    }
    return top;
  }

  #boot(n: SimNode): void {
    n.state = new RingState(this.members, n.name, {
      leaseMs: this.leaseMs,
      passTimeoutMs: this.#passTimeoutMs,
      maxGen: n.maxGen,
      now: this.#local(n, this.now),
      random: this.random,
    });
    n.epoch++;
    n.wakeAt = Infinity;
    this.#input(n, (t, s) => s.start(t));
  }

  /** Runs `fn` on `n`'s core now (or at resume if paused; never if crashed), then its effects. */
  #input(n: SimNode, fn: (now: number, s: RingState) => void): void {
    if (!n.state) return;
    if (this.now < n.pausedUntil) {
      n.inbox.push(() => this.#input(n, fn));
      return;
    }
    const s = n.state;
    const t = this.#local(n, this.now);
    fn(t, s);
    this.#effects(n, s);
  }

  #effects(n: SimNode, s: RingState): void {
    for (let i = 0; i < 1000; i++) {
      const effects = s.drain();
      if (effects.length === 0) break;
      for (const e of effects) {
        if (this.trace && e.do !== "send") {
          const what = e.do === "request"
            ? `${e.msg.t}→${e.to} ${JSON.stringify({ ...e.msg, t: undefined })}`
            : e.do === "event"
            ? `${e.ev} ${JSON.stringify(e.fields)}`
            : e.do === "granted"
            ? `GRANT ${e.grant.fence}`
            : e.do === "lost"
            ? `LOST ${e.loss.grant.fence}`
            : `persist ${e.maxGen}`;
          this.trace.push(`${this.now.toFixed(2)} ${n.name} ${what}`);
        }
        switch (e.do) {
          case "persist":
            n.maxGen = Math.max(n.maxGen, e.maxGen);
            break;
          case "send":
            this.#send(n, e.to, e.msg);
            break;
          case "request":
            this.#request(n, e.id, e.to, e.msg, e.timeoutMs);
            break;
          case "granted": {
            const t = this.#local(n, this.now);
            if (!s.holding(t)) this.violations.push(`${n.name} granted without a valid lease`);
            this.grants.push({
              node: n.name,
              fence: e.grant.fence,
              at: this.now,
              end: Infinity,
              how: "open",
            });
            const hold = n.clientRequests.get(e.grant.id) ?? 20;
            n.clientRequests.delete(e.grant.id);
            const epoch = n.epoch;
            const fence = e.grant.fence;
            this.#at(hold, () => {
              if (n.epoch !== epoch) return;
              this.#input(n, (t2, s2) => {
                if (s2.grant?.fence !== fence) return;
                try {
                  s2.release(t2, fence);
                } catch {
                  return; // lost just now (the lost effect recorded it)
                }
                const g = this.grants.findLast((x) => x.node === n.name && x.fence === fence);
                if (g && g.how === "open") {
                  g.how = "released";
                  g.end = this.now;
                }
              });
            });
            break;
          }
          case "lost": {
            const g = this.grants.findLast((x) =>
              x.node === n.name && x.fence === e.loss.grant.fence
            );
            if (g && g.how === "open") {
              g.how = "lost";
              g.end = this.#real(n, e.loss.leaseEnd);
            }
            break;
          }
          case "event":
            this.eventCounts.set(e.ev, (this.eventCounts.get(e.ev) ?? 0) + 1);
            break;
        }
      }
    }
    this.#observe(n, s);
    this.#wake(n, s);
  }

  /** Records whether `n` believes it holds a lease, and until when. */
  #observe(n: SimNode, s: RingState): void {
    const t = this.#local(n, this.now);
    if (s.holding(t)) {
      const to = this.#real(n, s.lease.until);
      if (n.claim) n.claim.to = Math.max(n.claim.to, to);
      else n.claim = { node: n.name, from: this.now, to };
    } else {
      this.#closeClaim(n, this.now);
    }
  }

  #closeClaim(n: SimNode, at: number): void {
    if (!n.claim) return;
    n.claim.to = Math.min(n.claim.to, at);
    this.claims.push(n.claim);
    n.claim = undefined;
  }

  #wake(n: SimNode, s: RingState): void {
    const t = this.#local(n, this.now);
    const localAt = s.nextWake(t);
    if (!Number.isFinite(localAt)) return;
    // Timers fire late sometimes (a busy event loop).
    const late = this.random() < 0.1 ? this.random() * 30 : this.random() * 2;
    const at = Math.max(this.now, this.#real(n, localAt)) + late;
    if (at >= n.wakeAt && n.wakeAt > this.now) return;
    n.wakeAt = at;
    const epoch = n.epoch;
    this.#at(at - this.now, () => {
      if (n.epoch !== epoch || n.wakeAt !== at) return;
      n.wakeAt = Infinity;
      this.#input(n, (t2, s2) => s2.tick(t2));
    });
  }

  #resume(n: SimNode): void {
    if (this.now < n.pausedUntil || !n.state) return;
    // After SIGCONT timers and sockets are served in no particular order.
    const inbox = n.inbox.splice(0);
    const tickAt = Math.floor(this.random() * (inbox.length + 1));
    inbox.splice(tickAt, 0, () => this.#input(n, (t, s) => s.tick(t)));
    for (const item of inbox) item();
  }

  #connected(a: SimNode, b: SimNode): boolean {
    return !this.#cut.has(`${a.name}>${b.name}`) && !this.#cut.has(`${b.name}>${a.name}`) &&
      a.state !== undefined && b.state !== undefined;
  }

  #linkUp(a: SimNode, b: SimNode): void {
    if (!this.#connected(a, b)) return;
    this.#input(a, (t, s) => {
      if (!s.alive.has(b.name)) s.peerUp(t, b.name);
    });
  }

  #linkDown(a: SimNode, b: SimNode): void {
    this.#input(a, (t, s) => {
      if (s.alive.has(b.name)) s.peerDown(t, b.name);
    });
  }

  /** Heartbeats fail both ways when either direction is cut: both sides notice, later. */
  #detect(x: string, y: string): void {
    const a = this.#node(x);
    const b = this.#node(y);
    this.#at(100 + this.random() * 400, () => {
      if (!this.#connected(a, b)) this.#linkDown(a, b);
    });
    this.#at(100 + this.random() * 400, () => {
      if (!this.#connected(a, b)) this.#linkDown(b, a);
    });
  }

  /** Puts a message on the wire from `from` to `to`; `deliver` runs at `to` (unless dropped). */
  #wire(from: SimNode, to: SimNode, deliver: () => void): boolean {
    const key = `${from.name}>${to.name}`;
    if (this.#cut.has(key)) {
      // Dropped, or stuck in a retransmitting socket until the heal.
      if (this.random() < 0.3) {
        this.#held.push({ from: from.name, to: to.name, deliver });
        return true;
      }
      return false;
    }
    if (this.random() < this.#loss) return false;
    const delay = this.random() < 0.02 ? this.random() * 50 : 0.05 + this.random() * 2;
    const at = Math.max(this.now + delay, this.#fifo.get(key) ?? 0);
    this.#fifo.set(key, at);
    this.#at(at - this.now, deliver);
    return true;
  }

  #send(from: SimNode, toName: string, msg: Message): void {
    const to = this.#node(toName);
    this.#onFrame?.(from.name, toName, msg);
    const epoch = to.epoch;
    this.#wire(from, to, () => {
      if (to.epoch !== epoch && to.state === undefined) return;
      this.#input(to, (t, s) => {
        if (msg.t === "ring.want") s.onWant(t, from.name);
        else if (msg.t === "ring.release") s.onRelease(t, from.name, msg.ballot as number);
        else throw new Error(`the simulation does not deliver ${msg.t}`);
      });
    });
  }

  #request(from: SimNode, id: number, toName: string, msg: Message, timeoutMs: number): void {
    const to = this.#node(toName);
    this.#onFrame?.(from.name, toName, msg);
    const fromEpoch = from.epoch;
    let done = false;
    const finish = (fn: (t: number, s: RingState) => void) => {
      if (done || from.epoch !== fromEpoch) return;
      done = true;
      this.#input(from, fn);
    };
    const isToken = msg.t === "ring.token";
    if (isToken) this.#tokensInFlight++;
    let landed = false;
    const land = () => {
      if (isToken && !landed) {
        landed = true;
        this.#tokensInFlight--;
      }
    };
    // The sender's timer, in its own clock.
    this.#at(timeoutMs / from.rate, () => {
      finish((t, s) => s.onFailure(t, id, { kind: "timeout" }));
    });
    if (!to.state) {
      land();
      this.#at(1, () => finish((t, s) => s.onFailure(t, id, { kind: "timeout" })));
      return;
    }
    const sent = this.#wire(from, to, () => {
      land(); // in the receiving process now (a crash there loses it with the process)
      if (!to.state) return;
      this.#input(to, (t, s) => {
        const answer = this.#handle(t, s, from.name, msg);
        if (answer.reply) this.#onFrame?.(to.name, from.name, answer.reply);
        this.#wire(to, from, () => {
          if (answer.refused) {
            const refused = answer.refused;
            finish((t2, s2) => s2.onFailure(t2, id, refused));
          } else {
            finish((t2, s2) => s2.onReply(t2, id, to.name, answer.reply!));
          }
        });
      });
    });
    if (!sent) land();
  }

  #handle(
    t: number,
    s: RingState,
    from: string,
    msg: Message,
  ): { reply?: Message; refused?: { kind: "refused"; code: string; current?: number } } {
    switch (msg.t) {
      case "ring.token": {
        const token: Token = {
          gen: Number(msg.gen),
          fence: Number(msg.fence),
          hops: Number(msg.hops),
          want: [...(msg.want as string[])],
        };
        const refusal = s.onToken(t, from, token);
        if (refusal) {
          return { refused: { kind: "refused", code: "stale_token", current: refusal.current } };
        }
        return { reply: { t: "ring.token.ok", gen: s.maxGen } };
      }
      case "ring.lease":
        return { reply: { t: "ring.lease.ok", ...s.onLease(t, from, Number(msg.gen)) } };
      case "ring.prepare":
        return {
          reply: {
            t: "ring.prepare.ok",
            ...s.onPrepare(
              t,
              from,
              Number(msg.ballot),
              typeof msg.holding === "number" ? msg.holding : undefined,
            ),
          },
        };
    }
    throw new Error(`unexpected ${msg.t}`);
  }

  #nextClient(n: SimNode, until: number): void {
    if (this.#clientLoad <= 0) return;
    const gap = -Math.log(1 - this.random()) * 1000 / this.#clientLoad;
    this.#at(gap, () => {
      if (this.now >= until) return;
      const hold = this.random() < 0.1 ? this.random() * this.leaseMs * 2 : this.random() * 30;
      this.lock(n.name, hold, 200 + this.random() * 2_000);
      this.#nextClient(n, until);
    });
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Runs to `until`, then on while a token frame is still on its way (bounded). */
export function settle(sim: RingSim, until: number): void {
  sim.run(until);
  for (let i = 0; i < 200 && sim.tokens().inFlight > 0; i++) sim.run(until + (i + 1) * 10);
}

/**
 * One randomized schedule: 3–5 nodes under load for 10 s of partitions into two sides,
 * one-way cuts, heals, pauses up to 3 leases and crashes; then a heal, and one lock at
 * every node after 14 s. Returns the simulation settled at 19 s. `onFrame` sees every frame.
 */
export function chaos(
  seed: number,
  trace?: string[],
  onFrame?: RingSimOptions["onFrame"],
): { sim: RingSim; names: string[] } {
  const names = ["n1", "n2", "n3", "n4", "n5"].slice(0, 3 + (seed % 3));
  const sim = new RingSim({ members: names, seed, leaseMs: 300, passTimeoutMs: 200, onFrame });
  sim.trace = trace;
  const r = sim.random;
  const pick = () => names[Math.floor(r() * names.length)];
  sim.load(8, 10_000);
  for (let t = 500; t < 10_000; t += 100 + r() * 1_500) {
    sim.run(t);
    const k = r();
    if (k < 0.25) {
      const side = names.filter(() => r() < 0.5);
      sim.cut(side, names.filter((n) => !side.includes(n)));
    } else if (k < 0.35) sim.cut([pick()], [pick()], true);
    else if (k < 0.5) sim.heal();
    else if (k < 0.65) sim.pause(pick(), r() * 3 * sim.leaseMs);
    else if (k < 0.75) sim.crash(pick(), r() * 1_000);
  }
  sim.heal();
  sim.run(14_000);
  for (const n of names) sim.lock(n, 5);
  settle(sim, 19_000);
  return { sim, names };
}

/**
 * The token ring's protocol core, free of sockets and timers: the token, fencing numbers,
 * where the token goes next, which tokens are stale, the regeneration ballot, and the
 * local lock queue. {@linkcode RingState} takes events in and says what to do; the node
 * (`node.ts`) does the I/O.
 *
 * @module
 */
import { ErrorCode, fieldArray, fieldInt, fieldString, type Message } from "../wire/mod.ts";
import { ProtocolError } from "../wire/mod.ts";
import { HolderLease, LeaseAcceptor, majorityOf } from "./lease.ts";

/**
 * Fences are `gen × FENCE_BASE + n` (n = 1, 2, … within a generation), so every fence of a
 * regenerated token exceeds every fence the lost one could have issued.
 */
export const FENCE_BASE = 1_000_000_000;

/** Largest generation whose fences stay exact in a double. */
export const MAX_GEN = Math.floor(Number.MAX_SAFE_INTEGER / FENCE_BASE) - 1;

/** Most node names a token's want list may carry. */
export const MAX_WANT = 1024;

/** The token: generation, last fence issued, hops travelled, nodes known to be waiting. */
export interface Token {
  /** Generation; a regenerated token has a higher one, and lower ones are stale. */
  gen: number;
  /** The last fence issued with this token (`gen × FENCE_BASE` when none yet). */
  fence: number;
  /** Passes since this generation was created. */
  hops: number;
  /** Nodes that asked for the token and have not been visited since. */
  want: string[];
}

/** The fence the next grant with `token` gets. */
export function nextFence(token: Token): number {
  const base = token.gen * FENCE_BASE;
  return token.fence > base ? token.fence + 1 : base + 1;
}

/**
 * Where the token goes next: the first node after `self` in ring order (wrapping) that is
 * alive and waiting. Undefined when nobody else waits (the token parks).
 */
export function passTarget(
  members: readonly string[],
  self: string,
  wanting: ReadonlySet<string>,
  alive: (name: string) => boolean,
): string | undefined {
  const at = members.indexOf(self);
  for (let i = 1; i < members.length; i++) {
    const name = members[(at + i) % members.length];
    if (wanting.has(name) && alive(name)) return name;
  }
  return undefined;
}

/** The next node after `self` in ring order that is alive (the successor). */
export function successorOf(
  members: readonly string[],
  self: string,
  alive: (name: string) => boolean,
): string | undefined {
  return passTarget(members, self, new Set(members), alive);
}

/** Reads a `ring.token` frame; throws `bad_field` for malformed fields. */
export function parseToken(msg: Message): Token {
  const gen = fieldInt(msg, "gen", { min: 1, max: MAX_GEN });
  const fence = fieldInt(msg, "fence", { min: 0, max: Number.MAX_SAFE_INTEGER });
  const hops = fieldInt(msg, "hops", { min: 0, max: Number.MAX_SAFE_INTEGER });
  const rawWant = fieldArray(msg, "want");
  if (rawWant.length > MAX_WANT || rawWant.some((w) => typeof w !== "string")) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: field want must be at most ${MAX_WANT} node names`,
    );
  }
  if (fence < gen * FENCE_BASE || fence >= (gen + 1) * FENCE_BASE) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: fence ${fence} does not belong to generation ${gen}`,
    );
  }
  fieldString(msg, "from");
  return { gen, fence, hops, want: rawWant as string[] };
}

/** Why an arriving token was refused. */
export type TokenRefusal = { reason: "stale" | "duplicate"; current: number };

/** A local lock request waiting in the node's queue. */
export interface LockRequest {
  /** Node-unique request id. */
  id: number;
  /** When it was made (node clock). */
  at: number;
}

/** The current local grant. */
export interface Grant {
  /** The request that holds the lock. */
  id: number;
  /** Its fence. */
  fence: number;
  /** The generation it was granted under. */
  gen: number;
  /** When it was granted (node clock). */
  at: number;
  /** When it was requested (node clock). */
  requestedAt: number;
}

/** Why a grant ended without `unlock`. */
export interface Loss {
  /** The grant that was lost. */
  grant: Grant;
  /** `lease_expired`: no majority acknowledged a renewal in time (cut off, or paused). */
  reason: "lease_expired";
  /** When the lease ended (node clock): the node held the lock until then, not after. */
  leaseEnd: number;
  /** When the loss was noticed (node clock). */
  at: number;
  /** Members this node could reach when it noticed. */
  reachable: number;
}

/** How a request the core asked for ended without a reply. */
export type RequestFailure =
  | { kind: "down" }
  | { kind: "timeout" }
  | { kind: "refused"; code: string; current?: number };

/** What the node must do after an input (drained with `drain()`). */
export type RingEffect =
  | { do: "send"; to: string; msg: Message }
  | { do: "request"; id: number; to: string; msg: Message; timeoutMs: number }
  | { do: "granted"; grant: Grant }
  | { do: "lost"; loss: Loss }
  | { do: "persist"; maxGen: number }
  | { do: "event"; ev: string; fields: Record<string, unknown>; debug?: boolean };

/** Options of {@linkcode RingState}. */
export interface RingStateOptions {
  /** Lease of a holder, in ms. @default {3000} */
  leaseMs?: number;
  /** How long a token pass waits for its acknowledgement. @default {2000} */
  passTimeoutMs?: number;
  /** Highest generation promised before a restart (from disk). @default {0} */
  maxGen?: number;
  /** The clock at construction. @default {0} */
  now?: number;
  /** Random source for backoff jitter. @default {Math.random} */
  random?: () => number;
}

/** A quick renewal (a bare majority asked) not answered within this asks everyone. */
export const QUICK_FALLBACK_MS = 25;

/** Ballots a check tries before it gives up (a waiting request starts another later). */
export const MAX_CHECK_ATTEMPTS = 8;

type Pending =
  | { kind: "pass"; gen: number }
  | { kind: "lease"; round: number; gen: number }
  | { kind: "prepare"; ballot: number };

interface Ballot {
  ballot: number;
  previous: number;
  reason: string;
  promote: number | undefined;
  promises: Set<string>;
  pending: number;
  higher: number;
  leasedMs: number;
  wanting: Set<string>;
}

/**
 * One node's view of the token ring protocol, with leases. Inputs carry `now` (the
 * node's monotonic clock, ms); outputs are effects, drained with `drain()`; the node
 * (`node.ts`) does the I/O and feeds replies back by request id.
 *
 * - Leases: a node holding the token may grant, pass or keep it only while its lease is
 *   valid (see `lease.ts`); it renews every `leaseMs / 3` with every member and needs a
 *   majority of the configured ring. Every input first checks the lease: a grant whose
 *   lease ended is lost (`lost` effect) before anything else happens, so a node that was
 *   paused past its lease never acts on it.
 * - Generations: `maxGen` is the highest generation or ballot promised or seen (kept on
 *   disk). A token with a lower generation is refused; one that a majority superseded is
 *   destroyed at its next renewal. A lost token is regenerated by a ballot that a majority
 *   promised; acceptors promise only once the last lease they acknowledged ended, so the
 *   new token's lease starts after the old one's. A holder whose token meets a higher
 *   ballot while its lease is valid renumbers the token (a ballot of its own) instead of
 *   losing it.
 * - Fences: `gen × FENCE_BASE + n`, increasing along the token's path and across
 *   generations.
 * - Lock: requests are served in arrival order, one per visit of the token while other
 *   nodes wait (several in a row when nobody else does); the grant lasts until released
 *   or until the lease is lost.
 * - Idle: with no requests anywhere the token parks at the last holder (renewing).
 */
export class RingState {
  /** Ring members in file order. */
  readonly members: readonly string[];
  /** This node. */
  readonly self: string;
  /** Majority of the configured ring. */
  readonly majority: number;
  /** Lease length (ms). */
  readonly leaseMs: number;
  /** Renewal period (ms). */
  readonly renewEveryMs: number;
  /** The acceptor side. */
  readonly acceptor: LeaseAcceptor;
  /** The holder side. */
  readonly lease: HolderLease;
  /** The token, while this node holds it (also while a pass of it is in flight). */
  token: Token | undefined;
  /** The current local grant. */
  grant: Grant | undefined;
  /** Local requests waiting, in arrival order. */
  readonly queue: LockRequest[] = [];
  /** Members reachable now (the node's links). */
  readonly alive = new Set<string>();
  /** Highest generation heard of (promised or not). */
  seenGen = 0;
  /** Fences issued by this node. */
  fencesIssued = 0;
  /** Token arrivals at this node. */
  visits = 0;
  /** Passes acknowledged. */
  passes = 0;
  /** Tokens created by this node after the first (regenerations). */
  regenerations = 0;
  /** Tokens renumbered by this node. */
  promotions = 0;
  /** Tokens refused or destroyed as stale. */
  staleDiscarded = 0;
  /** The last fence this node saw in a token. */
  lastFence = 0;
  /** The last hop count this node saw in a token. */
  lastHops = 0;
  /** The last lost grant. */
  lastLoss: Loss | undefined;
  readonly #heardWants = new Set<string>();
  readonly #pending = new Map<number, Pending>();
  readonly #passTimeoutMs: number;
  readonly #random: () => number;
  #out: RingEffect[] = [];
  #passing: { id: number; to: string; gen: number; hops: number; until: number } | undefined;
  #ballot: Ballot | undefined;
  #checkAt: number | undefined;
  #checkReason = "lost";
  #checkAttempt = 0;
  #waitingSince = 0;
  #lastWantAt = -Infinity;
  #leaseWasValid = false;
  #quick: { round: number; at: number; failed: boolean } | undefined;
  #lastTokenGen = 0;
  #grantsThisVisit = 0;
  #nextId = 1;
  #nextRequest = 1;

  constructor(members: readonly string[], self: string, options: RingStateOptions = {}) {
    if (!members.includes(self)) throw new Error(`Cannot join the ring: ${self} is not a member`);
    this.members = members;
    this.self = self;
    this.majority = majorityOf(members.length);
    this.leaseMs = options.leaseMs ?? 3_000;
    this.renewEveryMs = Math.max(1, Math.floor(this.leaseMs / 3));
    this.#passTimeoutMs = options.passTimeoutMs ?? 2_000;
    this.#random = options.random ?? Math.random;
    const now = options.now ?? 0;
    this.acceptor = new LeaseAcceptor(this.leaseMs, { maxGen: options.maxGen, now });
    this.lease = new HolderLease(this.leaseMs, this.majority);
    this.seenGen = this.acceptor.maxGen;
  }

  /** Highest generation or ballot promised or seen here. */
  get maxGen(): number {
    return this.acceptor.maxGen;
  }

  /** Whether a pass of the held token is in flight. */
  get passing(): boolean {
    return this.#passing !== undefined;
  }

  /** Whether this node holds the token, is not passing it, and its lease is valid. */
  holding(now: number): boolean {
    return this.token !== undefined && !this.#passing && this.lease.valid(now);
  }

  /** Whether a majority of the ring is reachable from here (this node included). */
  get quorum(): boolean {
    return this.alive.size + 1 >= this.majority;
  }

  /** Whether `name` is a ring member. */
  isMember(name: string): boolean {
    return this.members.includes(name);
  }

  /** The effects produced since the last call. */
  drain(): RingEffect[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** Starts the node: a one-member ring creates its token at once. */
  start(now: number): void {
    this.#expire(now);
    if (this.members.length === 1 && this.maxGen === 0) this.#startBallot(now, "start");
    this.#step(now);
  }

  /** Runs a check (a ballot) now, e.g. for the `start` command. */
  check(now: number, reason: string): void {
    this.#expire(now);
    this.#scheduleCheck(now, reason, now);
    this.tick(now);
  }

  /** Queues a local lock request; returns it and how many are ahead of it. */
  request(now: number): { request: LockRequest; ahead: number } {
    this.#expire(now);
    const request = { id: this.#nextId++, at: now };
    const ahead = this.queue.length + (this.grant ? 1 : 0);
    if (this.queue.length === 0) this.#waitingSince = now;
    this.queue.push(request);
    // While a pass is in flight the token already left with the old want list: announce.
    if (!this.token || this.#passing) this.#announce(now);
    this.#step(now);
    return { request, ahead };
  }

  /** Drops a waiting request (timeout, client gone); true if it was waiting. */
  cancel(id: number): boolean {
    const i = this.queue.findIndex((r) => r.id === id);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** Ends the current grant (checking `fence` when given); returns it. */
  release(now: number, fence?: number): Grant {
    this.#expire(now);
    const grant = this.grant;
    if (!grant) {
      const loss = this.lastLoss;
      const lost = loss && (fence === undefined || fence === loss.grant.fence)
        ? `; fence ${loss.grant.fence} was lost (${loss.reason})`
        : "";
      throw new ProtocolError("not_held", `Cannot unlock: this node does not hold the lock${lost}`);
    }
    if (fence !== undefined && fence !== grant.fence) {
      throw new ProtocolError(
        "not_held",
        `Cannot unlock fence ${fence}: the lock is held with fence ${grant.fence}`,
      );
    }
    this.grant = undefined;
    this.#step(now);
    return grant;
  }

  /** Timers: lease expiry and renewal, checks, want re-announcements. */
  tick(now: number): void {
    this.#expire(now);
    if (this.queue.length === 0 || this.token) this.#waitingSince = now;
    else if (
      now - this.#waitingSince >= this.renewEveryMs && !this.#ballot && this.#checkAt === undefined
    ) {
      // A request waited a renewal period without a token visit: is there a token?
      this.#waitingSince = now;
      this.#scheduleCheck(now, "lost", now);
    }
    if (this.#checkAt !== undefined && now >= this.#checkAt && !this.#ballot) {
      this.#checkAt = undefined;
      this.#startBallot(now, this.#checkReason);
    }
    if (
      this.queue.length > 0 && (!this.token || this.#passing) &&
      now - this.#lastWantAt >= this.renewEveryMs
    ) {
      this.#announce(now);
    }
    this.#step(now);
  }

  /** When the next `tick` is due (node clock). */
  nextWake(now: number): number {
    let at = Infinity;
    if (this.token && !this.#passing) {
      at = Math.min(at, this.lease.lastStart + this.renewEveryMs);
      if (this.lease.valid(now)) at = Math.min(at, this.lease.until);
      else if (this.queue.length > 0) at = Math.min(at, this.lease.lastStart + this.#retryMs());
      if (!this.lease.valid(now) && this.#quick) {
        at = Math.min(at, this.#quick.at + QUICK_FALLBACK_MS);
      }
    }
    if (this.#checkAt !== undefined) at = Math.min(at, this.#checkAt);
    if (this.queue.length > 0 && !this.token) {
      at = Math.min(
        at,
        this.#waitingSince + this.renewEveryMs,
        this.#lastWantAt + this.renewEveryMs,
      );
    }
    return Math.max(at, now);
  }

  /** A member became reachable. */
  peerUp(now: number, name: string): void {
    this.#expire(now);
    if (name === this.self || !this.isMember(name)) return;
    this.alive.add(name);
    if (this.queue.length > 0 && !this.token) {
      this.#out.push({ do: "send", to: name, msg: { t: "ring.want" } });
    }
    if (this.members[0] === this.self && this.seenGen === 0 && !this.token && this.quorum) {
      this.#scheduleCheck(now, "start", now);
      this.tick(now);
      return;
    }
    // After a heal a token that lapsed tries again at once (and dies if superseded).
    if (this.token && !this.lease.valid(now) && !this.lease.waiting()) {
      this.lease.lastStart = -Infinity;
    }
    this.#step(now);
  }

  /** A member became unreachable. */
  peerDown(now: number, name: string): void {
    this.#expire(now);
    this.alive.delete(name);
    this.#step(now);
  }

  /** An arriving token (`ring.token`); a refusal is answered as `stale_token`. */
  onToken(now: number, _from: string, token: Token): TokenRefusal | undefined {
    this.#expire(now);
    if (token.gen < this.maxGen) return { reason: "stale", current: this.maxGen };
    if (this.token) {
      const passing = this.#passing;
      if (passing && token.gen === this.token.gen && token.hops > passing.hops) {
        // Our pass arrived and the token came back before its acknowledgement did.
        this.#passing = undefined;
      } else if (this.token.gen >= token.gen) {
        return { reason: "duplicate", current: this.token.gen };
      } else {
        // Ours is older than one that exists: ours is the stale one.
        this.#destroy(now, this.token.gen, token.gen, "replaced");
      }
    }
    if (this.acceptor.learn(token.gen)) this.#persist();
    this.seenGen = Math.max(this.seenGen, token.gen);
    const want = new Set(token.want);
    for (const w of this.#heardWants) want.add(w);
    this.#heardWants.clear();
    want.delete(this.self);
    this.token = { ...token, want: [...want].filter((w) => this.isMember(w)) };
    this.#lastTokenGen = Math.max(this.#lastTokenGen, token.gen);
    this.visits++;
    this.lastFence = token.fence;
    this.lastHops = token.hops;
    this.#grantsThisVisit = 0;
    this.#waitingSince = now;
    // A token that arrives carries no lease: renew before acting on it.
    this.#clearLease();
    this.#leaseWasValid = false;
    this.#step(now);
    return undefined;
  }

  /** Another node wants the token (`ring.want`). */
  onWant(now: number, from: string): void {
    this.#expire(now);
    if (from === this.self || !this.isMember(from)) return;
    if (this.token) {
      if (!this.token.want.includes(from)) this.token.want.push(from);
      // A pass in flight already carries the old list: remember it for the next visit.
      if (this.#passing) this.#heardWants.add(from);
    } else {
      this.#heardWants.add(from);
    }
    this.#step(now);
  }

  /** A renewal of `from`'s lease on generation `gen` (`ring.lease`). */
  onLease(now: number, from: string, gen: number): { ok: boolean; maxGen: number } {
    this.#expire(now);
    const answer = this.acceptor.renew(now, from, gen);
    if (answer.ok && answer.learned) this.#persist();
    this.seenGen = Math.max(this.seenGen, gen);
    return { ok: answer.ok, maxGen: this.maxGen };
  }

  /** A ballot from `from` (`ring.prepare`); `holding` is the proposer's token generation. */
  onPrepare(
    now: number,
    from: string,
    ballot: number,
    holding?: number,
  ): { ok: boolean; maxGen: number; leased_ms: number; wanting: boolean } {
    this.#expire(now);
    this.seenGen = Math.max(this.seenGen, ballot);
    const answer = this.acceptor.promise(now, from, ballot, holding);
    if (answer.ok) {
      this.#persist();
      // A token of ours below the promise can never be renewed here again.
      if (this.token && this.token.gen < ballot && !this.#passing) {
        this.#destroy(now, this.token.gen, ballot, "superseded");
      }
    }
    const reply = {
      ok: answer.ok,
      maxGen: this.maxGen,
      leased_ms: answer.ok ? 0 : Math.ceil(answer.leasedMs),
      wanting: this.queue.length > 0,
    };
    this.#step(now);
    return reply;
  }

  /** The reply to request `id`. */
  onReply(now: number, id: number, from: string, msg: Message): void {
    this.#expire(now);
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    switch (p.kind) {
      case "pass":
        if (this.#passing?.id === id) this.#passed(from);
        break;
      case "lease":
        if (msg.ok === true) {
          if (this.lease.ack(p.round, from) && this.token?.gen !== undefined) {
            this.#leaseWasValid = true;
          }
        } else {
          this.lease.fail(p.round);
          if (this.#quick?.round === p.round) this.#quick.failed = true;
          const higher = typeof msg.maxGen === "number" ? msg.maxGen : 0;
          if (higher > p.gen) this.#superseded(now, higher);
        }
        break;
      case "prepare":
        this.#ballotAnswer(now, p.ballot, from, msg);
        break;
    }
    this.#step(now);
  }

  /** Request `id` ended without a reply. */
  onFailure(now: number, id: number, failure: RequestFailure): void {
    this.#expire(now);
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    switch (p.kind) {
      case "pass":
        if (this.#passing?.id === id) this.#passFailed(now, failure);
        break;
      case "lease":
        this.lease.fail(p.round);
        if (this.#quick?.round === p.round) this.#quick.failed = true;
        break;
      case "prepare":
        this.#ballotAnswer(now, p.ballot, undefined, undefined);
        break;
    }
    this.#step(now);
  }

  /** Where a stopping node should hand its token: the successor, if it holds one. */
  handOff(now: number): { to: string; token: Token } | undefined {
    this.#expire(now);
    if (!this.token || this.#passing || !this.lease.valid(now)) return undefined;
    const to = successorOf(this.members, this.self, (n) => this.alive.has(n));
    return to ? { to, token: this.outgoing() } : undefined;
  }

  /** The token as sent to the next holder (this node joins `want` if it still waits). */
  outgoing(): Token {
    const token = this.token!;
    const want = token.want.filter((w) => w !== this.self);
    if (this.queue.length > 0) want.push(this.self);
    return { gen: token.gen, fence: token.fence, hops: token.hops + 1, want };
  }

  /** The token was handed off outside the core (stop): it is gone from here. */
  handedOff(): void {
    if (this.token) this.lastHops = this.token.hops + 1;
    this.token = undefined;
    this.#passing = undefined;
    this.#clearLease();
  }

  // ---- internals ----------------------------------------------------------------------

  #clearLease(): void {
    this.lease.clear();
    this.#quick = undefined;
  }

  #retryMs(): number {
    return Math.min(100, this.renewEveryMs);
  }

  #persist(): void {
    this.#out.push({ do: "persist", maxGen: this.maxGen });
  }

  #event(ev: string, fields: Record<string, unknown>, debug = false): void {
    this.#out.push({ do: "event", ev, fields, debug });
  }

  #request(to: string, msg: Message, timeoutMs: number, pending: Pending): number {
    const id = this.#nextRequest++;
    this.#pending.set(id, pending);
    this.#out.push({ do: "request", id, to, msg, timeoutMs });
    return id;
  }

  #announce(now: number): void {
    this.#lastWantAt = now;
    for (const name of this.alive) {
      this.#out.push({ do: "send", to: name, msg: { t: "ring.want" } });
    }
  }

  /** The lease check that precedes every input: a grant past its lease is lost. */
  #expire(now: number): void {
    if (this.lease.valid(now)) return;
    if (this.grant) {
      const loss: Loss = {
        grant: this.grant,
        reason: "lease_expired",
        leaseEnd: this.lease.until,
        at: now,
        reachable: this.alive.size + 1,
      };
      this.grant = undefined;
      this.lastLoss = loss;
      this.#out.push({ do: "lost", loss });
    }
    if (this.#leaseWasValid) {
      this.#leaseWasValid = false;
      if (this.token) {
        this.#event("lease.expired", {
          gen: this.token.gen,
          reachable: this.alive.size + 1,
          majority: this.majority,
        });
      }
    }
  }

  #step(now: number): void {
    this.#expire(now);
    const token = this.token;
    if (!token || this.#passing) return;
    if (this.#ballot?.promote !== undefined) return;
    if (token.gen < this.maxGen) {
      this.#superseded(now, this.maxGen);
      return;
    }
    if (this.#renewDue(now)) this.#renew(now);
    if (!this.token || !this.lease.valid(now)) return;
    this.#leaseWasValid = true;
    if (this.grant) return;
    const alive = (n: string) => this.alive.has(n);
    // Wants of unreachable nodes stay (they are served once reachable) but do not count.
    token.want = token.want.filter((w) => w !== this.self);
    const others = token.want.some((w) => alive(w));
    if (this.queue.length > 0 && (this.#grantsThisVisit === 0 || !others)) {
      const request = this.queue.shift()!;
      const fence = nextFence(token);
      token.fence = fence;
      this.lastFence = fence;
      this.fencesIssued++;
      this.#grantsThisVisit++;
      this.grant = { id: request.id, fence, gen: token.gen, at: now, requestedAt: request.at };
      this.#out.push({ do: "granted", grant: this.grant });
      return;
    }
    if (others) {
      const to = passTarget(this.members, this.self, new Set(token.want), alive);
      if (to) this.#pass(to);
    }
  }

  #renewDue(now: number): boolean {
    if (!this.token || this.#passing) return false;
    const since = now - this.lease.lastStart;
    if (since >= this.renewEveryMs) return true;
    if (this.lease.valid(now)) return false;
    // A quick round that failed or is slow: ask everyone now.
    const quick = this.#quick;
    if (quick && (quick.failed || now - quick.at >= QUICK_FALLBACK_MS)) return true;
    return !this.lease.waiting() && (this.queue.length > 0 || this.grant !== undefined) &&
      since >= this.#retryMs();
  }

  /**
   * Starts a renewal round. The first round for a token that just arrived asks only as
   * many members as a majority needs (the next ones in ring order); every other round,
   * and a quick one that fails or takes longer than `QUICK_FALLBACK_MS`, asks everyone.
   */
  #renew(now: number): void {
    const token = this.token!;
    const mine = this.acceptor.renew(now, this.self, token.gen);
    if (!mine.ok) {
      this.#superseded(now, mine.maxGen);
      return;
    }
    if (mine.learned) this.#persist();
    const quick = this.lease.lastStart === -Infinity && this.#quick === undefined;
    let peers = [...this.alive];
    if (quick) {
      const at = this.members.indexOf(this.self);
      peers = [];
      for (let i = 1; i < this.members.length && peers.length < this.majority - 1; i++) {
        const name = this.members[(at + i) % this.members.length];
        if (this.alive.has(name)) peers.push(name);
      }
    }
    const round = this.lease.begin(now, token.gen, this.self, peers.length);
    this.#quick = quick ? { round, at: now, failed: false } : undefined;
    for (const to of peers) {
      this.#request(to, { t: "ring.lease", gen: token.gen, round }, this.renewEveryMs, {
        kind: "lease",
        round,
        gen: token.gen,
      });
    }
  }

  /** A generation above our token's exists: renumber it while our lease holds, else drop it. */
  #superseded(now: number, higher: number): void {
    this.seenGen = Math.max(this.seenGen, higher);
    const token = this.token;
    if (!token || token.gen >= higher || this.#passing) return;
    if (this.lease.valid(now) && higher <= MAX_GEN - 1) {
      if (!this.#ballot) this.#startBallot(now, "promote", token.gen);
      return;
    }
    this.#destroy(now, token.gen, higher, "superseded");
  }

  #destroy(now: number, gen: number, current: number, reason: string): void {
    this.staleDiscarded++;
    this.token = undefined;
    this.#passing = undefined;
    this.#clearLease();
    this.#expire(now);
    this.#leaseWasValid = false;
    this.#event("token.stale", { gen, current, from: this.self, reason });
  }

  #pass(to: string): void {
    const out = this.outgoing();
    const id = this.#request(
      to,
      { t: "ring.token", ...out, from: this.self },
      this.#passTimeoutMs,
      {
        kind: "pass",
        gen: out.gen,
      },
    );
    // From now on this node does not act on the token: its lease ends here.
    this.#passing = { id, to, gen: out.gen, hops: out.hops, until: this.lease.until };
    this.lease.until = -Infinity;
    this.#leaseWasValid = false;
  }

  #passed(to: string): void {
    const out = this.#passing!;
    this.passes++;
    this.lastHops = out.hops;
    this.token = undefined;
    this.#passing = undefined;
    this.#clearLease();
    this.#event("token.pass", { to, gen: out.gen, hops: out.hops }, true);
  }

  #passFailed(now: number, failure: RequestFailure): void {
    const passing = this.#passing!;
    this.#passing = undefined;
    const token = this.token!;
    if (failure.kind === "down") {
      // Never sent: keep the token (and the lease we had) and pick another node.
      this.lease.until = passing.until;
      this.alive.delete(passing.to);
      return;
    }
    if (failure.kind === "refused" && failure.code === "stale_token") {
      // It did not take the token; we still hold it. Renumber or drop it.
      this.lease.until = passing.until;
      this.#superseded(now, Math.max(failure.current ?? 0, token.gen + 1));
      return;
    }
    if (failure.kind === "refused") {
      // Refused for another reason: it did not take the token; keep it, skip that node.
      this.lease.until = passing.until;
      token.want = token.want.filter((w) => w !== passing.to);
      this.#event("token.refused", { to: passing.to, code: failure.code });
      return;
    }
    // No answer: it may or may not have the token. Drop ours; a check decides.
    this.token = undefined;
    this.#clearLease();
    this.#event("token.uncertain", { to: passing.to, gen: passing.gen });
    this.#scheduleCheck(now, "uncertain", now + this.renewEveryMs);
  }

  #scheduleCheck(now: number, reason: string, at: number): void {
    if (this.#checkAt !== undefined && this.#checkAt <= at) return;
    this.#checkReason = reason;
    this.#checkAt = Math.max(at, now);
  }

  #startBallot(now: number, reason: string, promote?: number): void {
    if (this.#ballot) return;
    if (promote === undefined && this.token) return;
    if (!this.quorum) {
      // A minority cannot win; trying would only raise generations it cannot use.
      if (promote === undefined) this.#scheduleCheck(now, reason, now + this.renewEveryMs);
      return;
    }
    const ballot = Math.min(Math.max(this.maxGen, this.seenGen) + 1, MAX_GEN);
    const mine = this.acceptor.promise(now, this.self, ballot, promote);
    if (!mine.ok) {
      if (promote === undefined) {
        const wait = mine.leasedMs > 0 ? mine.leasedMs + 1 + this.#random() * 20 : this.#backoff();
        this.#scheduleCheck(now, reason, now + wait);
      }
      return;
    }
    this.#persist();
    const previous = Math.max(this.seenGen, this.#lastTokenGen);
    this.seenGen = ballot;
    const peers = [...this.alive];
    this.#ballot = {
      ballot,
      previous,
      reason,
      promote,
      promises: new Set([this.self]),
      pending: peers.length,
      higher: 0,
      leasedMs: 0,
      wanting: new Set(),
    };
    this.#event("token.check", { reason, ballot, promote: promote ?? null }, true);
    for (const to of peers) {
      const msg: Message = { t: "ring.prepare", ballot, reason };
      if (promote !== undefined) msg.holding = promote;
      this.#request(to, msg, this.renewEveryMs, { kind: "prepare", ballot });
    }
    this.#ballotMaybeDone(now);
  }

  #backoff(): number {
    return 20 + this.#random() * 100 * (this.#checkAttempt + 1);
  }

  #ballotAnswer(now: number, ballot: number, from: string | undefined, msg: Message | undefined) {
    const b = this.#ballot;
    if (!b || b.ballot !== ballot) return;
    b.pending--;
    if (from !== undefined && msg !== undefined) {
      if (msg.ok === true) {
        b.promises.add(from);
        if (msg.wanting === true) b.wanting.add(from);
      } else {
        if (typeof msg.maxGen === "number") b.higher = Math.max(b.higher, msg.maxGen);
        if (typeof msg.leased_ms === "number") b.leasedMs = Math.max(b.leasedMs, msg.leased_ms);
      }
    }
    this.#ballotMaybeDone(now);
  }

  #ballotMaybeDone(now: number): void {
    const b = this.#ballot!;
    if (b.promises.size >= this.majority) {
      this.#ballot = undefined;
      this.#ballotWon(now, b);
    } else if (b.pending <= 0) {
      this.#ballot = undefined;
      this.#ballotLost(now, b);
    }
  }

  #ballotWon(now: number, b: Ballot): void {
    this.#checkAttempt = 0;
    if (this.maxGen !== b.ballot) {
      // Overtaken by a higher ballot meanwhile.
      if (b.promote === undefined) this.#scheduleCheck(now, b.reason, now + this.#backoff());
      return;
    }
    if (b.promote !== undefined) {
      const token = this.token;
      if (!token || this.#passing || token.gen !== b.promote) return;
      const previous = token.gen;
      token.gen = b.ballot;
      token.fence = b.ballot * FENCE_BASE;
      token.hops = 0;
      this.promotions++;
      this.lease.lastStart = -Infinity;
      this.#lastTokenGen = b.ballot;
      this.#event("token.renumbered", { gen: b.ballot, previous });
      return;
    }
    if (this.token) return;
    const want = new Set([...b.wanting, ...this.#heardWants]);
    this.#heardWants.clear();
    want.delete(this.self);
    this.token = {
      gen: b.ballot,
      fence: b.ballot * FENCE_BASE,
      hops: 0,
      want: [...want].filter((w) => this.isMember(w)),
    };
    this.lastFence = this.token.fence;
    this.lastHops = 0;
    this.#grantsThisVisit = 0;
    this.visits++;
    this.#waitingSince = now;
    this.#clearLease();
    const lastTokenGen = this.#lastTokenGen;
    this.#lastTokenGen = b.ballot;
    if (b.previous === 0) {
      this.#event("token.created", { gen: b.ballot, reason: b.reason });
    } else {
      this.regenerations++;
      this.#event("token.regenerated", {
        gen: b.ballot,
        reason: b.reason,
        previous: lastTokenGen,
      });
    }
  }

  #ballotLost(now: number, b: Ballot): void {
    this.seenGen = Math.max(this.seenGen, b.higher);
    this.#event("token.check", {
      reason: b.reason,
      ballot: b.ballot,
      result: "lost",
      promises: b.promises.size,
      leased_ms: b.leasedMs,
    }, true);
    if (b.promote !== undefined) {
      // Our renumbering failed; try again while the lease lasts (else the token dies).
      const token = this.token;
      if (token && token.gen === b.promote && this.lease.valid(now)) {
        this.#startBallot(now, "promote", token.gen);
      } else if (token && token.gen < this.maxGen) {
        this.#superseded(now, this.maxGen);
      }
      return;
    }
    if (b.reason === "start" && b.higher > 0) return; // a token exists already
    this.#checkAttempt++;
    if (this.#checkAttempt >= MAX_CHECK_ATTEMPTS && b.leasedMs === 0) {
      this.#checkAttempt = 0;
      this.#event("token.check", { reason: b.reason, result: "gave up" }, true);
      return;
    }
    // Several waiting nodes try at once when the last lease runs out. A lease still held
    // somewhere: try again when it ends (with jitter). A competing ballot at least as
    // high: it probably won, so give its token time to be leased (then it refuses us).
    const wait = b.leasedMs > 0
      ? b.leasedMs + 1 + this.#random() * 20
      : b.higher >= b.ballot
      ? this.renewEveryMs * (0.5 + this.#random())
      : this.#backoff();
    this.#scheduleCheck(now, b.reason, now + wait);
  }
}

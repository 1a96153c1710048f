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
  /** When it was made (`performance.now()`). */
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
  /** When it was granted (`performance.now()`). */
  at: number;
  /** When it was requested (`performance.now()`). */
  requestedAt: number;
}

/** Reply to a regeneration ballot (`ring.prepare`). */
export interface PrepareReply {
  /** The ballot was accepted (no higher promise or generation seen). */
  ok: boolean;
  /** This node holds the token (so nothing is lost); it was renumbered to the ballot. */
  holding: boolean;
  /** Highest generation or ballot this node knows. */
  maxGen: number;
  /** This node has local lock requests waiting. */
  wanting: boolean;
}

/** What the node should do with the token now. */
export type NextStep =
  | { do: "grant"; grant: Grant }
  | { do: "pass"; to: string }
  | { do: "park" }
  | { do: "nothing" };

/**
 * One node's view of the token ring protocol.
 *
 * - Generations: `maxGen` is the highest generation (or ballot) seen; a token with a lower
 *   generation is stale and refused. A node creates a token only after every live member
 *   accepted its ballot and it still holds its own promise (see `beginBallot`,
 *   `mayCreate`), so a regeneration happens once; a holder that sees a higher ballot
 *   renumbers its token to it and reports `holding`, which cancels the regeneration.
 * - Lock: requests are served in arrival order, one per visit of the token while other
 *   nodes wait (several in a row when nobody else does); the grant lasts until released.
 * - Idle: with no requests anywhere the token parks at the last holder.
 */
export class RingState {
  /** Ring members in file order. */
  readonly members: readonly string[];
  /** This node. */
  readonly self: string;
  /** Highest generation or ballot promised or seen. */
  maxGen = 0;
  /** The token, while this node holds it. */
  token: Token | undefined;
  /** Whether a pass of the held token is in flight. */
  passing = false;
  /** The current local grant. */
  grant: Grant | undefined;
  /** Local requests waiting, in arrival order. */
  readonly queue: LockRequest[] = [];
  /** Wants heard from other nodes while not holding the token. */
  readonly heardWants = new Set<string>();
  /** Fences issued by this node. */
  fencesIssued = 0;
  /** Token arrivals at this node. */
  visits = 0;
  /** The last fence this node saw in a token. */
  lastFence = 0;
  /** The last hop count this node saw in a token. */
  lastHops = 0;
  #grantsThisVisit = 0;
  #nextId = 1;

  constructor(members: readonly string[], self: string) {
    if (!members.includes(self)) throw new Error(`Cannot join the ring: ${self} is not a member`);
    this.members = members;
    this.self = self;
  }

  /** Whether `name` is a ring member. */
  isMember(name: string): boolean {
    return this.members.includes(name);
  }

  /** Queues a local lock request; returns it and how many are ahead of it. */
  request(now: number): { request: LockRequest; ahead: number } {
    const request = { id: this.#nextId++, at: now };
    const ahead = this.queue.length + (this.grant ? 1 : 0);
    this.queue.push(request);
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
  release(fence?: number): Grant {
    const grant = this.grant;
    if (!grant) {
      throw new ProtocolError("not_held", "Cannot unlock: this node does not hold the lock");
    }
    if (fence !== undefined && fence !== grant.fence) {
      throw new ProtocolError(
        "not_held",
        `Cannot unlock fence ${fence}: the lock is held with fence ${grant.fence}`,
      );
    }
    this.grant = undefined;
    return grant;
  }

  /** Checks an arriving token; on acceptance this node holds it. */
  receiveToken(token: Token): TokenRefusal | undefined {
    if (token.gen < this.maxGen) return { reason: "stale", current: this.maxGen };
    if (this.token) {
      if (this.passing && token.gen === this.token.gen && token.hops > this.token.hops) {
        // Our pass arrived and the token came back before its acknowledgement did.
        this.passing = false;
      } else if (this.token.gen >= token.gen) {
        return { reason: "duplicate", current: this.token.gen };
      } else {
        // Ours is older than one that exists: ours is the stale one.
        this.token = undefined;
        this.passing = false;
      }
    }
    this.maxGen = token.gen;
    const want = new Set(token.want);
    for (const w of this.heardWants) want.add(w);
    this.heardWants.clear();
    want.delete(this.self);
    this.token = { ...token, want: [...want].filter((w) => this.isMember(w)) };
    this.visits++;
    this.lastFence = token.fence;
    this.lastHops = token.hops;
    this.#grantsThisVisit = 0;
    return undefined;
  }

  /** Another node wants the token. */
  hearWant(from: string): void {
    if (from === this.self || !this.isMember(from)) return;
    if (this.token) {
      if (!this.token.want.includes(from)) this.token.want.push(from);
      // A pass in flight already carries the old list: remember it for the next visit.
      if (this.passing) this.heardWants.add(from);
    } else {
      this.heardWants.add(from);
    }
  }

  /** Decides the next step for the held token (`alive` says which peers are reachable). */
  next(alive: (name: string) => boolean, now: number): NextStep {
    const token = this.token;
    if (!token || this.passing || this.grant) return { do: "nothing" };
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
      return { do: "grant", grant: this.grant };
    }
    if (others) {
      const to = passTarget(this.members, this.self, new Set(token.want), alive);
      if (to) return { do: "pass", to };
    }
    return { do: "park" };
  }

  /** The token as sent to the next holder (this node joins `want` if it still waits). */
  outgoing(): Token {
    const token = this.token!;
    const want = token.want.filter((w) => w !== this.self);
    if (this.queue.length > 0) want.push(this.self);
    return { gen: token.gen, fence: token.fence, hops: token.hops + 1, want };
  }

  /** The pass was acknowledged: the token is gone from here. */
  passed(): void {
    if (this.token) this.lastHops = this.token.hops + 1;
    this.token = undefined;
    this.passing = false;
  }

  /** The pass was refused as stale: drops the token unless it was renumbered meanwhile. */
  refused(sentGen: number): "retry" | "dropped" {
    this.passing = false;
    if (this.token && this.token.gen > sentGen) return "retry";
    this.token = undefined;
    return "dropped";
  }

  /** The pass may or may not have arrived: drops the token (a ballot will sort it out). */
  uncertain(): void {
    this.token = undefined;
    this.passing = false;
  }

  /** Starts a regeneration ballot: a number above everything seen, promised to itself. */
  beginBallot(): number {
    this.maxGen = Math.min(this.maxGen + 1, MAX_GEN);
    return this.maxGen;
  }

  /** Answers another node's ballot. */
  prepare(ballot: number): PrepareReply {
    const wanting = this.queue.length > 0;
    if (this.token) {
      if (ballot > this.token.gen) {
        // Renumber the only token to the ballot: the ballot's promises then admit it.
        this.token.gen = ballot;
        this.token.fence = ballot * FENCE_BASE;
        this.maxGen = Math.max(this.maxGen, ballot);
      }
      return { ok: false, holding: true, maxGen: this.maxGen, wanting };
    }
    if (ballot <= this.maxGen) return { ok: false, holding: false, maxGen: this.maxGen, wanting };
    this.maxGen = ballot;
    return { ok: true, holding: false, maxGen: this.maxGen, wanting };
  }

  /** Whether a token of generation `ballot` may be created here now. */
  mayCreate(ballot: number): boolean {
    return this.maxGen === ballot && this.token === undefined;
  }

  /** Creates the token of generation `ballot` here, carrying the nodes known to wait. */
  create(ballot: number, wanting: Iterable<string>): Token {
    const want = new Set([...wanting, ...this.heardWants]);
    this.heardWants.clear();
    want.delete(this.self);
    this.token = {
      gen: ballot,
      fence: ballot * FENCE_BASE,
      hops: 0,
      want: [...want].filter((w) => this.isMember(w)),
    };
    this.maxGen = ballot;
    this.lastFence = this.token.fence;
    this.lastHops = 0;
    this.#grantsThisVisit = 0;
    this.visits++;
    return this.token;
  }
}

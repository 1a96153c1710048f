/**
 * Leases for the token ring, free of sockets and timers: the acceptor side every node
 * keeps (its promise and the last lease it acknowledged) and the holder side (renewal
 * rounds and the lease they earn). Times are one node's monotonic milliseconds.
 *
 * Safety rests on majorities of the configured ring. A holder acts only while a renewal
 * it started at `t0` (its clock) was acknowledged by a majority; that lease ends at
 * `t0 + lease`. An acceptor that acknowledged a renewal at `a` (its clock, later than
 * `t0`) promises no ballot of another node before `a + lease × (1 + LEASE_DRIFT) +
 * LEASE_GUARD_MS`, and once it promised a ballot it refuses renewals of older generations.
 * Any two majorities share a node, so a new token can only be created after every lease
 * a holder could be counting on has ended, by the holder's own clock, as long as clock
 * rates differ by less than `LEASE_DRIFT`.
 *
 * @module
 */

/** Clock rate difference the acceptor side allows for (2 %: far above real crystals). */
export const LEASE_DRIFT = 0.02;

/** Extra milliseconds an acceptor waits beyond the drift allowance. */
export const LEASE_GUARD_MS = 10;

/** Smallest majority of `members` nodes. */
export function majorityOf(members: number): number {
  return Math.floor(members / 2) + 1;
}

/** How long an acceptor protects a lease it acknowledged, in its own milliseconds. */
export function protectMs(leaseMs: number): number {
  return leaseMs * (1 + LEASE_DRIFT) + LEASE_GUARD_MS;
}

/** The last lease an acceptor acknowledged. */
export interface LeaseRecord {
  /** The holder it was acknowledged to; null for "unknown" (after a restart). */
  holder: string | null;
  /** The token generation renewed. */
  gen: number;
  /** Until when (acceptor clock) no other node's ballot is promised. */
  until: number;
}

/** An acceptor's answer to a renewal. */
export type RenewAnswer = { ok: true; learned: boolean } | { ok: false; maxGen: number };

/**
 * An acceptor's answer to a ballot. A refusal says what stands in the way: `leasedMs`, a
 * lease it acknowledged that still protects (wait for its end); `promisedMs`, a recent
 * promise to another proposer (its winner's first renewal is on its way, or it lost and
 * will release it); neither, a ballot not above `maxGen`.
 */
export type PromiseAnswer =
  | { ok: true }
  | { ok: false; maxGen: number; leasedMs: number; promisedMs: number; holder: string | null };

/**
 * The acceptor side of one node: `maxGen`, the highest generation or ballot promised or
 * seen (kept on disk by the node), and the last lease acknowledged (kept in memory; a
 * node restarted with `maxGen > 0` protects an unknown lease for a full lease first).
 */
export class LeaseAcceptor {
  /** Highest generation or ballot promised or seen. */
  maxGen: number;
  #record: LeaseRecord | undefined;
  #promised: { to: string; ballot: number; until: number } | undefined;
  /** How long a promise refuses other proposers (a sixth of a lease). */
  readonly graceMs: number;
  readonly #protectMs: number;

  constructor(leaseMs: number, options: { maxGen?: number; now: number }) {
    this.#protectMs = protectMs(leaseMs);
    this.graceMs = leaseMs / 6;
    this.maxGen = options.maxGen ?? 0;
    // A node that ever saw a generation may have acknowledged a lease it no longer
    // remembers: it protects one of an unknown holder first.
    if (this.maxGen > 0) {
      this.#record = { holder: null, gen: 0, until: options.now + this.#protectMs };
    }
  }

  /** The lease record while it still protects (`now` before its end). */
  record(now: number): LeaseRecord | undefined {
    return this.#record && now < this.#record.until ? this.#record : undefined;
  }

  /** Milliseconds the current record still protects (0 when none). */
  leasedMs(now: number): number {
    return this.#record ? Math.max(0, this.#record.until - now) : 0;
  }

  /** Raises `maxGen` to `gen`; true when it changed (persist it). */
  learn(gen: number): boolean {
    if (gen <= this.maxGen) return false;
    this.maxGen = gen;
    return true;
  }

  /** A holder of generation `gen` renews its lease; refused when a newer one is known. */
  renew(now: number, from: string, gen: number): RenewAnswer {
    if (gen < this.maxGen) return { ok: false, maxGen: this.maxGen };
    const learned = this.learn(gen);
    const until = Math.max(now + this.#protectMs, this.#record?.until ?? -Infinity);
    this.#record = { holder: from, gen, until };
    return { ok: true, learned };
  }

  /**
   * A ballot from `from`. Promised only above everything seen, and only when no lease of
   * another node is protected here; `holdingGen` is the generation of the proposer's own
   * token when it renumbers it (a lease it holds itself does not stop it). For a sixth
   * of a lease after a promise, ballots of other nodes are refused too: the winner's first
   * renewal is on its way, and a higher ballot now would only destroy its new token. A
   * proposer that lost releases its promises ({@linkcode LeaseAcceptor.release}), so that
   * duelling proposers do not lock each other out for the whole window.
   */
  promise(now: number, from: string, ballot: number, holdingGen?: number): PromiseAnswer {
    const record = this.record(now);
    const own = record !== undefined && record.holder === from && holdingGen !== undefined &&
      record.gen === holdingGen;
    const promised = this.#promised && now < this.#promised.until && this.#promised.to !== from
      ? this.#promised
      : undefined;
    if (ballot <= this.maxGen || (record && !own) || promised) {
      return {
        ok: false,
        maxGen: this.maxGen,
        leasedMs: record && !own ? record.until - now : 0,
        promisedMs: promised ? promised.until - now : 0,
        holder: record?.holder ?? promised?.to ?? null,
      };
    }
    this.maxGen = ballot;
    this.#promised = { to: from, ballot, until: now + this.graceMs };
    return { ok: true };
  }

  /**
   * `from` lost ballot `ballot`: the promise made to it stops refusing other proposers.
   * `maxGen` stays (a promise number only grows). True when a promise was released.
   */
  release(from: string, ballot: number): boolean {
    const p = this.#promised;
    if (!p || p.to !== from || p.ballot !== ballot) return false;
    this.#promised = undefined;
    return true;
  }
}

interface Round {
  t0: number;
  gen: number;
  acks: Set<string>;
  pending: number;
}

/**
 * The holder side: renewal rounds and the lease they earned. A round started at `t0`
 * that reaches `majority` acknowledgements (this node's own included) extends the lease
 * to `t0 + leaseMs`, measured from the start so that time spent waiting (or paused)
 * counts against it.
 */
export class HolderLease {
  /** End of the lease (this node's clock); -Infinity when none. */
  until = -Infinity;
  /** When the last round started. */
  lastStart = -Infinity;
  readonly #leaseMs: number;
  readonly #majority: number;
  readonly #rounds = new Map<number, Round>();
  #next = 1;

  constructor(leaseMs: number, majority: number) {
    this.#leaseMs = leaseMs;
    this.#majority = majority;
  }

  /** Whether the lease is valid at `now`. */
  valid(now: number): boolean {
    return now < this.until;
  }

  /** Milliseconds left (0 when expired). */
  remaining(now: number): number {
    return Math.max(0, this.until - now);
  }

  /** Starts a round for generation `gen` with `self`'s own acknowledgement and `pending` requests out. */
  begin(now: number, gen: number, self: string, pending: number): number {
    const id = this.#next++;
    this.lastStart = now;
    const round: Round = { t0: now, gen, acks: new Set([self]), pending };
    this.#rounds.set(id, round);
    // Keep only the last few rounds: an older one can only earn a shorter lease.
    for (const old of this.#rounds.keys()) {
      if (this.#rounds.size <= 4) break;
      this.#rounds.delete(old);
    }
    this.#check(id, round);
    return id;
  }

  /** An acknowledgement of round `id` from `from`; true when it extended the lease. */
  ack(id: number, from: string): boolean {
    const round = this.#rounds.get(id);
    if (!round) return false;
    round.acks.add(from);
    round.pending--;
    return this.#check(id, round);
  }

  /** A refusal or failure for round `id`. */
  fail(id: number): void {
    const round = this.#rounds.get(id);
    if (round) round.pending--;
  }

  /** Whether some round still waits for answers. */
  waiting(): boolean {
    for (const r of this.#rounds.values()) if (r.pending > 0) return true;
    return false;
  }

  /** The generation a round renewed (undefined when forgotten). */
  genOf(id: number): number | undefined {
    return this.#rounds.get(id)?.gen;
  }

  /** Ends the lease and forgets every round (the token left or died). */
  clear(): void {
    this.until = -Infinity;
    this.lastStart = -Infinity;
    this.#rounds.clear();
  }

  #check(id: number, round: Round): boolean {
    if (round.acks.size < this.#majority) return false;
    this.#rounds.delete(id);
    const until = round.t0 + this.#leaseMs;
    if (until <= this.until) return false;
    this.until = until;
    return true;
  }
}

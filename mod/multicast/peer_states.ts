/**
 * What one member knows about the others from their heartbeats: each peer's last reported
 * view and state, which peers were seen in the current view, which of those went back to
 * joining (they restarted or left), which did not answer this member's last view change,
 * and since when each has been stuck flushing. Pure: heartbeats and `now` in, answers out;
 * the membership protocol (`view_change.ts`) decides with it.
 *
 * @module
 */
import type { PeerInfo } from "./frames.ts";

/** Options of {@linkcode PeerStates}. */
export interface PeerStatesOptions {
  /** This member's name. */
  self: string;
  /** How long a heartbeat counts as current. */
  failTimeoutMs: number;
}

/** This member's own position when a heartbeat arrives. */
export interface OwnView {
  /** Its membership state. */
  state: string;
  /** Its view's number (undefined when it has none). */
  view: number | undefined;
}

/** The heartbeat knowledge of one member (see the module doc). */
export class PeerStates {
  readonly #o: PeerStatesOptions;
  readonly #info = new Map<string, PeerInfo>();
  /** Members heard from in the current view since it was installed. */
  readonly #seenInView = new Set<string>();
  /**
   * Members that said "joining" after they were seen in the current view (they restarted or
   * left it). Before they are seen, "joining" only means they have not installed it yet.
   */
  readonly #rejoiners = new Set<string>();
  /** Members that did not flush for this node's last change (refused it, or unreachable). */
  readonly #unresponsive = new Set<string>();
  /** Since when each member has said "flushing" in this node's view (a change may be stuck). */
  readonly #flushingSince = new Map<string, number>();

  constructor(options: PeerStatesOptions) {
    this.#o = options;
  }

  /** Records `from`'s heartbeat, heard while this member is at `own`. */
  heard(from: string, info: PeerInfo, own: OwnView): void {
    this.#info.set(from, info);
    const inMyView = own.state !== "joining" && info.view === own.view;
    if (info.state === "flushing" && inMyView) {
      if (!this.#flushingSince.has(from)) this.#flushingSince.set(from, info.at);
    } else {
      this.#flushingSince.delete(from);
    }
    if (info.state !== "joining") {
      this.#rejoiners.delete(from);
      if (inMyView) {
        this.#seenInView.add(from);
        if (info.state === "flushing" || info.state === "member") this.#unresponsive.delete(from);
      }
    } else if (this.#seenInView.has(from)) {
      this.#rejoiners.add(from);
    }
  }

  /** The last heartbeat of `name`. */
  get(name: string): PeerInfo | undefined {
    return this.#info.get(name);
  }

  /** Whether `name` was ever heard. */
  has(name: string): boolean {
    return this.#info.has(name);
  }

  /** Every peer's last heartbeat. */
  entries(): IterableIterator<[string, PeerInfo]> {
    return this.#info.entries();
  }

  /** Whether a heartbeat is recent enough at `now` to act on. */
  fresh(info: PeerInfo, now: number): boolean {
    return now - info.at <= this.#o.failTimeoutMs;
  }

  /** The highest view a current heartbeat of a non-joining peer shows (0: none). */
  knownView(now: number): number {
    let best = 0;
    for (const info of this.#info.values()) {
      if (info.state !== "joining" && this.fresh(info, now)) best = Math.max(best, info.view);
    }
    return best;
  }

  /** The first peer (not `skip`ped) whose current heartbeat shows a primary view. */
  freshPrimary(now: number, skip: (name: string) => boolean = () => false): string | undefined {
    for (const [name, info] of this.#info) {
      if (info.primary && this.fresh(info, now) && !skip(name)) return name;
    }
    return undefined;
  }

  /**
   * Among current joining peers (not `suspected`) and this member (`ownCount` delivered):
   * the one with the longest history, then the first by `rank`. It forms a fresh group.
   */
  bootstrapLeader(
    now: number,
    ownCount: number,
    rank: (name: string) => number,
    suspected: (name: string) => boolean,
  ): string {
    let best = this.#o.self;
    let bestCount = ownCount;
    for (const [name, info] of this.#info) {
      if (info.state !== "joining" || !this.fresh(info, now) || suspected(name)) continue;
      if (info.delivered > bestCount || (info.delivered === bestCount && rank(name) < rank(best))) {
        best = name;
        bestCount = info.delivered;
      }
    }
    return best;
  }

  /** Whether `name` says it is joining after it was seen in the current view. */
  rejoining(name: string, now: number): boolean {
    if (name === this.#o.self) return false;
    const info = this.#info.get(name);
    return info !== undefined && this.fresh(info, now) && this.#rejoiners.has(name);
  }

  /** A member of the current view asked to join: it restarted or left. */
  rejoined(name: string): void {
    this.#rejoiners.add(name);
  }

  /** `name` acknowledged the current view. */
  seen(name: string): void {
    this.#seenInView.add(name);
  }

  /** `name` did not flush for this member's view change. */
  unresponsive(name: string): void {
    this.#unresponsive.add(name);
  }

  /** Whether `name` did not flush for this member's last view change. */
  isUnresponsive(name: string): boolean {
    return this.#unresponsive.has(name);
  }

  /** Whether a member of `members`, not `gone`, has been flushing longer than `limitMs`. */
  stuckFlushing(
    members: readonly string[],
    gone: (name: string) => boolean,
    now: number,
    limitMs: number,
  ): boolean {
    for (const [m, since] of this.#flushingSince) {
      if (members.includes(m) && !gone(m) && now - since > limitMs) return true;
    }
    return false;
  }

  /** A view was installed here: what was learned about the last one no longer applies. */
  newView(): void {
    this.#seenInView.clear();
    this.#rejoiners.clear();
    this.#flushingSince.clear();
    this.#unresponsive.clear();
  }

  /** `name` left politely. */
  forget(name: string): void {
    this.#info.delete(name);
  }
}

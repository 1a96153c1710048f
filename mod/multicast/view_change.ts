/**
 * The membership protocol of the multicast role (pure: frames and `now` in, frames out):
 * joining and bootstrap, the coordinator-driven view change (propose → flush → install →
 * installed → commit), history transfer to joiners, and exclusion.
 *
 * Primary partition: a coordinator proposes only a view of at least `quorum` members; the
 * survivors it proposes to must all have installed the same base view as it has (a member
 * with another history joins instead, through history transfer); a view is primary — its
 * members deliver — only once `quorum` members have installed it. A member accepts
 * proposals with growing numbers only and stops acking in the old view when it flushes, so
 * everything a primary view delivered is held by a member of the next one and is in its
 * flush.
 *
 * @module
 */
import { ErrorCode, type Message, ProtocolError } from "../wire/mod.ts";
import {
  type JoinRequest,
  type PeerInfo,
  readFlush,
  readHistory,
  readInstall,
  readJoin,
  readJoinerPart,
  readPropose,
  readViewNumber,
} from "./frames.ts";
import type { HistoryLog } from "./history_store.ts";
import { PeerStates } from "./peer_states.ts";
import { HistoryReceiver, sendHistory } from "./state_transfer.ts";
import type { SilenceDetector } from "./failure_detector.ts";
import type { MemberHooks } from "./member.ts";
import { type FlushReport, mergeFlushes, type TotalOrderGroup, type View } from "./total_order.ts";
import type { MulticastTransport } from "./transport.ts";

interface ViewChange {
  num: number;
  base: number;
  survivors: string[];
  joiners: Map<string, JoinRequest>;
  reports: Map<string, FlushReport>;
  deadline: number;
  askedAt: number;
}

interface PendingInstall {
  num: number;
  coord: string;
  members: string[];
  acks: Set<string>;
  deadline: number;
}

/** How the view change calls back into the member. */
export interface MemberCallbacks {
  /** Sends what is batched in the current view (before the state changes). */
  flush(): void;
  /** The installed view was committed: it is primary now. */
  committed(): void;
  /** This member left its view to rejoin: drop undelivered outgoing state. */
  excluded(): void;
  /** A view was installed: replay frames buffered for it. */
  replayBuffered(view: number): void;
  /** The history store failed. */
  storageFailed(err: unknown): void;
}

/** Options of {@linkcode ViewChanges} (the member's parts it works on). */
export interface ViewChangesOptions {
  self: string;
  order: Map<string, number>;
  peers: string[];
  quorum: number;
  group: TotalOrderGroup;
  store: HistoryLog;
  transport: MulticastTransport;
  hooks: MemberHooks;
  fd: SilenceDetector;
  failTimeoutMs: number;
  flushTimeoutMs: number;
  bootstrapMs: number;
  startedAt: number;
  member: MemberCallbacks;
}

/** The membership state machine of one member (see the module doc). */
export class ViewChanges {
  readonly #o: ViewChangesOptions;
  readonly #peers: PeerStates;
  readonly #pendingJoins = new Map<string, JoinRequest>();
  #state: "joining" | "flushing" | "installing" | "member" = "joining";
  #accepted: { num: number; coord: string; members: string[] } | undefined;
  #installing: PendingInstall | undefined;
  #maxNum = 0;
  #change: ViewChange | undefined;
  #lastJoinAt = -Infinity;
  readonly #receiver: HistoryReceiver;
  #now = 0;
  #noQuorumLogged = 0;
  /** The highest view number installed here: no number is installed twice by one node. */
  #maxInstalled = 0;
  /**
   * How many times this node has become joining: an install for a join request of an earlier
   * time (delayed in the network) describes a state this node has left (its own sequence
   * numbers moved on), so it is ignored.
   */
  #epoch = 0;

  constructor(options: ViewChangesOptions) {
    this.#o = options;
    this.#now = options.startedAt;
    this.#receiver = new HistoryReceiver(options.store, options.hooks);
    this.#peers = new PeerStates({ self: options.self, failTimeoutMs: options.failTimeoutMs });
    // View numbers grow across restarts: no number is proposed or installed twice here.
    this.#maxNum = options.store.lastView?.num ?? 0;
    this.#maxInstalled = this.#maxNum;
  }

  /** The membership state. */
  get state(): "joining" | "flushing" | "installing" | "member" {
    return this.#state;
  }

  /** The coordinator: the first member of the view (peers-file order) not suspected. */
  leader(): string | undefined {
    const view = this.#o.group.view;
    if (!view || this.#state === "joining") return undefined;
    return view.members.find((m) => !this.#suspected(m) && !this.#rejoining(m));
  }

  /** Whether member `name` says it is joining (it restarted or left the view). */
  #rejoining(name: string): boolean {
    return this.#peers.rejoining(name, this.#now);
  }

  /** This member's heartbeat frame (its view, state and the ordering core's clock). */
  heartbeat(): Message {
    const g = this.#o.group;
    const view = this.#state === "joining" ? undefined : g.view;
    return {
      t: "mc.hb",
      view: view?.id ?? 0,
      state: this.#state,
      primary: this.#state === "member",
      coord: this.leader() ?? "",
      members: view?.members ?? [],
      delivered: this.#o.store.count,
      lastView: this.#o.store.lastView?.num ?? 0,
      lastMembers: this.#o.store.lastView?.members ?? [],
      ...g.heartbeat(),
    };
  }

  /** This node was stalled: deadlines move on as well. */
  stalled(now: number): void {
    if (this.#change) {
      this.#change.deadline = Math.max(this.#change.deadline, now + this.#o.flushTimeoutMs);
    }
    if (this.#installing) {
      this.#installing.deadline = Math.max(
        this.#installing.deadline,
        now + this.#o.flushTimeoutMs,
      );
    }
  }

  /** `name` left politely. */
  forget(name: string): void {
    this.#peers.forget(name);
  }

  /** Whether `name` is in the peers file. */
  readonly #isMember = (name: string): boolean => this.#o.order.has(name);

  /** Takes a membership frame (`mc.propose`, `mc.flush`, `mc.install`, …). */
  receive(from: string, msg: Message, now: number): void {
    this.#now = now;
    switch (msg.t) {
      case "mc.propose":
        return this.#onPropose(msg, from);
      case "mc.flush":
        return this.#onFlush(msg, from);
      case "mc.install":
        return this.#onInstall(msg, from);
      case "mc.installed":
        return this.#onInstalled(msg, from);
      case "mc.commit":
        return this.#onCommit(msg, from);
      case "mc.join":
        return this.#onJoin(msg, from);
      case "mc.history":
        return this.#onHistory(msg, from);
      default:
        throw new ProtocolError(ErrorCode.UnknownType, `Cannot accept ${String(msg.t)}`);
    }
  }

  /**
   * Takes a peer's heartbeat. True when it made this member leave its view (the caller must
   * not apply the heartbeat's clock to the view any more).
   */
  peerHeartbeat(from: string, info: PeerInfo): boolean {
    this.#now = info.at;
    const g = this.#o.group;
    this.#peers.heard(from, info, { state: this.#state, view: g.view?.id });
    const self = this.#o.self;
    const mine = this.#state === "joining" ? 0 : g.view?.id ?? 0;
    const acc = this.#accepted;
    if (this.#state !== "joining" && info.view > mine && info.state !== "joining") {
      if (info.primary && info.members.includes(from) && !info.members.includes(self)) {
        this.#becomeJoining(`${from} is in primary view ${info.view} without this node`);
        return true;
      }
      if (acc && acc.num === info.view) {
        if (from === acc.coord) {
          // The coordinator installed the view but its install never reached this node (the
          // link dropped in between; frames on one link are FIFO, so it is lost, not late).
          this.#becomeJoining(`missed the install of view ${info.view}`);
          return true;
        }
      } else if (info.primary && (!acc || acc.num < info.view)) {
        this.#becomeJoining(`primary view ${info.view} was formed without this node`);
        return true;
      }
    }
    if (this.#state === "flushing" && acc && from === acc.coord && info.state === "joining") {
      this.#becomeJoining(`the coordinator of view ${acc.num} gave it up`);
      return true;
    }
    const inst = this.#installing;
    if (this.#state === "installing" && inst && info.primary && info.view === inst.num) {
      if (from === inst.coord) {
        this.#commit(); // the coordinator committed; its commit frame was lost
      } else if (info.members.join() !== inst.members.join()) {
        // Another view with this number was committed (by a quorum that does not include
        // this node's installation): this one never will be.
        this.#becomeJoining(`view ${info.view} was committed with ${info.members.join(", ")}`);
        return true;
      }
    }
    return false;
  }

  /** The periodic part: joining, bootstrap, starting and retrying view changes. */
  onTimer(now: number): void {
    this.#now = now;
    if (this.#state === "joining" && !this.#change) this.#tryJoin();
    else this.#maybeChangeView();
  }

  // ── joining ──

  #suspected(name: string): boolean {
    return name !== this.#o.self && this.#o.fd.suspected(name, this.#now);
  }

  #sorted(names: Iterable<string>): string[] {
    const order = this.#o.order;
    return [...new Set(names)].sort((a, b) => order.get(a)! - order.get(b)!);
  }

  #fresh(info: PeerInfo): boolean {
    return this.#peers.fresh(info, this.#now);
  }

  /** Among fresh joining nodes (and this one): the one with the longest history forms. */
  #bootstrapLeader(): string {
    const o = this.#o;
    return this.#peers.bootstrapLeader(
      this.#now,
      o.store.count,
      (name) => o.order.get(name)!,
      (name) => this.#suspected(name),
    );
  }

  #sendJoin(target: string, known: number): void {
    if (this.#now - this.#lastJoinAt < Math.max(300, this.#o.failTimeoutMs / 3)) return;
    this.#lastJoinAt = this.#now;
    const count = this.#o.store.count;
    this.#o.transport.send(target, {
      t: "mc.join",
      known,
      ownSeq: this.#o.group.ownSeq,
      clock: this.#o.group.clock,
      have: count,
      last: count > 0 ? this.#o.store.idAt(count) : undefined,
      epoch: this.#epoch,
    });
  }

  #tryJoin(): void {
    const o = this.#o;
    let target: string | undefined;
    let bestFrom: string | undefined;
    let best = 0;
    for (const [name, info] of this.#peers.entries()) {
      if (info.state === "joining" || !this.#fresh(info)) continue;
      if (info.view > best || (info.view === best && info.primary)) {
        best = info.view;
        bestFrom = name;
        target = info.coord || name;
      }
    }
    if (target !== undefined && best > 0) {
      // A view that still counts this node as its coordinator (it restarted): ask the member
      // whose heartbeat showed it, which then knows this node is rejoining.
      this.#sendJoin(target === this.#o.self ? bestFrom! : target, best);
      return;
    }
    // No group anywhere: the joining node with the longest history (then first in file
    // order) forms one, with the others joining it, once a quorum asks.
    const reachable = (name: string) =>
      this.#peers.has(name) && !this.#suspected(name) && o.transport.connected(name);
    const heardAll = o.peers.every(reachable);
    if (!heardAll && this.#now - o.startedAt < o.bootstrapMs) return;
    // Whoever was in the last installed view may hold the only copy of what it delivered (the
    // others' acks were in memory, lost if they restarted): a fresh group waits for all of
    // that view's members.
    let last = o.store.lastView ?? { num: 0, members: [] };
    for (const [name, info] of this.#peers.entries()) {
      if (reachable(name) && info.state === "joining" && info.lastView > last.num) {
        last = { num: info.lastView, members: info.lastMembers };
      }
    }
    const missing = last.members.filter((m) =>
      m !== o.self && !(reachable(m) && this.#peers.get(m)?.state === "joining")
    );
    if (missing.length > 0) {
      this.#logNoQuorum(
        `a fresh group waits for ${missing.join(", ")} (in the last view, ${last.num})`,
      );
      return;
    }
    this.#maxNum = Math.max(this.#maxNum, last.num);
    const leader = this.#bootstrapLeader();
    if (leader !== o.self) {
      this.#sendJoin(leader, 0);
      return;
    }
    const joins = this.#liveJoins();
    const asking = o.peers.filter((p) => reachable(p) && this.#peers.get(p)?.state === "joining");
    if (this.#now - o.startedAt < o.bootstrapMs && asking.some((p) => !joins.has(p))) return;
    if (joins.size + 1 < o.quorum) {
      this.#logNoQuorum(`forming a group needs ${o.quorum} members, ${joins.size + 1} ask`);
      return;
    }
    this.#startChange([o.self], joins);
  }

  #liveJoins(): Map<string, JoinRequest> {
    for (const [name, req] of this.#pendingJoins) {
      if (this.#now - req.at > 4 * this.#o.failTimeoutMs) this.#pendingJoins.delete(name);
    }
    return new Map(
      [...this.#pendingJoins].filter(([n]) =>
        !this.#suspected(n) && this.#o.transport.connected(n)
      ),
    );
  }

  #onJoin(msg: Message, from: string): void {
    const req = readJoin(msg, this.#now);
    const bootstrapping = this.#state === "joining" && this.#peers.knownView(this.#now) === 0 &&
      this.#bootstrapLeader() === this.#o.self;
    const view = this.#o.group.view;
    // A join sent before its sender saw the view that admitted it.
    if (this.#state !== "joining" && view?.members.includes(from) && view.id > req.known) return;
    // A member of this view asks to join: it restarted or left (it is not the coordinator).
    if (this.#state !== "joining" && view?.members.includes(from)) this.#peers.rejoined(from);
    if (!bootstrapping && (this.#state === "joining" || this.leader() !== this.#o.self)) {
      throw new ProtocolError(
        "not_coordinator",
        `Cannot admit ${from}: ${this.#o.self} does not coordinate the group (${
          this.leader() ?? "none"
        } does)`,
      );
    }
    this.#pendingJoins.set(from, req);
    if (!bootstrapping) this.#maybeChangeView();
  }

  // ── coordinator ──

  #logNoQuorum(why: string): void {
    if (this.#now - this.#noQuorumLogged < 5_000) return;
    this.#noQuorumLogged = this.#now;
    this.#o.hooks.log.info(`no primary view possible: ${why}`);
  }

  #maybeChangeView(): void {
    const o = this.#o;
    const now = this.#now;
    const change = this.#change;
    if (change) {
      if (now < change.deadline) {
        if (now - change.askedAt >= 400) {
          change.askedAt = now;
          const members = this.#accepted?.members ?? [];
          for (const s of change.survivors) {
            if (!change.reports.has(s) && s !== o.self) {
              o.transport.send(s, { t: "mc.propose", num: change.num, members, base: change.base });
            }
          }
        }
        return;
      }
      const silent = change.survivors.filter((s) => !change.reports.has(s));
      for (const m of silent) this.#peers.unresponsive(m);
      o.hooks.log.warn(`view change ${change.num}: no flush from ${silent.join(", ")}; retrying`);
      this.#change = undefined;
      if (
        !this.#startChange(change.survivors.filter((s) => change.reports.has(s)), change.joiners)
      ) {
        this.#abandonOwnChange();
      }
      return;
    }
    const inst = this.#installing;
    if (this.#state === "installing" && inst && inst.coord === o.self) {
      if (now < inst.deadline) return;
      o.hooks.log.warn(
        `view ${inst.num}: installed by ${[...inst.acks].join(", ")} only; retrying`,
      );
      const survivors = [...inst.acks].filter((m) => !this.#suspected(m));
      this.#installing = undefined;
      if (!this.#startChange(survivors, this.#liveJoins())) {
        this.#installing = inst;
        inst.deadline = now + o.flushTimeoutMs;
        const elsewhere = this.#peers.freshPrimary(now);
        if (elsewhere) {
          // Not committed (nothing was delivered in it) and a primary view exists elsewhere:
          // give it up and join that one.
          this.#becomeJoining(`view ${inst.num} was not installed by a quorum`);
        }
      }
      return;
    }
    const view = o.group.view;
    if (!view || this.#state === "joining") return;
    const waitingOn = this.#state === "flushing"
      ? this.#accepted?.coord
      : this.#state === "installing"
      ? inst?.coord
      : undefined;
    if (waitingOn !== undefined && !this.#gone(waitingOn)) return;
    if (this.leader() !== o.self) {
      if (this.#state !== "member") this.#joinPrimaryElsewhere();
      return;
    }
    const gone = view.members.filter((m) => this.#gone(m));
    const joins = this.#liveJoins();
    const stuck = this.#peers.stuckFlushing(
      view.members,
      (m) => gone.includes(m),
      now,
      o.flushTimeoutMs,
    );
    if (gone.length === 0 && joins.size === 0 && this.#state === "member" && !stuck) return;
    const survivors = view.members.filter((m) => !gone.includes(m) && !joins.has(m));
    if (!this.#startChange(survivors, joins) && this.#state !== "member") {
      this.#joinPrimaryElsewhere();
    }
  }

  /** Suspected, rejoining (it restarted or left the view), or it did not flush last time. */
  #gone(name: string): boolean {
    return this.#suspected(name) || this.#rejoining(name) || this.#peers.isUnresponsive(name);
  }

  /**
   * Out of a primary view, its coordinator gone and no change of its own possible: when some
   * member is heard in a primary view, this one rejoins through it (nothing was delivered in
   * the uncommitted view, so giving it up is safe).
   */
  #joinPrimaryElsewhere(): void {
    const name = this.#peers.freshPrimary(this.#now, (n) => this.#suspected(n));
    if (name !== undefined) {
      this.#becomeJoining(`${name} is in primary view ${this.#peers.get(name)!.view}`);
    }
  }

  /**
   * Its own change could not go on (no quorum): it keeps its view and what it holds, still
   * flushing (it delivers nothing), and proposes again once a quorum is heard; a leader that
   * sees it stuck flushing proposes a change that takes it in.
   */
  #abandonOwnChange(): void {
    if (this.#accepted?.coord === this.#o.self) this.#accepted = undefined;
    if (!this.#o.group.view) this.#state = "joining";
  }

  /** Starts a view change; false when the proposed view would be smaller than a quorum. */
  #startChange(survivors: string[], joiners: Map<string, JoinRequest>): boolean {
    const o = this.#o;
    const members = this.#sorted([o.self, ...survivors, ...joiners.keys()]);
    if (members.length < o.quorum) {
      this.#logNoQuorum(`${members.join(", ")} reachable, ${o.quorum} needed`);
      return false;
    }
    const base = this.#state === "joining" ? 0 : o.group.view?.id ?? 0;
    const num = Math.max(this.#maxNum, o.group.view?.id ?? 0, this.#accepted?.num ?? 0) + 1;
    this.#maxNum = num;
    const all = this.#sorted([o.self, ...survivors.filter((s) => !joiners.has(s))]);
    if (this.#state === "member") o.member.flush();
    this.#installing = undefined;
    this.#change = {
      num,
      base,
      survivors: all,
      joiners,
      reports: new Map([[o.self, o.group.flushReport()]]),
      deadline: this.#now + o.flushTimeoutMs,
      askedAt: this.#now,
    };
    this.#accepted = { num, coord: o.self, members };
    this.#state = "flushing";
    const left = (o.group.view?.members ?? []).filter((m) => !members.includes(m)).map((m) =>
      `${m} ${this.#suspected(m) ? "suspected" : this.#rejoining(m) ? "rejoining" : "silent"}`
    );
    o.hooks.log.info(
      `proposing view ${num}: ${members.join(", ")}${
        joiners.size ? ` (joining: ${[...joiners.keys()].join(", ")})` : ""
      }${left.length ? ` (without: ${left.join(", ")})` : ""}`,
    );
    for (const s of all) {
      if (s !== o.self) o.transport.send(s, { t: "mc.propose", num, members, base });
    }
    this.#maybeFinishChange();
    return true;
  }

  #onFlush(msg: Message, from: string): void {
    const { num, report } = readFlush(msg);
    const change = this.#change;
    if (!change || change.num !== num || !change.survivors.includes(from)) return;
    change.reports.set(from, report);
    this.#maybeFinishChange();
  }

  #maybeFinishChange(): void {
    const o = this.#o;
    const change = this.#change;
    if (!change || change.survivors.some((s) => !change.reports.has(s))) return;
    const members = this.#sorted([...change.survivors, ...change.joiners.keys()]);
    const view: View = { id: change.num, members };
    const inst = mergeFlushes(view, change.reports, change.joiners);
    const base: Message = {
      t: "mc.install",
      num: change.num,
      members,
      msgs: inst.msgs,
      clocks: inst.clocks,
      nextSeq: inst.nextSeq,
      maxClock: inst.maxClock,
    };
    for (const s of change.survivors) if (s !== o.self) o.transport.send(s, base);
    const delivered = o.group.view ? o.group.deliveredVector() : o.store.lastSeqs();
    for (const [name, req] of change.joiners) {
      try {
        sendHistory(o.store, o.transport, name, req, base, delivered, o.hooks.log);
      } catch (err) {
        o.member.storageFailed(err);
        return;
      }
      this.#pendingJoins.delete(name);
    }
    if (!o.group.view) o.group.installAsJoiner(inst, delivered); // bootstrap: from its history
    else o.group.install(inst);
    this.#change = undefined;
    this.#installed(view, o.self);
  }

  #onInstalled(msg: Message, from: string): void {
    const num = readViewNumber(msg);
    const inst = this.#installing;
    const view = this.#o.group.view;
    if (this.#state === "member" && view?.id === num && view.members.includes(from)) {
      this.#o.transport.send(from, { t: "mc.commit", num }); // a late ack: commit again
      return;
    }
    if (!inst || inst.coord !== this.#o.self || inst.num !== num) return;
    if (!inst.members.includes(from)) return;
    inst.acks.add(from);
    this.#peers.seen(from);
    this.#maybeCommit();
  }

  #maybeCommit(): void {
    const inst = this.#installing;
    if (!inst || inst.coord !== this.#o.self || inst.acks.size < this.#o.quorum) return;
    for (const m of inst.members) {
      if (m !== this.#o.self) this.#o.transport.send(m, { t: "mc.commit", num: inst.num });
    }
    this.#commit();
  }

  // ── member side ──

  #onPropose(msg: Message, from: string): void {
    const o = this.#o;
    const { num, members, base } = readPropose(msg, this.#isMember);
    if (!members.includes(o.self) || !members.includes(from)) return;
    const acc = this.#accepted;
    if (acc && acc.num === num && acc.coord === from && this.#state === "flushing") {
      o.transport.send(from, { t: "mc.flush", num, ...o.group.flushReport() });
      return; // the coordinator asked again: its first proposal or our report was lost
    }
    if (this.#state === "joining") return; // a joining node takes part only by joining
    const own = o.group.view?.id ?? 0;
    const floor = Math.max(acc?.num ?? 0, own, this.#maxNum);
    if (num <= floor) {
      throw new ProtocolError(
        ErrorCode.Conflict,
        `Cannot accept proposal ${num}: already at ${floor}`,
      );
    }
    if (base !== own) {
      // Survivors of one change share one history: the coordinator's installed view.
      throw new ProtocolError(
        ErrorCode.Conflict,
        `Cannot accept proposal ${num}: it follows view ${base}, this node has view ${own}`,
      );
    }
    this.#maxNum = num;
    if (this.#state === "member") o.member.flush(); // what was stamped goes out in the old view
    this.#accepted = { num, coord: from, members };
    this.#change = undefined;
    this.#installing = undefined;
    this.#state = "flushing";
    o.transport.send(from, { t: "mc.flush", num, ...o.group.flushReport() });
  }

  #onInstall(msg: Message, from: string): void {
    const o = this.#o;
    const { inst, forJoiner } = readInstall(msg, this.#isMember);
    const num = inst.view.id;
    if (forJoiner) {
      if (this.#state !== "joining" || !inst.view.members.includes(o.self)) return;
      if (num <= this.#maxInstalled) return; // each number is installed once at most
      const part = readJoinerPart(msg);
      if (part.epoch !== this.#epoch) return; // the answer to an older join request
      let mine: Record<string, number> | undefined;
      try {
        mine = this.#receiver.complete(from, part.from, part.lastId, inst, part.delivered);
      } catch (err) {
        o.member.storageFailed(err);
        return;
      }
      if (!mine) return; // a history chunk went missing (link dropped): the join is retried
      o.group.installAsJoiner(inst, mine);
      this.#accepted = undefined;
      this.#installed(inst.view, from);
      return;
    }
    const acc = this.#accepted;
    if (this.#state !== "flushing" || !acc || acc.num !== num || acc.coord !== from) return;
    o.group.install(inst);
    this.#accepted = undefined;
    this.#installed(inst.view, from);
  }

  /** A chunk of the coordinator's history for this joining node, sent before the install. */
  #onHistory(msg: Message, from: string): void {
    const { after, entries } = readHistory(msg);
    if (this.#state !== "joining") return;
    try {
      this.#receiver.chunk(from, after, entries);
    } catch (err) {
      this.#o.member.storageFailed(err);
    }
  }

  #onCommit(msg: Message, from: string): void {
    const num = readViewNumber(msg);
    const inst = this.#installing;
    if (this.#state === "installing" && inst && inst.num === num && inst.coord === from) {
      this.#commit();
    }
  }

  /** A view is installed here (not primary yet): ack it to its coordinator. */
  #installed(view: View, coord: string): void {
    const o = this.#o;
    this.#state = "installing";
    this.#peers.newView();
    this.#maxInstalled = Math.max(this.#maxInstalled, view.id);
    try {
      o.store.saveView({ num: view.id, members: view.members });
    } catch (err) {
      o.member.storageFailed(err);
      return;
    }
    this.#maxNum = Math.max(this.#maxNum, view.id);
    this.#installing = {
      num: view.id,
      coord,
      members: view.members.slice(),
      acks: new Set([o.self]),
      deadline: this.#now + o.flushTimeoutMs,
    };
    for (const m of view.members) {
      this.#pendingJoins.delete(m);
      o.fd.refresh(m, this.#now);
    }
    o.hooks.log.debug(`view ${view.id} installed: ${view.members.join(", ")}`);
    o.member.replayBuffered(view.id);
    if (coord === o.self) this.#maybeCommit();
    else o.transport.send(coord, { t: "mc.installed", num: view.id });
  }

  #commit(): void {
    const o = this.#o;
    const view = o.group.view!;
    this.#state = "member";
    this.#installing = undefined;
    this.#accepted = undefined;
    this.#change = undefined;
    for (const m of view.members) o.fd.refresh(m, this.#now);
    o.hooks.events.emit("view.changed", { view: view.id, members: view.members });
    o.hooks.events.emit("view.installed", {
      view: view.id,
      members: view.members,
      primary: true,
    });
    o.hooks.log.info(`view ${view.id}: ${view.members.join(", ")}`);
    o.member.committed();
  }

  #becomeJoining(reason: string): void {
    const o = this.#o;
    o.hooks.log.warn(`excluded from the group: ${reason}; rejoining`);
    o.hooks.events.emit("mc.excluded", { reason });
    o.group.leave();
    this.#state = "joining";
    this.#epoch++;
    this.#accepted = undefined;
    this.#installing = undefined;
    this.#change = undefined;
    this.#lastJoinAt = -Infinity;
    o.member.excluded();
  }
}

/**
 * The protocol core of one multicast member, free of sockets and timers: frames and `now`
 * in, frames (through a {@linkcode MulticastTransport}), history appends, events and
 * deliveries out. It runs the data path (per-turn batches of data and acks over
 * {@linkcode TotalOrderGroup}), failure suspicion, and the primary-partition membership
 * protocol of `view_change.ts` (join, propose → flush → install → commit, history transfer).
 *
 * The daemon (`node.ts`) drives it from real time and TCP; tests drive it from virtual time
 * and `MemoryNetwork`, so both run this same code.
 *
 * @module
 */
import { ErrorCode, type Message, ProtocolError } from "../wire/mod.ts";
import { readAck, readData, readHeartbeat } from "./frames.ts";
import type { HistoryEntry, HistoryLog } from "./history_store.ts";
import { type ChatMessage, MAX_BODY_LENGTH } from "./message.ts";
import { SilenceDetector } from "./failure_detector.ts";
import { type FlushReport, type Installation, TotalOrderGroup } from "./total_order.ts";
import type { MulticastTransport } from "./transport.ts";
import { ViewChanges } from "./view_change.ts";
import { bySize } from "./state_transfer.ts";

/** Where a member reports what happens (the role passes its event sink and logger). */
export interface MemberHooks {
  /** Events (`--events`). */
  events: {
    emit(ev: string, fields?: Record<string, unknown>): void;
    debug(ev: string, fields?: Record<string, unknown>): void;
  };
  /** Human log lines. */
  log: {
    debug(m: string): void;
    info(m: string): void;
    warn(m: string): void;
    error(m: string): void;
  };
  /** Asks for `flush()` at the end of the current turn (after the frames already read). */
  schedule(): void;
  /** Called with each batch of deliveries, after it is stored. */
  onDelivered?(entries: HistoryEntry[]): void;
  /** The history store failed: the member stopped delivering; the role decides what next. */
  onStorageFailure?(err: Error): void;
}

/** Options of {@linkcode MulticastMember}. */
export interface MulticastMemberOptions {
  /** This node's name. */
  name: string;
  /** Every configured member, peers-file order (this node included). */
  members: string[];
  /** Links to the other members. */
  transport: MulticastTransport;
  /** The delivered history. */
  history: HistoryLog;
  /** Events, logs and scheduling. */
  hooks: MemberHooks;
  /** Time at start (ms, any origin; the same clock as every later `now`). */
  now: number;
  /** Silence after which a member is suspected and removed. @default {1500} */
  failTimeoutMs?: number;
  /** How long a coordinator waits for flush reports or install acks. @default {3000} */
  flushTimeoutMs?: number;
  /** How long a fresh group waits for all peers before forming a view anyway. @default {2000} */
  bootstrapMs?: number;
  /**
   * Members a view needs to be primary (to install, commit and deliver).
   * @default {majority of `members`}
   */
  quorum?: number;
  /** Most messages queued while no primary view is installed. @default {100000} */
  maxOutbox?: number;
}

/** The membership state of a member. */
export type MemberState = "joining" | "flushing" | "installing" | "member";

/** What `status` reports: the membership state, or `no_quorum` in a minority. */
export type ReportedState = MemberState | "no_quorum" | "failed";

const MAX_BUFFERED_FRAMES = 10_000;

/**
 * One member of a total-order multicast group (protocol state only).
 *
 * Safety (primary partition): a view is installed only with the flush of every survivor
 * and is primary — messages are delivered in it — only once at least `quorum` members have
 * installed it (`mc.installed` → `mc.commit`). Delivery inside a view needs every member's
 * ack. So any two primary views share a member, a member takes part in one view change at a
 * time with growing numbers, and what one primary delivered is in the next one's flush:
 * a member cut off into a minority stops delivering and refuses `send` (`no_quorum`).
 */
export class MulticastMember {
  /** This node's name. */
  readonly name: string;
  /** Members a primary view needs. */
  readonly quorum: number;
  readonly #order = new Map<string, number>();
  readonly #peers: string[];
  readonly #t: MulticastTransport;
  readonly #store: HistoryLog;
  readonly #hooks: MemberHooks;
  readonly #group: TotalOrderGroup;
  readonly #fd: SilenceDetector;
  readonly #vc: ViewChanges;
  readonly #maxOutbox: number;
  readonly #buffered = new Map<string, Message[]>();
  #now: number;
  #outbox: string[] = [];
  #outgoing: ChatMessage[] = [];
  #suspected = new Set<string>();
  #sent = 0;
  #discarded = 0;
  #failed: Error | undefined;
  #reportedNoQuorum = false;

  constructor(options: MulticastMemberOptions) {
    this.name = options.name;
    options.members.forEach((m, i) => this.#order.set(m, i));
    if (!this.#order.has(this.name)) {
      throw new Error(`Cannot start member ${this.name}: not in ${options.members.join(", ")}`);
    }
    this.#peers = options.members.filter((m) => m !== this.name);
    const n = options.members.length;
    this.quorum = options.quorum ?? Math.floor(n / 2) + 1;
    if (!Number.isInteger(this.quorum) || this.quorum < 1 || this.quorum > n) {
      throw new Error(`Cannot start member ${this.name}: quorum must be 1..${n}`);
    }
    this.#t = options.transport;
    this.#store = options.history;
    this.#hooks = options.hooks;
    this.#now = options.now;
    this.#maxOutbox = options.maxOutbox ?? 100_000;
    const failTimeoutMs = options.failTimeoutMs ?? 1500;
    this.#fd = new SilenceDetector({ timeoutMs: failTimeoutMs, now: options.now });
    this.#group = new TotalOrderGroup(this.name, { ownSeq: this.#store.reservedSeq });
    this.#vc = new ViewChanges({
      self: this.name,
      order: this.#order,
      peers: this.#peers,
      quorum: this.quorum,
      group: this.#group,
      store: this.#store,
      transport: this.#t,
      hooks: this.#hooks,
      fd: this.#fd,
      failTimeoutMs,
      flushTimeoutMs: options.flushTimeoutMs ?? 3000,
      bootstrapMs: options.bootstrapMs ?? 2000,
      startedAt: options.now,
      member: {
        flush: () => this.flush(),
        committed: () => this.#onCommitted(),
        excluded: () => this.#onExcluded(),
        replayBuffered: (view) => this.#replayBuffered(view),
        storageFailed: (err) => this.#storageFailed(err),
      },
    });
  }

  // ── public surface ──

  /** The membership state. */
  get state(): MemberState {
    return this.#vc.state;
  }

  /** The state `status` shows: `no_quorum` while fewer than `quorum` members are reachable. */
  get reportedState(): ReportedState {
    if (this.#failed) return "failed";
    return this.quorate ? this.#vc.state : "no_quorum";
  }

  /** Whether at least `quorum` members (this one included) were heard from by `now`. */
  canSend(now: number): boolean {
    this.#running(now);
    return this.quorate && !this.#failed;
  }

  /** Whether at least `quorum` members (this one included) are heard from. */
  get quorate(): boolean {
    let n = 1;
    for (const p of this.#peers) if (!this.#fd.suspected(p, this.#now)) n++;
    return n >= this.quorum;
  }

  /** Whether the installed view is primary (committed by a quorum): delivery happens only then. */
  get primary(): boolean {
    return this.#vc.state === "member";
  }

  /** The installed view (id 0 and no members while joining). */
  get view(): { id: number; members: string[]; primary: boolean } {
    const v = this.#vc.state === "joining" ? undefined : this.#group.view;
    return { id: v?.id ?? 0, members: v?.members.slice() ?? [], primary: this.primary };
  }

  /** The coordinator: the first member of the view (peers-file order) not suspected. */
  get coordinator(): string | undefined {
    return this.#vc.leader();
  }

  /** Messages received and not delivered yet. */
  get held(): number {
    return this.#group.held;
  }

  /** Messages waiting for a primary view. */
  get outboxSize(): number {
    return this.#outbox.length;
  }

  /** The delivered history. */
  get history(): HistoryLog {
    return this.#store;
  }

  /** Counters and state for `status`. */
  status(): Record<string, unknown> {
    const v = this.view;
    return {
      view: v.id,
      members: v.members,
      coordinator: this.coordinator ?? null,
      state: this.reportedState,
      primary: v.primary,
      quorum: this.quorum,
      clock: this.#group.clock,
      delivered: this.#store.count,
      held: this.#group.held,
      sent: this.#sent,
      outbox: this.#outbox.length,
      discarded: this.#discarded,
      suspected: [...this.#suspected],
    };
  }

  /** Starts joining (or forming) the group. */
  start(now: number): void {
    this.#now = now;
    this.tick(now);
  }

  /**
   * Multicasts `body`. Returns the stamped message, or undefined when it waits for a primary
   * view (a view change in a majority). Throws `no_quorum` when this member cannot reach a
   * quorum: a minority refuses rather than hold messages it may never be able to deliver.
   */
  send(body: string, now: number): ChatMessage | undefined {
    this.#running(now);
    if (body.length > MAX_BODY_LENGTH) {
      throw new ProtocolError(
        ErrorCode.BadField,
        `Cannot send: text longer than ${MAX_BODY_LENGTH} characters`,
      );
    }
    if (this.#failed) {
      throw new ProtocolError(ErrorCode.Unavailable, `Cannot send: ${this.#failed.message}`);
    }
    if (!this.quorate) {
      throw new ProtocolError(
        "no_quorum",
        `Cannot send: ${this.name} reaches fewer than ${this.quorum} of ${this.#order.size} members`,
      );
    }
    if (!this.primary || this.#outbox.length > 0) {
      if (this.#outbox.length >= this.#maxOutbox) {
        throw new ProtocolError(
          ErrorCode.Unavailable,
          `Cannot send: ${this.#outbox.length} messages already wait for a view`,
        );
      }
      this.#outbox.push(body);
      return undefined;
    }
    return this.#stamp(body);
  }

  /** Whether senders should pause (a link has a lot of unwritten bytes, or much is held). */
  get congested(): boolean {
    for (const p of this.#peers) if (this.#t.pendingBytes(p) > 1024 * 1024) return true;
    return this.#outbox.length > 10_000 || this.#group.held > 20_000;
  }

  /**
   * One batch (call at the end of each turn; `hooks.schedule` asks for it): data out, one
   * ack out, deliveries stored, then emitted.
   */
  flush(): void {
    if (this.#vc.state !== "member" || this.#failed) return;
    const view = this.#group.view!;
    if (this.#outgoing.length > 0) {
      // Frames of at most a few MiB (long bodies must not make one over --max-frame).
      for (const part of bySize(this.#outgoing)) {
        this.#toMembers({ t: "mc.data", view: view.id, msgs: part });
      }
      this.#outgoing = [];
    }
    const ack = this.#group.takeAck();
    if (ack) this.#toMembers({ t: "mc.ack", view: view.id, lamport: ack.lamport, recv: ack.recv });
    const ready = this.#group.deliver();
    if (ready.length === 0) return;
    let entries: HistoryEntry[];
    try {
      entries = this.#store.append(ready);
      this.#store.reserveSeq(this.#group.ownSeq);
    } catch (err) {
      this.#storageFailed(err);
      return;
    }
    const events = this.#hooks.events;
    for (const e of entries) {
      events.emit("mc.delivered", {
        idx: e.idx,
        id: e.id,
        from: e.from,
        lamport: e.lamport,
        body: e.body,
        view: view.id,
      });
    }
    this.#hooks.onDelivered?.(entries);
  }

  /** The periodic timer (every heartbeat period): heartbeats, suspicion, view changes. */
  tick(now: number): void {
    this.#now = now;
    if (this.#failed) return;
    // Data stamped before now must leave before a heartbeat carrying the current clock.
    this.flush();
    this.#running(now);
    for (const p of this.#peers) this.#t.send(p, this.#vc.heartbeat());
    for (const m of this.#group.view?.members ?? []) {
      if (this.#fd.suspected(m, now) && !this.#suspected.has(m) && m !== this.name) {
        this.#suspected.add(m);
        this.#t.reset?.(m);
        this.#hooks.events.emit("mc.suspect", {
          member: m,
          silent_ms: Math.round(this.#fd.silence(m, now)),
        });
      }
    }
    this.#checkQuorum();
    this.#vc.onTimer(now);
    this.#hooks.schedule();
  }

  /**
   * Takes one frame from member `from` (the authenticated sender). Throws a
   * {@linkcode ProtocolError} for bad input (the transport turns it into an error reply).
   */
  receive(from: string, msg: Message, now: number): void {
    this.#running(now);
    if (!this.#order.has(from) || from === this.name) {
      this.refuseNonMember(from, msg.t as string);
    }
    this.#fd.heard(from, now);
    if (this.#suspected.delete(from)) this.#hooks.log.info(`${from} is heard from again`);
    if (this.#failed) return;
    switch (msg.t) {
      case "mc.data":
        return this.#onData(msg, from);
      case "mc.ack":
        return this.#onAck(msg, from);
      case "mc.hb":
        return this.#onHeartbeat(msg, from);
      case "mc.leave":
        this.#fd.forget(from);
        this.#vc.forget(from);
        this.#hooks.log.info(`${from} left`);
        return;
      default:
        this.#vc.receive(from, msg, now);
    }
  }

  /** Emits `mc.discard` for a frame from outside the group and throws `not_member`. */
  refuseNonMember(from: string, t: string): never {
    this.#discard(from, undefined, "not_member", t);
    throw new ProtocolError(
      "not_member",
      `Cannot accept ${t}: "${from}" is not a member of this group`,
    );
  }

  /**
   * The link to `name` (re)connected: resend own messages it may have lost, in any state
   * with a view (a flushing member's next heartbeat would otherwise tell `name` that
   * nothing stamped lower is still coming, past a message the old connection lost).
   */
  linkUp(name: string): void {
    const view = this.#group.view;
    if (this.#vc.state === "joining" || !view || !this.#group.isMember(name)) return;
    const pendingFrom = this.#outgoing[0]?.seq ?? Infinity;
    const again = this.#group.ownHeldAfter(this.#group.recvOf(name, this.name))
      .filter((m) => m.seq < pendingFrom);
    for (const part of bySize(again)) {
      this.#t.send(name, { t: "mc.data", view: view.id, msgs: part, resend: true });
    }
  }

  /** Sends what is batched and tells the others this member leaves. */
  leave(): void {
    this.flush();
    for (const p of this.#peers) this.#t.send(p, { t: "mc.leave" });
  }

  // ── data path ──

  #running(now: number): void {
    this.#now = now;
    const stalled = this.#fd.running(now, this.#peers);
    if (stalled !== undefined) {
      this.#hooks.log.warn(`stalled for ${Math.round(stalled)} ms; restarting failure timeouts`);
      this.#vc.stalled(now);
    }
  }

  #stamp(body: string): ChatMessage {
    const m = this.#group.send(body);
    this.#outgoing.push(m);
    this.#sent++;
    this.#hooks.events.emit("mc.sent", { id: m.id, lamport: m.lamport });
    this.#hooks.schedule();
    return m;
  }

  #toMembers(frame: Message): void {
    for (const name of this.#group.view?.members ?? []) {
      if (name !== this.name) this.#t.send(name, frame);
    }
  }

  #discard(from: string, id: string | undefined, reason: string, detail: string): void {
    this.#discarded++;
    this.#hooks.events.emit("mc.discard", { from, id: id ?? null, reason, detail });
  }

  /** Buffers a frame stamped for a view this node has not installed yet; true if it did. */
  #deferred(from: string, view: number, msg: Message): boolean {
    const current = this.#vc.state === "joining" ? 0 : this.#group.view?.id ?? 0;
    if (view <= current) return false;
    let queue = this.#buffered.get(from);
    if (!queue) this.#buffered.set(from, queue = []);
    if (queue.length >= MAX_BUFFERED_FRAMES) {
      this.#discard(from, undefined, "buffer_full", `frame for view ${view}`);
      return true;
    }
    queue.push(msg);
    return true;
  }

  /** Whether frames of view `view` are taken now (installed, or committed). */
  #inView(view: number): boolean {
    const s = this.#vc.state;
    return (s === "member" || s === "installing") && view === this.#group.view?.id;
  }

  #onData(msg: Message, from: string): void {
    const { view, msgs, resend } = readData(msg);
    if (this.#deferred(from, view, msg)) return;
    if (!this.#inView(view)) {
      // Sent in an older view: it is part of that view's flush, or from an excluded node.
      this.#hooks.events.debug("mc.stale", { from, view, count: msgs.length });
      return;
    }
    let refused: ProtocolError | undefined;
    for (const m of msgs) {
      const r = this.#group.receive(from, m);
      if (r.ok) continue;
      if (r.reason === "duplicate" && resend) continue;
      this.#discard(from, m.id, r.reason, r.detail);
      refused ??= new ProtocolError(r.reason, `Cannot accept ${m.id}: ${r.detail}`);
    }
    this.#hooks.schedule();
    if (refused) throw refused;
  }

  #onAck(msg: Message, from: string): void {
    const { view, ack } = readAck(msg);
    if (this.#deferred(from, view, msg)) return;
    if (!this.#inView(view)) return;
    this.#group.observe(from, ack);
    this.#hooks.schedule();
  }

  #onHeartbeat(msg: Message, from: string): void {
    const { info, ack } = readHeartbeat(msg, this.#now, (n: string) => this.#order.has(n));
    if (this.#vc.peerHeartbeat(from, info)) return;
    if (this.#inView(info.view)) {
      this.#group.observe(from, ack);
      this.#hooks.schedule();
    }
  }

  // ── callbacks of the view change ──

  #onCommitted(): void {
    const view = this.#group.view!;
    for (const m of view.members) this.#suspected.delete(m);
    this.#reportedNoQuorum = false;
    try {
      this.#store.reserveSeq(this.#group.ownSeq);
    } catch (err) {
      this.#storageFailed(err);
      return;
    }
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const body of waiting) this.#stamp(body);
    this.#hooks.schedule();
  }

  #replayBuffered(viewId: number): void {
    // Frames members sent in this view before this node installed it, in arrival order.
    const buffered = [...this.#buffered];
    this.#buffered.clear();
    for (const [from, frames] of buffered) {
      for (const f of frames) {
        const fv = typeof f.view === "number" ? f.view : -1;
        if (fv < viewId) continue;
        try {
          if (f.t === "mc.data") this.#onData(f, from);
          else if (f.t === "mc.ack") this.#onAck(f, from);
        } catch (err) {
          this.#hooks.log.debug(`buffered ${f.t} from ${from}: ${String(err)}`);
        }
      }
    }
  }

  #onExcluded(): void {
    this.#outgoing = [];
    this.#buffered.clear();
  }

  #checkQuorum(): void {
    const quorate = this.quorate;
    if (!quorate && !this.#reportedNoQuorum) {
      this.#reportedNoQuorum = true;
      const reach = [this.name, ...this.#peers.filter((p) => !this.#fd.suspected(p, this.#now))];
      const reachable = reach.sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
      this.#hooks.log.warn(
        `no quorum: reaching ${reachable.join(", ")} (${reachable.length} < ${this.quorum}); ` +
          "delivery stops, sends are refused",
      );
      this.#hooks.events.emit("view.installed", {
        view: this.#group.view?.id ?? 0,
        members: reachable,
        primary: false,
      });
    } else if (quorate && this.#reportedNoQuorum && this.#vc.state === "member") {
      this.#reportedNoQuorum = false; // the same primary view goes on
    }
  }

  #storageFailed(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.#failed = e;
    this.#hooks.log.error(`history store failed: ${e.message}; delivery stopped`);
    this.#hooks.events.emit("mc.store.failed", { message: e.message });
    this.#hooks.onStorageFailure?.(e);
  }
}

export type { FlushReport, Installation };

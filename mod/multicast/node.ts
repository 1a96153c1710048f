/**
 * One running multicast node: TCP links to every other member, heartbeats and failure
 * detection, the coordinator-driven view change (propose → flush → install), joins with
 * history transfer, and the per-tick batching of data, acks, SQLite appends and output.
 *
 * @module
 */
import type { NodeEntry } from "../config/mod.ts";
import { linkSecurity, type RoleContext, startNodeServer } from "../process/mod.ts";
import {
  ErrorCode,
  fieldArray,
  fieldInt,
  fieldOptString,
  type FrameServer,
  type Message,
  type PeerSession,
  ProtocolError,
} from "../wire/mod.ts";
import { type HistoryEntry, HistoryStore } from "./history_store.ts";
import {
  type ChatMessage,
  MAX_BATCH,
  MAX_BODY_LENGTH,
  parseChatMessage,
  parseCounters,
} from "./message.ts";
import { PeerLink } from "./peer_link.ts";
import {
  type FlushReport,
  type Installation,
  mergeFlushes,
  TotalOrderGroup,
  type View,
} from "./total_order.ts";
import { prepareDataDir } from "../storage/mod.ts";

/** Timing and output options of a {@linkcode MulticastNode}. */
export interface MulticastNodeOptions {
  /** Heartbeat period. @default {100} */
  heartbeatMs?: number;
  /** Silence after which a member is suspected and removed. @default {1500} */
  failTimeoutMs?: number;
  /** How long a coordinator waits for flush reports. @default {3000} */
  flushTimeoutMs?: number;
  /** How long a fresh group waits for all peers before forming a view anyway. @default {2000} */
  bootstrapMs?: number;
  /** Do not print delivered messages on stdout. @default {false} */
  quiet?: boolean;
  /** Most messages queued while no view is installed. @default {100000} */
  maxOutbox?: number;
}

/** The node's membership state. */
export type NodeState = "joining" | "flushing" | "member";

interface JoinRequest {
  known: number;
  ownSeq: number;
  clock: number;
  have: number;
  last?: string;
  at: number;
}

interface ViewChange {
  num: number;
  survivors: string[];
  joiners: Map<string, JoinRequest>;
  reports: Map<string, FlushReport>;
  deadline: number;
  askedAt: number;
}

interface PeerInfo {
  view: number;
  state: string;
  coord: string;
  members: string[];
  at: number;
}

const MAX_BUFFERED_FRAMES = 10_000;
const MAX_HISTORY_REPLY = 100_000;
const HISTORY_CHUNK = 2_000;
const DATA_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * A member of a total-order multicast group running over real TCP. `start()` listens and
 * begins joining; `close()` leaves politely and releases everything (safe to call twice).
 */
export class MulticastNode {
  readonly #ctx: RoleContext;
  readonly #peers: NodeEntry[];
  readonly #order = new Map<string, number>();
  readonly #opts: Required<MulticastNodeOptions>;
  readonly #store: HistoryStore;
  readonly #group: TotalOrderGroup;
  readonly #links = new Map<string, PeerLink>();
  readonly #abort = new AbortController();
  readonly #lastHeard = new Map<string, number>();
  readonly #peerInfo = new Map<string, PeerInfo>();
  readonly #buffered = new Map<string, Message[]>();
  readonly #pendingJoins = new Map<string, JoinRequest>();
  readonly #startedAt = performance.now();
  #server: FrameServer | undefined;
  #state: NodeState = "joining";
  #accepted: { num: number; coord: string; members: string[] } | undefined;
  #maxNum = 0;
  #change: ViewChange | undefined;
  #outbox: string[] = [];
  #outgoing: ChatMessage[] = [];
  /** Runs `#tick` as a macrotask: after the frames already read, without setTimeout's clamp. */
  readonly #tickChannel = new MessageChannel();
  #tickScheduled = false;
  #hbTimer: ReturnType<typeof setInterval> | undefined;
  #lastJoinAt = 0;
  #suspected = new Set<string>();
  #sent = 0;
  #discarded = 0;
  #closed = false;
  #fetched: { after: number; count: number } | undefined;
  #lastTimerAt = performance.now();
  #genTimer: ReturnType<typeof setInterval> | undefined;
  #generated = 0;
  #encoder = new TextEncoder();

  constructor(ctx: RoleContext, members: NodeEntry[], options: MulticastNodeOptions = {}) {
    this.#ctx = ctx;
    members.forEach((m, i) => this.#order.set(m.name, i));
    this.#peers = members.filter((m) => m.name !== ctx.name);
    this.#opts = {
      heartbeatMs: options.heartbeatMs ?? 100,
      failTimeoutMs: options.failTimeoutMs ?? 1500,
      flushTimeoutMs: options.flushTimeoutMs ?? 3000,
      bootstrapMs: options.bootstrapMs ?? 2000,
      quiet: options.quiet ?? false,
      maxOutbox: options.maxOutbox ?? 100_000,
    };
    prepareDataDir(ctx.dataDir);
    this.#store = new HistoryStore(`${ctx.dataDir}/multicast.db`);
    this.#tickChannel.port1.onmessage = () => {
      this.#tickScheduled = false;
      if (!this.#closed) this.#tick();
    };
    this.#group = new TotalOrderGroup(ctx.name, { ownSeq: this.#store.reservedSeq });
  }

  /** This node's name. */
  get name(): string {
    return this.#ctx.name;
  }

  /** The bound port. */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** Listens, dials every other member and starts heartbeats. */
  start(): void {
    const ctx = this.#ctx;
    const h =
      (fn: (msg: Message, from: string) => Message | void) =>
      (msg: Message, session: PeerSession) => fn.call(this, msg, this.#sender(msg, session));
    this.#server = startNodeServer(ctx, {
      handlers: {
        "mc.data": h(this.#onData),
        "mc.ack": h(this.#onAck),
        "mc.hb": h(this.#onHeartbeat),
        "mc.propose": h(this.#onPropose),
        "mc.flush": h(this.#onFlush),
        "mc.install": h(this.#onInstall),
        "mc.join": h(this.#onJoin),
        "mc.history": h(this.#onHistory),
        "mc.leave": h(this.#onLeave),
      },
      ctl: {
        status: () => this.status(),
        send: (args) => {
          const body = args.join(" ");
          if (body.length === 0) {
            throw new ProtocolError(ErrorCode.BadField, "Cannot send: usage: send <text>");
          }
          const m = this.send(body);
          return m
            ? { id: m.id, lamport: m.lamport }
            : { queued: true, outbox: this.#outbox.length };
        },
        history: (args) => {
          const n = args.length === 0 ? 20 : Number(args[0]);
          if (!Number.isInteger(n) || n < 1 || n > MAX_HISTORY_REPLY) {
            throw new ProtocolError(
              ErrorCode.BadField,
              `Cannot show history: n must be an integer 1..${MAX_HISTORY_REPLY}, got "${args[0]}"`,
            );
          }
          return { count: this.#store.count, entries: this.history(n) };
        },
        view: () => this.viewInfo(),
        generate: (args) => {
          const rate = Number(args[0] ?? "");
          const limit = Number(args[1] ?? "0");
          if (!Number.isFinite(rate) || rate < 0 || !Number.isInteger(limit) || limit < 0) {
            throw new ProtocolError(
              ErrorCode.BadField,
              "Cannot generate: usage: generate <msgs/s> [limit]   (rate 0 stops)",
            );
          }
          this.generate(rate, limit);
          return { rate, limit };
        },
      },
    });
    for (const peer of this.#peers) {
      this.#links.set(
        peer.name,
        new PeerLink(peer, {
          self: ctx.name,
          role: ctx.role,
          security: linkSecurity(ctx),
          maxFrame: ctx.maxFrame,
          signal: this.#abort.signal,
          onConnect: (link) => this.#onLinkUp(link),
          onMessage: (link, msg) => this.#onLinkReply(link, msg),
        }),
      );
    }
    this.#hbTimer = setInterval(() => this.#onTimer(), this.#opts.heartbeatMs);
  }

  /** Multicasts `body`; returns the stamped message, or undefined when queued (no view yet). */
  send(body: string): ChatMessage | undefined {
    if (body.length > MAX_BODY_LENGTH) {
      throw new ProtocolError(
        ErrorCode.BadField,
        `Cannot send: text longer than ${MAX_BODY_LENGTH} characters`,
      );
    }
    if (this.#state !== "member" || this.#outbox.length > 0) {
      if (this.#outbox.length >= this.#opts.maxOutbox) {
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

  /**
   * Sends generated messages (`<name> says #k`) at `rate` per second in 10 ms slices, up to
   * `limit` (0: no limit), pausing while {@linkcode congested}. Rate 0 stops.
   */
  generate(rate: number, limit = 0): void {
    clearInterval(this.#genTimer);
    this.#genTimer = undefined;
    if (rate <= 0 || this.#closed) return;
    let credit = 0;
    let made = 0;
    this.#genTimer = setInterval(() => {
      if (this.congested) return;
      credit = Math.min(credit + rate / 100, Math.max(1, rate / 50));
      while (credit >= 1 && (limit === 0 || made < limit)) {
        credit--;
        made++;
        this.#generated++;
        try {
          this.send(`${this.name} says #${this.#generated}`);
        } catch (err) {
          this.#ctx.log.warn(`generator: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      if (limit > 0 && made >= limit) {
        clearInterval(this.#genTimer);
        this.#genTimer = undefined;
      }
    }, 10);
  }

  /** Whether sending should pause (a link has a lot of unwritten bytes). */
  get congested(): boolean {
    for (const link of this.#links.values()) if (link.pendingBytes > 1024 * 1024) return true;
    return this.#outbox.length > 10_000 || this.#group.held > 20_000;
  }

  /** The last `n` delivered messages. */
  history(n: number): HistoryEntry[] {
    return this.#store.tail(n);
  }

  /** The installed view and who coordinates it. */
  viewInfo(): Record<string, unknown> {
    const view = this.#group.view;
    return {
      view: view?.id ?? 0,
      members: view?.members ?? [],
      coordinator: this.#leader() ?? null,
      state: this.#state,
    };
  }

  /** Role-specific status fields. */
  status(): Record<string, unknown> {
    return {
      ...this.viewInfo(),
      clock: this.#group.clock,
      delivered: this.#store.count,
      held: this.#group.held,
      sent: this.#sent,
      outbox: this.#outbox.length,
      discarded: this.#discarded,
      suspected: [...this.#suspected],
    };
  }

  /** Leaves the group politely, stops timers and links, closes the server and the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#hbTimer);
    clearInterval(this.#genTimer);
    this.#tickChannel.port1.close();
    this.#tickChannel.port2.close();
    if (this.#state === "member") this.#tick();
    for (const link of this.#links.values()) link.send({ t: "mc.leave" });
    this.#abort.abort();
    await Promise.all([...this.#links.values()].map((l) => l.close()));
    await this.#server?.close();
    this.#store.close();
  }

  // ── sending and the per-tick batch ──

  #stamp(body: string): ChatMessage {
    const m = this.#group.send(body);
    this.#outgoing.push(m);
    this.#sent++;
    this.#ctx.events.emit("mc.sent", { id: m.id, lamport: m.lamport });
    this.#schedule();
    return m;
  }

  #schedule(): void {
    if (this.#tickScheduled || this.#closed) return;
    this.#tickScheduled = true;
    this.#tickChannel.port2.postMessage(null);
  }

  /** One batch: data out, one ack out, deliveries stored, emitted and printed. */
  #tick(): void {
    if (this.#state !== "member") return;
    const view = this.#group.view!;
    if (this.#outgoing.length > 0) {
      // Frames of at most ~DATA_FRAME_BYTES (long bodies must not make one over --max-frame).
      for (const part of bySize(this.#outgoing)) {
        this.#toMembers({ t: "mc.data", view: view.id, msgs: part });
      }
      this.#outgoing = [];
    }
    const ack = this.#group.takeAck();
    if (ack) this.#toMembers({ t: "mc.ack", view: view.id, lamport: ack.lamport, recv: ack.recv });
    const ready = this.#group.deliver();
    if (ready.length === 0) return;
    const entries = this.#store.append(ready);
    this.#store.reserveSeq(this.#group.ownSeq);
    const lines: string[] = [];
    for (const e of entries) {
      this.#ctx.events.emit("mc.delivered", {
        idx: e.idx,
        id: e.id,
        from: e.from,
        lamport: e.lamport,
        body: e.body,
      });
      if (!this.#opts.quiet) lines.push(`[${e.lamport}] ${e.from}: ${e.body}\n`);
    }
    if (lines.length > 0) writeAll(this.#encoder.encode(lines.join("")));
  }

  /** Sends `frame` to every other view member. */
  #toMembers(frame: Message): void {
    for (const name of this.#group.view?.members ?? []) {
      if (name !== this.name) this.#links.get(name)?.send(frame);
    }
  }

  #onLinkUp(link: PeerLink): void {
    const view = this.#group.view;
    if (this.#state !== "member" || !view || !this.#group.isMember(link.name)) return;
    const pendingFrom = this.#outgoing[0]?.seq ?? Infinity;
    const again = this.#group.ownHeldAfter(this.#group.recvOf(link.name, this.name))
      .filter((m) => m.seq < pendingFrom);
    for (const part of bySize(again)) {
      link.send({ t: "mc.data", view: view.id, msgs: part, resend: true });
    }
  }

  #onLinkReply(link: PeerLink, msg: Message): void {
    if (msg.t === "error") {
      this.#ctx.log.debug(
        `${link.name} refused a frame: ${String(msg.code)}: ${String(msg.message)}`,
      );
    }
  }

  // ── incoming frames ──

  /** Who sent `msg`: a member of the peers file, by its authenticated hello. */
  #sender(msg: Message, session: PeerSession): string {
    const name = session.peer.name;
    if (session.peer.role !== this.#ctx.role || !this.#order.has(name) || name === this.name) {
      this.#discard(name || session.remote, undefined, "not_member", msg.t);
      throw new ProtocolError(
        "not_member",
        `Cannot accept ${msg.t}: ${session.peer.role} "${name}" is not a member of this group`,
      );
    }
    this.#lastHeard.set(name, performance.now());
    const link = this.#links.get(name);
    if (link && !link.connected) link.nudge();
    if (this.#suspected.delete(name)) this.#ctx.log.info(`${name} is heard from again`);
    return name;
  }

  #discard(from: string, id: string | undefined, reason: string, detail: string): void {
    this.#discarded++;
    this.#ctx.events.emit("mc.discard", { from, id: id ?? null, reason, detail });
  }

  /** Buffers a frame stamped for a view this node has not installed yet; true if it did. */
  #deferred(from: string, view: number, msg: Message): boolean {
    const current = this.#state === "joining" ? 0 : this.#group.view?.id ?? 0;
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

  #onData(msg: Message, from: string): void {
    const view = fieldInt(msg, "view", { min: 0 });
    const raw = fieldArray(msg, "msgs");
    if (raw.length > MAX_BATCH) {
      throw new ProtocolError(
        ErrorCode.BadField,
        `Cannot accept mc.data: more than ${MAX_BATCH} messages`,
      );
    }
    const msgs = raw.map((r) => parseChatMessage(r, msg));
    if (this.#deferred(from, view, msg)) return;
    const current = this.#group.view;
    if (this.#state !== "member" || !current || view < current.id) {
      // Sent in an older view: it is part of that view's flush, or from an excluded node.
      this.#ctx.events.debug("mc.stale", { from, view, count: msgs.length });
      return;
    }
    const resend = msg.resend === true;
    let refused: ProtocolError | undefined;
    for (const m of msgs) {
      const r = this.#group.receive(from, m);
      if (r.ok) continue;
      if (r.reason === "duplicate" && resend) continue;
      this.#discard(from, m.id, r.reason, r.detail);
      refused ??= new ProtocolError(r.reason, `Cannot accept ${m.id}: ${r.detail}`);
    }
    this.#schedule();
    if (refused) throw refused;
  }

  #onAck(msg: Message, from: string): void {
    const view = fieldInt(msg, "view", { min: 0 });
    const lamport = fieldInt(msg, "lamport", { min: 0 });
    const recv = parseCounters(msg.recv, "recv", msg);
    if (this.#deferred(from, view, msg)) return;
    if (this.#state !== "member" || view !== this.#group.view?.id) return;
    this.#group.observe(from, { lamport, recv });
    this.#schedule();
  }

  #onHeartbeat(msg: Message, from: string): void {
    const view = fieldInt(msg, "view", { min: 0 });
    const lamport = fieldInt(msg, "lamport", { min: 0 });
    const recv = parseCounters(msg.recv, "recv", msg);
    const members = this.#names(msg, "members");
    const state = fieldOptString(msg, "state") ?? "member";
    const coord = fieldOptString(msg, "coord") ?? "";
    this.#peerInfo.set(from, { view, state, coord, members, at: performance.now() });
    const mine = this.#group.view;
    if (
      this.#state !== "joining" && mine && view > mine.id && state === "member" &&
      members.includes(from) && !members.includes(this.name) &&
      (this.#accepted === undefined || this.#accepted.num <= view)
    ) {
      this.#becomeJoining(`${from} installed view ${view} without this node`);
      return;
    }
    const acc = this.#accepted;
    if (
      this.#state === "flushing" && acc && from === acc.coord && from !== this.name &&
      state === "member" && view >= acc.num
    ) {
      // The coordinator installed the view but its install never reached this node (the link
      // dropped in between; frames on one link are FIFO, so it is lost, not late).
      this.#becomeJoining(`missed the install of view ${view}`);
      return;
    }
    if (
      this.#state === "member" && mine && state === "member" && members.includes(from) &&
      !members.includes(this.name) && !mine.members.includes(from) &&
      this.#outranks(members, mine.members)
    ) {
      // Two disjoint groups (a partition healed): the smaller one dissolves and joins.
      this.#becomeJoining(`${from} is in a larger group (${members.join(", ")})`);
      return;
    }
    if (this.#state === "member" && mine && view === mine.id) {
      this.#group.observe(from, { lamport, recv });
      this.#schedule();
    }
  }

  #onLeave(_msg: Message, from: string): void {
    this.#lastHeard.set(from, -Infinity);
    this.#peerInfo.delete(from);
    this.#ctx.log.info(`${from} left`);
  }

  #onJoin(msg: Message, from: string): Message | void {
    const req: JoinRequest = {
      known: fieldInt(msg, "known", { min: 0 }),
      ownSeq: fieldInt(msg, "ownSeq", { min: 1 }),
      clock: fieldInt(msg, "clock", { min: 0 }),
      have: fieldInt(msg, "have", { min: 0 }),
      last: fieldOptString(msg, "last"),
      at: performance.now(),
    };
    if (this.#state === "joining" || this.#leader() !== this.name) {
      throw new ProtocolError(
        "not_coordinator",
        `Cannot admit ${from}: ${this.name} does not coordinate the group (${
          this.#leader() ?? "none"
        } does)`,
      );
    }
    const view = this.#group.view;
    // A join sent before its sender saw the view that admitted it.
    if (view && view.members.includes(from) && view.id > req.known) return;
    this.#pendingJoins.set(from, req);
    this.#maybeChangeView();
  }

  #onPropose(msg: Message, from: string): void {
    const num = fieldInt(msg, "num", { min: 1 });
    const members = this.#names(msg, "members");
    if (!members.includes(this.name) || !members.includes(from)) return;
    const acc = this.#accepted;
    if (acc && acc.num === num && acc.coord === from && this.#state === "flushing") {
      this.#links.get(from)?.send({ t: "mc.flush", num, ...this.#group.flushReport() });
      return; // the coordinator asked again: its first proposal or our report was lost
    }
    const floor = Math.max(
      this.#accepted?.num ?? 0,
      this.#state === "joining" ? 0 : this.#group.view?.id ?? 0,
    );
    if (num <= floor) {
      throw new ProtocolError(
        ErrorCode.Conflict,
        `Cannot accept proposal ${num}: already at ${floor}`,
      );
    }
    // A bootstrap proposal while a group exists elsewhere: join that group instead.
    if (this.#state === "joining" && this.#knownView() > 0) return;
    this.#maxNum = Math.max(this.#maxNum, num);
    if (this.#state === "member") this.#tick(); // what was stamped goes out in the old view
    this.#accepted = { num, coord: from, members };
    this.#change = undefined;
    this.#state = "flushing";
    const report = this.#group.flushReport();
    this.#links.get(from)?.send({ t: "mc.flush", num, ...report });
  }

  #onFlush(msg: Message, from: string): void {
    const num = fieldInt(msg, "num", { min: 1 });
    const change = this.#change;
    if (!change || change.num !== num || !change.survivors.includes(from)) return;
    const report: FlushReport = {
      clock: fieldInt(msg, "clock", { min: 0 }),
      hold: fieldArray(msg, "hold").map((r) => parseChatMessage(r, msg)),
      nextSeq: parseCounters(msg.nextSeq, "nextSeq", msg),
      ownSeq: fieldInt(msg, "ownSeq", { min: 1 }),
    };
    change.reports.set(from, report);
    this.#maybeFinishChange();
  }

  #onInstall(msg: Message, from: string): void {
    const num = fieldInt(msg, "num", { min: 1 });
    const members = this.#names(msg, "members");
    const inst: Installation = {
      view: { id: num, members },
      msgs: fieldArray(msg, "msgs").map((r) => parseChatMessage(r, msg)),
      clocks: parseCounters(msg.clocks, "clocks", msg),
      nextSeq: parseCounters(msg.nextSeq, "nextSeq", msg),
      maxClock: fieldInt(msg, "maxClock", { min: 0 }),
    };
    const joiner = msg.joiner;
    if (joiner !== undefined && joiner !== null) {
      if (this.#state !== "joining" || !members.includes(this.name)) return;
      if (typeof joiner !== "object" || Array.isArray(joiner)) {
        throw new ProtocolError(ErrorCode.BadField, "Cannot accept mc.install: bad joiner part");
      }
      const part = joiner as Message;
      const base = fieldInt(part, "from", { min: 0 });
      const delivered = parseCounters(part.delivered, "delivered", msg);
      if (base !== this.#store.count) {
        // A history chunk went missing (link dropped): the join is retried.
        this.#ctx.log.warn(
          `install from ${from}: history ends at ${base}, have ${this.#store.count}`,
        );
        return;
      }
      const fetched = this.#fetched;
      this.#fetched = undefined;
      this.#ctx.events.emit("mc.history.fetched", {
        from,
        after: fetched?.after ?? base,
        count: fetched?.count ?? 0,
        total: this.#store.count,
      });
      this.#group.installAsJoiner(inst, delivered);
      this.#finishInstall(inst.view);
      return;
    }
    const acc = this.#accepted;
    if (this.#state !== "flushing" || !acc || acc.num !== num || acc.coord !== from) return;
    this.#group.install(inst);
    this.#finishInstall(inst.view);
  }

  /** A chunk of the coordinator's history for this joining node, sent before the install. */
  #onHistory(msg: Message, from: string): void {
    const after = fieldInt(msg, "after", { min: 0 });
    const entries = fieldArray(msg, "entries").map((r) => parseChatMessage(r, msg));
    if (this.#state !== "joining") return;
    if (after > this.#store.count) return; // a chunk was lost; the join will be retried
    if (after < this.#store.count) this.#store.truncate(after);
    this.#store.append(entries);
    if (!this.#fetched || after === 0 || after < this.#fetched.after) {
      this.#fetched = { after, count: 0 };
    }
    this.#fetched.count = this.#store.count - this.#fetched.after;
    this.#ctx.log.debug(`history from ${from}: ${entries.length} after ${after}`);
  }

  #names(msg: Message, field: string): string[] {
    const raw = fieldArray(msg, field);
    const names: string[] = [];
    for (const n of raw) {
      if (typeof n !== "string" || !this.#order.has(n)) {
        throw new ProtocolError(
          ErrorCode.BadField,
          `Cannot accept ${msg.t}: ${field} must list members of the peers file, got ${String(n)}`,
        );
      }
      names.push(n);
    }
    return names;
  }

  // ── membership ──

  #sorted(names: Iterable<string>): string[] {
    return [...new Set(names)].sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
  }

  #isSuspected(name: string, now: number): boolean {
    if (name === this.name) return false;
    return now - (this.#lastHeard.get(name) ?? this.#startedAt) > this.#opts.failTimeoutMs;
  }

  /** The coordinator: the first member of the view (peers-file order) not suspected. */
  #leader(): string | undefined {
    const view = this.#group.view;
    if (!view) return undefined;
    const now = performance.now();
    return view.members.find((m) => !this.#isSuspected(m, now));
  }

  #knownView(): number {
    let best = 0;
    const now = performance.now();
    for (const info of this.#peerInfo.values()) {
      if (info.state !== "joining" && now - info.at < this.#opts.failTimeoutMs) {
        best = Math.max(best, info.view);
      }
    }
    return best;
  }

  /** Whether group `a` wins over disjoint group `b`: more members, then the first in file order. */
  #outranks(a: string[], b: string[]): boolean {
    if (a.length !== b.length) return a.length > b.length;
    return Math.min(...a.map((n) => this.#order.get(n)!)) <
      Math.min(...b.map((n) => this.#order.get(n)!));
  }

  #onTimer(): void {
    if (this.#closed) return;
    // Data stamped before now must leave before a heartbeat carrying the current clock.
    if (this.#state === "member") this.#tick();
    const now = performance.now();
    const gap = now - this.#lastTimerAt;
    this.#lastTimerAt = now;
    if (gap > this.#opts.failTimeoutMs / 2) {
      // This process was stalled (paused, swapped, a long GC): silence measured while it did
      // not run proves nothing, so every peer gets a fresh timeout before suspicion.
      this.#ctx.log.warn(`timer stalled for ${Math.round(gap)} ms; restarting failure timeouts`);
      for (const name of this.#order.keys()) {
        if (name !== this.name) {
          this.#lastHeard.set(name, Math.max(this.#lastHeard.get(name) ?? -Infinity, now));
        }
      }
      if (this.#change) {
        this.#change.deadline = Math.max(this.#change.deadline, now + this.#opts.flushTimeoutMs);
      }
    }
    const view = this.#group.view;
    const hb: Message = {
      t: "mc.hb",
      view: this.#state === "joining" ? 0 : view?.id ?? 0,
      state: this.#state,
      coord: this.#leader() ?? "",
      members: view?.members ?? [],
      ...this.#group.heartbeat(),
    };
    for (const link of this.#links.values()) link.send(hb);
    for (const m of view?.members ?? []) {
      if (this.#isSuspected(m, now) && !this.#suspected.has(m)) {
        this.#suspected.add(m);
        this.#ctx.events.emit("mc.suspect", {
          member: m,
          silent_ms: Math.round(now - (this.#lastHeard.get(m) ?? this.#startedAt)),
        });
      }
    }
    if (
      this.#state === "flushing" && !view && this.#accepted &&
      this.#isSuspected(this.#accepted.coord, now)
    ) {
      this.#state = "joining"; // the node forming the group died mid-way
      this.#accepted = undefined;
    }
    if (this.#state === "joining" && !this.#change) this.#tryJoin(now);
    else this.#maybeChangeView();
    this.#schedule();
  }

  #tryJoin(now: number): void {
    let target: string | undefined;
    let best = 0;
    for (const [name, info] of this.#peerInfo) {
      if (info.state === "joining" || now - info.at > this.#opts.failTimeoutMs) continue;
      if (info.view > best) {
        best = info.view;
        target = info.coord || name;
      }
    }
    if (target !== undefined) {
      if (now - this.#lastJoinAt < Math.max(300, this.#opts.failTimeoutMs / 3)) return;
      this.#lastJoinAt = now;
      const count = this.#store.count;
      this.#links.get(target)?.send({
        t: "mc.join",
        known: best,
        ownSeq: this.#group.ownSeq,
        clock: this.#group.clock,
        have: count,
        last: count > 0 ? this.#store.idAt(count) : undefined,
      });
      return;
    }
    // No group anywhere: the first joining node (peers-file order) forms one.
    const joining = [...this.#peerInfo].filter(([, i]) =>
      i.state !== "member" && now - i.at <= this.#opts.failTimeoutMs
    ).map(([n]) => n);
    const reachable = (name: string) =>
      this.#peerInfo.has(name) && !this.#isSuspected(name, now) &&
      this.#links.get(name)?.connected === true;
    const heardAll = this.#peers.every((p) => reachable(p.name));
    if (!heardAll && now - this.#startedAt < this.#opts.bootstrapMs) return;
    const candidates = this.#sorted([this.name, ...joining.filter(reachable)]);
    if (candidates[0] !== this.name) return;
    if (this.#accepted && !this.#isSuspected(this.#accepted.coord, now)) return;
    this.#startChange(candidates, new Map());
  }

  #maybeChangeView(): void {
    const now = performance.now();
    const change = this.#change;
    if (change) {
      if (now < change.deadline) {
        if (now - change.askedAt >= 400) {
          change.askedAt = now;
          const members = this.#accepted?.members ?? [];
          for (const s of change.survivors) {
            if (!change.reports.has(s)) {
              this.#links.get(s)?.send({ t: "mc.propose", num: change.num, members });
            }
          }
        }
        return;
      }
      const silent = change.survivors.filter((s) => !change.reports.has(s));
      this.#ctx.log.warn(`view change ${change.num}: no flush from ${silent.join(", ")}; retrying`);
      this.#change = undefined;
      this.#startChange(change.survivors.filter((s) => change.reports.has(s)), change.joiners);
      return;
    }
    const view = this.#group.view;
    if (!view || this.#state === "joining") return;
    if (
      this.#state === "flushing" && this.#accepted && !this.#isSuspected(this.#accepted.coord, now)
    ) {
      return;
    }
    if (this.#leader() !== this.name) return;
    for (const [name, req] of this.#pendingJoins) {
      if (now - req.at > 4 * this.#opts.failTimeoutMs) this.#pendingJoins.delete(name);
    }
    const suspects = view.members.filter((m) => this.#isSuspected(m, now));
    const joins = new Map(
      [...this.#pendingJoins].filter(([n]) =>
        !this.#isSuspected(n, now) && this.#links.get(n)?.connected === true
      ),
    );
    if (suspects.length === 0 && joins.size === 0) return;
    const survivors = view.members.filter((m) => !suspects.includes(m) && !joins.has(m));
    this.#startChange(survivors, joins);
  }

  #startChange(survivors: string[], joiners: Map<string, JoinRequest>): void {
    const num = Math.max(this.#maxNum, this.#group.view?.id ?? 0, this.#accepted?.num ?? 0) + 1;
    this.#maxNum = num;
    const members = this.#sorted([...survivors, ...joiners.keys()]);
    const all = this.#sorted([this.name, ...survivors]);
    if (this.#state === "member") this.#tick();
    this.#change = {
      num,
      survivors: all,
      joiners,
      reports: new Map([[this.name, this.#group.flushReport()]]),
      deadline: performance.now() + this.#opts.flushTimeoutMs,
      askedAt: performance.now(),
    };
    this.#accepted = { num, coord: this.name, members };
    this.#state = "flushing";
    this.#ctx.log.info(
      `proposing view ${num}: ${members.join(", ")}${
        joiners.size ? ` (joining: ${[...joiners.keys()].join(", ")})` : ""
      }`,
    );
    for (const s of all) {
      if (s !== this.name) this.#links.get(s)?.send({ t: "mc.propose", num, members });
    }
    this.#maybeFinishChange();
  }

  #maybeFinishChange(): void {
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
    for (const s of change.survivors) if (s !== this.name) this.#links.get(s)?.send(base);
    const delivered = this.#group.deliveredVector();
    for (const [name, req] of change.joiners) {
      const count = this.#store.count;
      const matches = req.have <= count &&
        (req.have === 0 || this.#store.idAt(req.have) === req.last);
      const link = this.#links.get(name);
      let after = matches ? req.have : 0;
      for (let i = 0; i < 100_000; i++) {
        const entries = this.#store.since(after, HISTORY_CHUNK);
        for (const part of bySize(entries)) {
          link?.send({ t: "mc.history", after, entries: part });
          after = part[part.length - 1].idx;
        }
        if (entries.length < HISTORY_CHUNK) break;
      }
      if (after !== count) {
        this.#ctx.log.warn(`history for ${name} stopped at ${after} of ${count}`);
      }
      link?.send({ ...base, joiner: { from: count, delivered } });
      this.#pendingJoins.delete(name);
    }
    this.#group.install(inst);
    this.#finishInstall(view);
  }

  #finishInstall(view: View): void {
    this.#state = "member";
    this.#change = undefined;
    this.#accepted = undefined;
    this.#maxNum = Math.max(this.#maxNum, view.id);
    const now = performance.now();
    for (const m of view.members) {
      this.#pendingJoins.delete(m);
      this.#suspected.delete(m);
      if (
        m !== this.name && !((this.#lastHeard.get(m) ?? -Infinity) > now - this.#opts.failTimeoutMs)
      ) {
        this.#lastHeard.set(m, now);
      }
    }
    this.#store.reserveSeq(this.#group.ownSeq);
    this.#ctx.events.emit("view.changed", { view: view.id, members: view.members });
    this.#ctx.log.info(`view ${view.id}: ${view.members.join(", ")}`);
    // Frames members sent in this view before this node installed it, in arrival order.
    const buffered = [...this.#buffered];
    this.#buffered.clear();
    for (const [from, frames] of buffered) {
      for (const f of frames) {
        const fv = typeof f.view === "number" ? f.view : -1;
        if (fv < view.id) continue;
        try {
          if (f.t === "mc.data") this.#onData(f, from);
          else if (f.t === "mc.ack") this.#onAck(f, from);
        } catch (err) {
          this.#ctx.log.debug(`buffered ${f.t} from ${from}: ${String(err)}`);
        }
      }
    }
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const body of waiting) this.#stamp(body);
    this.#schedule();
  }

  #becomeJoining(reason: string): void {
    this.#ctx.log.warn(`excluded from the group: ${reason}; rejoining`);
    this.#ctx.events.emit("mc.excluded", { reason });
    this.#group.leave();
    this.#state = "joining";
    this.#accepted = undefined;
    this.#change = undefined;
    this.#outgoing = [];
    this.#buffered.clear();
    this.#lastJoinAt = 0;
  }
}

/** Splits messages into runs of at most ~DATA_FRAME_BYTES encoded (so no frame is too large). */
function bySize<T extends ChatMessage>(msgs: T[]): T[][] {
  const parts: T[][] = [];
  let part: T[] = [];
  let bytes = 0;
  for (const m of msgs) {
    const size = m.body.length * 3 + m.id.length + 64;
    if (part.length > 0 && bytes + size > DATA_FRAME_BYTES) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(m);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function writeAll(bytes: Uint8Array): void {
  let off = 0;
  for (let i = 0; off < bytes.length && i < 10_000; i++) {
    off += Deno.stdout.writeSync(bytes.subarray(off));
  }
}

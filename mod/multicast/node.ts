/**
 * One running multicast node: the wiring of a {@linkcode MulticastMember} (the protocol
 * core) to real time and TCP — a frame server, links (`multicastLinks`) to every other member,
 * the heartbeat timer, a per-turn batch, the SQLite history, ctl commands, stdout, and the
 * message generator.
 *
 * @module
 */
import type { NodeEntry } from "../config/mod.ts";
import { linkSecurity, type RoleContext, startNodeServer, Tick } from "../process/mod.ts";
import { ctlCommand } from "../ctl/mod.ts";
import { prepareDataDir } from "../storage/mod.ts";
import type { FrameServer, Message, PeerSession } from "../wire/mod.ts";
import { type HistoryEntry, HistoryStore } from "./history_store.ts";
import type { ChatMessage } from "./message.ts";
import { MEMBER_FRAME_TYPES } from "./protocol.ts";
import { MulticastMember } from "./member.ts";
import { multicastLinks } from "./tcp_transport.ts";

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
  /** Members a primary view needs. @default {majority of the peers file's members} */
  quorum?: number;
  /** Do not print delivered messages on stdout. @default {false} */
  quiet?: boolean;
  /** Most messages queued while no view is installed. @default {100000} */
  maxOutbox?: number;
  /** Called when the history store fails (delivery has stopped). */
  onFatal?: (err: Error) => void;
}

/** The node's membership state as `status` shows it. */
export type { ReportedState as NodeState } from "./member.ts";

const MAX_HISTORY_REPLY = 100_000;

/**
 * A member of a total-order multicast group running over real TCP. `start()` listens and
 * begins joining; `close()` leaves politely and releases everything (safe to call twice).
 */
export class MulticastNode {
  readonly #ctx: RoleContext;
  readonly #peers: NodeEntry[];
  readonly #opts: MulticastNodeOptions;
  readonly #store: HistoryStore;
  readonly #links: ReturnType<typeof multicastLinks>;
  readonly #member: MulticastMember;
  /** Runs `flush` as a macrotask: after the frames already read, without setTimeout's clamp. */
  /** Flushes what one turn queued (batching), once per turn. */
  readonly #turn = new Tick(() => this.#member.flush());
  #server: FrameServer | undefined;
  #hbTimer: ReturnType<typeof setInterval> | undefined;
  #genTimer: ReturnType<typeof setInterval> | undefined;
  #generated = 0;
  #closed = false;
  #encoder = new TextEncoder();

  constructor(ctx: RoleContext, members: NodeEntry[], options: MulticastNodeOptions = {}) {
    this.#ctx = ctx;
    this.#opts = options;
    this.#peers = members.filter((m) => m.name !== ctx.name);
    prepareDataDir(ctx.dataDir);
    this.#store = new HistoryStore(`${ctx.dataDir}/multicast.db`);
    this.#links = multicastLinks(this.#peers, {
      self: ctx.name,
      role: ctx.role,
      security: linkSecurity(ctx),
      maxFrame: ctx.maxFrame,
      onConnect: (name) => this.#member.linkUp(name),
      onMessage: (name, msg) => {
        if (msg.t === "error") {
          ctx.log.debug(`${name} refused a frame: ${String(msg.code)}: ${String(msg.message)}`);
        }
      },
    });
    this.#member = new MulticastMember({
      name: ctx.name,
      members: members.map((m) => m.name),
      transport: this.#links,
      history: this.#store,
      now: performance.now(),
      failTimeoutMs: options.failTimeoutMs,
      flushTimeoutMs: options.flushTimeoutMs,
      bootstrapMs: options.bootstrapMs,
      quorum: options.quorum,
      maxOutbox: options.maxOutbox,
      hooks: {
        events: ctx.events,
        log: ctx.log,
        schedule: () => this.#schedule(),
        onDelivered: (entries) => this.#print(entries),
        onStorageFailure: (err) => options.onFatal?.(err),
      },
    });
  }

  /** This node's name. */
  get name(): string {
    return this.#ctx.name;
  }

  /** The bound port. */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** The protocol core. */
  get member(): MulticastMember {
    return this.#member;
  }

  /** Listens, dials every other member and starts heartbeats. */
  start(): void {
    const ctx = this.#ctx;
    const frame = (msg: Message, session: PeerSession) => {
      const name = session.peer.name;
      if (session.peer.role !== ctx.role) {
        this.#member.refuseNonMember(name || session.remote, String(msg.t));
      }
      this.#links.nudge(name);
      this.#member.receive(name, msg, performance.now());
    };
    this.#server = startNodeServer(ctx, {
      handlers: Object.fromEntries(MEMBER_FRAME_TYPES.map((t) => [t, frame])),
      ctl: {
        status: () => this.status(),
        send: ctlCommand("send", {
          summary: "multicast a chat message to the group",
          args: { text: { type: "string", rest: true, help: "the message" } },
        }, ({ text }) => {
          const m = this.send(text);
          return m
            ? { id: m.id, lamport: m.lamport }
            : { queued: true, outbox: this.#member.outboxSize };
        }),
        history: ctlCommand("history", {
          summary: "the last n delivered messages",
          args: {
            n: {
              type: "int",
              min: 1,
              max: MAX_HISTORY_REPLY,
              default: 20,
              optional: true,
              help: "how many",
            },
          },
        }, ({ n }) => ({ count: this.#store.count, entries: this.history(n) })),
        view: () => this.viewInfo(),
        generate: ctlCommand("generate", {
          summary: "start (0 stops) the message generator",
          args: {
            rate: { type: "float", arg: "msgs/s", min: 0, help: "messages a second" },
            limit: {
              type: "int",
              min: 0,
              default: 0,
              optional: true,
              help: "stop after this many (0: never)",
            },
          },
        }, ({ rate, limit }) => {
          this.generate(rate, limit);
          return { rate, limit };
        }),
      },
    });
    this.#member.start(performance.now());
    this.#links.start();
    this.#hbTimer = setInterval(() => {
      if (!this.#closed) this.#member.tick(performance.now());
    }, this.#opts.heartbeatMs ?? 100);
  }

  /**
   * Multicasts `body`; returns the stamped message, or undefined when queued (a view change
   * is under way). Throws `no_quorum` in a minority.
   */
  send(body: string): ChatMessage | undefined {
    return this.#member.send(body, performance.now());
  }

  /**
   * Sends generated messages (`<name> says #k`) at `rate` per second in 10 ms slices, up to
   * `limit` (0: no limit), pausing while congested or without a quorum. Rate 0 stops.
   */
  generate(rate: number, limit = 0): void {
    clearInterval(this.#genTimer);
    this.#genTimer = undefined;
    if (rate <= 0 || this.#closed) return;
    let credit = 0;
    let made = 0;
    this.#genTimer = setInterval(() => {
      if (this.#member.congested || !this.#member.canSend(performance.now())) return;
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

  /** The last `n` delivered messages. */
  history(n: number): HistoryEntry[] {
    return this.#store.tail(n);
  }

  /** The installed view and who coordinates it. */
  viewInfo(): Record<string, unknown> {
    const v = this.#member.view;
    return {
      view: v.id,
      members: v.members,
      coordinator: this.#member.coordinator ?? null,
      state: this.#member.reportedState,
      primary: v.primary,
    };
  }

  /** Role-specific status fields. */
  status(): Record<string, unknown> {
    return this.#member.status();
  }

  /** Leaves the group politely, stops timers and links, closes the server and the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#hbTimer);
    clearInterval(this.#genTimer);
    this.#turn.close();
    this.#member.leave();
    await this.#links.close();
    await this.#server?.close();
    this.#store.close();
  }

  #schedule(): void {
    if (!this.#closed) this.#turn.schedule();
  }

  #print(entries: HistoryEntry[]): void {
    if (this.#opts.quiet) return;
    const lines = entries.map((e) => `[${e.lamport}] ${e.from}: ${e.body}\n`).join("");
    const bytes = this.#encoder.encode(lines);
    let off = 0;
    for (let i = 0; off < bytes.length && i < 10_000; i++) {
      off += Deno.stdout.writeSync(bytes.subarray(off));
    }
  }
}

/**
 * `peerd --role frontend`: the front end of the gossip architecture. Clients send it
 * queries and updates; it keeps each user's timestamp (`prev`, merged with the one the
 * client carries), picks replica managers by their reported status (ACTIVE first, then
 * OVERLOADED, OFFLINE only as a last resort), sends a query to one RM and fails over to the
 * next on a broken connection, a timeout or `unavailable`, and sends an update with its
 * unique id to one RM asking for `f` copies (that RM commits it and pushes it to `f − 1`
 * peers before acknowledging; on failure the FE retries another RM with the same id).
 * Many client requests are pipelined over one connection per RM.
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import {
  aborted,
  defineRole,
  linkSecurity,
  type OptionValues,
  type RoleContext,
  roleMembers,
  type RoleOptions,
  startNodeServer,
} from "../process/mod.ts";
import {
  Backoff,
  ConnectionClosedError,
  ErrorCode,
  fieldString,
  type FrameHandler,
  type Message,
  type PeerSession,
  ProtocolError,
  RemoteError,
  sleep,
} from "../wire/mod.ts";
import { PeerLink } from "./peer_link.ts";
import {
  type FeRequest,
  fieldMovie,
  fieldQuery,
  fieldTs,
  fieldUser,
  type RmStatus,
} from "./protocol.ts";
import { merge, mergeInto, parseVectorTs, type VectorTs } from "./vector_ts.ts";

interface Rm {
  name: string;
  address: string;
  link: PeerLink;
  status: RmStatus;
  inUse: boolean;
}

/** Users whose timestamps the FE keeps (oldest dropped; clients carry theirs anyway). */
const MAX_USERS = 200_000;

const RETRYABLE = new Set<string>([ErrorCode.Unavailable, ErrorCode.Timeout]);

/** The front end role's options. */
const FRONTEND_OPTIONS = {
  faultTolerance: {
    type: "int",
    arg: "f",
    default: 2,
    min: 1,
    help: "copies an update must reach before it is acknowledged",
  },
  rmTimeout: {
    type: "int",
    arg: "ms",
    default: 8000,
    min: 1,
    help: "how long to wait for one replica before failing over",
  },
} as const satisfies RoleOptions;

/** The front end of one process. */
class FrontEnd {
  readonly #ctx: RoleContext<OptionValues<typeof FRONTEND_OPTIONS>>;
  #rms: Rm[] = [];
  #prev = new Map<number, VectorTs>();
  #next = 0;
  #requests = 0;
  #failovers = 0;
  #f: number;
  #timeoutMs: number;
  #tasks = new Set<Promise<unknown>>();
  #ranked: Rm[] | undefined;
  #activeCount = 0;
  #pending = 0;
  #idle: (() => void) | undefined;

  constructor(ctx: RoleContext<OptionValues<typeof FRONTEND_OPTIONS>>) {
    this.#ctx = ctx;
    this.#f = ctx.options.faultTolerance;
    this.#timeoutMs = ctx.options.rmTimeout;
  }

  async run(): Promise<number> {
    const ctx = this.#ctx;
    const members = roleMembers(ctx, "replica").filter((n) => n.role === "replica");
    if (members.length === 0) {
      throw new ConfigError(
        `${ctx.cluster?.source ?? "--peers"}: no nodes with role "replica" for the front end`,
      );
    }
    this.#rms = members.map((n) => ({
      name: n.name,
      address: `${n.hostname}:${n.port}`,
      status: "OFFLINE" as RmStatus,
      inUse: false,
      link: new PeerLink(n.hostname, n.port, {
        role: "frontend",
        name: ctx.name,
        security: linkSecurity(ctx),
        maxFrame: ctx.maxFrame,
        timeoutMs: this.#timeoutMs,
      }),
    }));
    await Promise.all(this.#rms.map((rm) => this.#ping(rm)));
    const server = startNodeServer(ctx, {
      handlers: {
        "ratings.query": (msg, session) => this.#onQuery(msg, session),
        "ratings.update": (msg, session) => this.#onUpdate(msg, session),
      } satisfies Record<FeRequest, FrameHandler>,
      ctl: {
        status: () => ({
          fault_tolerance: this.#f,
          requests: this.#requests,
          failovers: this.#failovers,
          users: this.#prev.size,
          rms: this.#rms.map((rm) => ({
            name: rm.name,
            address: rm.address,
            status: rm.status,
            up: rm.link.up,
            in_flight: rm.link.inFlight,
          })),
        }),
      },
    });
    // Ping every RM every 500 ms, an OFFLINE one every 100 ms (it may be coming back).
    let tick = 0;
    const pinger = setInterval(() => {
      tick++;
      for (const rm of this.#rms) {
        if (rm.status === "OFFLINE" || tick % 5 === 0) this.#track(this.#ping(rm));
      }
    }, 100);
    try {
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${server.port}`,
        rms: this.#rms.map((rm) => `${rm.name}=${rm.status}`),
        fault_tolerance: this.#f,
      });
      await aborted(ctx.signal);
    } finally {
      clearInterval(pinger);
      await this.#drained(2_000);
      await server.close();
      await Promise.allSettled([...this.#tasks]);
      await Promise.all(this.#rms.map((rm) => rm.link.close()));
    }
    ctx.events.emit("stopped", { requests: this.#requests, failovers: this.#failovers });
    return 0;
  }

  async #ping(rm: Rm): Promise<void> {
    let status: RmStatus;
    try {
      // an RM that does not answer a ping within 1 s is cut off, paused or stuck: close the
      // connection so the requests waiting on it fail over now, not after --rm-timeout
      const reply = await rm.link.request({ t: "rm.ping" }, 1_000, { resetOnTimeout: true });
      status = reply.status === "OVERLOADED" || reply.status === "OFFLINE"
        ? reply.status
        : "ACTIVE";
    } catch {
      status = "OFFLINE";
    }
    this.#setStatus(rm, status);
  }

  #setStatus(rm: Rm, status: RmStatus): void {
    if (rm.status === status) return;
    const was = rm.status;
    rm.status = status;
    this.#ranked = undefined;
    this.#ctx.events.emit("fe.rm_status", { rm: rm.name, status, was });
  }

  /** RMs ranked ACTIVE, OVERLOADED, OFFLINE (file order within a rank), cached. */
  #rankedRms(): Rm[] {
    if (this.#ranked) return this.#ranked;
    const rank = (s: RmStatus) => (s === "ACTIVE" ? 0 : s === "OVERLOADED" ? 1 : 2);
    this.#ranked = [...this.#rms].sort((a, b) => rank(a.status) - rank(b.status));
    this.#activeCount = this.#rms.filter((rm) => rm.status === "ACTIVE").length;
    return this.#ranked;
  }

  /** Sends `msg` to the best RM, failing over; resolves with the reply and the RM used. */
  async #route(msg: Message, kind: string): Promise<{ reply: Message; rm: Rm }> {
    const tried: string[] = [];
    let lastErr: unknown;
    let deadline = 0;
    const backoff = new Backoff({ initialMs: 50, maxMs: 400 });
    for (let round = 0; round < 50; round++) {
      if (round === 1) deadline = performance.now() + this.#timeoutMs;
      if (round > 0) {
        if (performance.now() + 50 > deadline || this.#ctx.signal.aborted) break;
        await sleep(backoff.next(), this.#ctx.signal);
      }
      const result = await this.#tryAll(msg, kind, tried, (err) => lastErr = err);
      if (result) return result;
    }
    throw new ProtocolError(
      ErrorCode.Unavailable,
      `Cannot serve ${kind}: no replica answered (tried ${[...new Set(tried)].join(", ")}): ${
        lastErr instanceof Error ? lastErr.message : String(lastErr)
      }`,
    );
  }

  async #tryAll(
    msg: Message,
    kind: string,
    tried: string[],
    onError: (err: unknown) => void,
  ): Promise<{ reply: Message; rm: Rm } | undefined> {
    // The first try rotates over the ACTIVE RMs (or all, if none is); then the rest in rank.
    const ranked = this.#rankedRms();
    const first = this.#next++ % (this.#activeCount || ranked.length);
    for (let j = 0; j < ranked.length; j++) {
      const rm = ranked[j === 0 ? first : j <= first ? j - 1 : j];
      try {
        const reply = await rm.link.request(msg, this.#timeoutMs);
        if (typeof reply.st === "string") this.#setStatus(rm, reply.st as RmStatus);
        else if (rm.status === "OFFLINE") this.#setStatus(rm, "ACTIVE");
        if (tried.length > 0 || !rm.inUse) {
          rm.inUse = true;
          this.#ctx.events.emit("fe.route", {
            rm: rm.name,
            kind,
            reason: tried.length > 0 ? "failover" : "first",
            ...(tried.length > 0 ? { from: tried } : {}),
          });
        } else if (this.#ctx.events.debugEnabled) {
          this.#ctx.events.debug("fe.route", { rm: rm.name, kind });
        }
        return { reply, rm };
      } catch (err) {
        if (err instanceof RemoteError && !RETRYABLE.has(err.code)) throw err;
        onError(err);
        tried.push(rm.name);
        this.#failovers++;
        if (rm.inUse) rm.inUse = false;
        if (err instanceof ConnectionClosedError || !(err instanceof RemoteError)) {
          this.#setStatus(rm, "OFFLINE");
        }
        this.#ctx.log.debug(`${kind} via ${rm.name} failed: ${(err as Error).message}`);
      }
    }
    return undefined;
  }

  #prevOf(user: number, carried: VectorTs): VectorTs {
    const kept = this.#prev.get(user);
    return kept ? merge(kept, carried) : carried;
  }

  #learn(user: number, ts: unknown): VectorTs {
    const parsed = parseVectorTs(ts) ?? {};
    let kept = this.#prev.get(user);
    if (!kept) {
      if (this.#prev.size >= MAX_USERS) this.#prev.delete(this.#prev.keys().next().value!);
      this.#prev.set(user, kept = {});
    }
    mergeInto(kept, parsed);
    return kept;
  }

  #onQuery(msg: Message, session: PeerSession): undefined {
    const q = fieldQuery(msg);
    const user = fieldUser(msg);
    const movie = q === "all" ? undefined : fieldMovie(msg);
    const prev = this.#prevOf(user, fieldTs(msg, "prev"));
    this.#serve(session, msg, user, { t: "ratings.query", q, user, movie, prev }, q);
    return undefined;
  }

  #onUpdate(msg: Message, session: PeerSession): undefined {
    const kind = fieldString(msg, "kind", { maxLength: 16 });
    const user = fieldUser(msg);
    const prev = this.#prevOf(user, fieldTs(msg, "prev"));
    const uid = msg.uid === undefined || msg.uid === null
      ? crypto.randomUUID()
      : fieldString(msg, "uid", { maxLength: 80 });
    const time = msg.time ?? Math.floor(Date.now() / 1000);
    const forward: Message = {
      t: "ratings.update",
      kind,
      user,
      movie: msg.movie,
      rating: msg.rating,
      uid,
      time,
      prev,
      f: this.#f,
    };
    this.#serve(session, msg, user, forward, kind);
    return undefined;
  }

  /** Routes `forward` and answers `msg` with the reply, its timestamp merged into the user's. */
  #serve(session: PeerSession, msg: Message, user: number, forward: Message, kind: string): void {
    this.#requests++;
    this.#pending++;
    this.#route(forward, kind).then(
      ({ reply, rm }) => {
        reply.ts = this.#learn(user, reply.ts);
        reply.rm = rm.name;
        delete reply.st;
        session.reply(msg, reply);
      },
      (err) => session.replyError(msg, relayed(err)),
    ).finally(() => {
      if (--this.#pending === 0) this.#idle?.();
    });
  }

  /** Resolves when no client request is in flight (bounded by `ms`). */
  #drained(ms: number): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#idle = done;
    });
  }

  #track<T>(p: Promise<T>): void {
    const task = p.catch(() => {});
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }
}

/** An RM's error frame passed on to the client with its own code and fields. */
function relayed(err: unknown): unknown {
  if (!(err instanceof RemoteError)) return err;
  const { t: _t, rid: _rid, code, message, ...details } = err.frame;
  return new ProtocolError(String(code), String(message ?? err.message), details);
}

/** The `frontend` role. */
export const frontendRole = defineRole({
  name: "frontend",
  summary: "movie-ratings front end: keeps clients' timestamps, routes to replicas by status",
  peers: "required",
  defaultPort: 7711,
  options: FRONTEND_OPTIONS,
  examples: [
    "peerd --role frontend --name fe1 --peers peers.json",
    "peerd ratings --fe 127.0.0.1:7711 --user 7 average 1",
  ],
  run: (ctx) => new FrontEnd(ctx).run(),
});

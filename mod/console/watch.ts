/**
 * Watching a cluster for the console: for each node of the peers file, its status polled
 * every interval (over its HTTP `/status` when the node's entry has `"http"`, else with
 * `ctl status` on its own port, which every role answers), and its events streamed from
 * HTTP `/events` when it has HTTP. A node that stops answering is reported down at once
 * and watched until it comes back.
 *
 * @module
 */
import type { ClusterConfig, NodeEntry } from "../config/mod.ts";
import type { EventRecord } from "../events/mod.ts";
import { parseHttpListen, readSse } from "../http/mod.ts";
import { Backoff, RpcClient, sleep } from "../wire/mod.ts";

/** What the console knows of one node. */
export interface NodeView {
  /** Node name. */
  name: string;
  /** Its role (from the peers file, else from its status). */
  role: string;
  /** Its native `host:port`. */
  address: string;
  /** Its HTTP `host:port`, when it has one. */
  http?: string;
  /** Whether its last status poll answered. */
  up: boolean;
  /** Why it is down. */
  error?: string;
  /** Its last status. */
  status?: Record<string, unknown>;
  /** Extra figures some roles get polled for (queue: `queues`). */
  extra?: Record<string, unknown>;
  /** When the last poll finished (ms since the epoch). */
  at: number;
  /** When it was last seen going down (ms since the epoch). */
  downSince?: number;
  /** Whether its events stream is connected. */
  streaming: boolean;
  /**
   * Events of each name streamed from it since the console attached — exact, thinned ones
   * included (a summary adds its count).
   */
  counts: Record<string, number>;
}

/** One update for the page. */
export type WatchUpdate =
  | { type: "node"; node: NodeView }
  | { type: "event"; event: EventRecord };

/** Options of {@linkcode ClusterWatch}. */
export interface ClusterWatchOptions {
  /** Cluster secret (ctl handshake, HTTP token). */
  secret?: string;
  /** The HTTP bearer token (derived from the secret by the caller). */
  token?: string;
  /** Poll interval. @default {1000} */
  intervalMs?: number;
  /** Events kept per node for new pages. @default {400} */
  keepEvents?: number;
  /** Stops everything. */
  signal: AbortSignal;
}

/** Event-name prefixes a node streams to the console, and those it summarises. */
export interface StreamSelection {
  /** Prefixes streamed. */
  ev: string[];
  /** Prefixes (among `ev`) thinned per window: the first `keep` whole, then a summary. */
  thin?: string[];
  /** Events of a thinned name sent whole per window. @default {0} */
  keep?: number;
}

/**
 * What the console asks each role's nodes to stream (`/events?ev=…&thin=…`): the events
 * its page draws, no more; `thin` names the high-rate kinds the node summarises per
 * window (the last one and the count) — the ring's lock events, three per grant, come
 * thousands a second under contention. Roles drawn from their status alone stream only
 * their lifecycle.
 */
export const STREAM_SELECTION: Readonly<Record<string, StreamSelection>> = {
  ring: { ev: ["lock.", "token.", "ready", "stopped"], thin: ["lock."], keep: 4 },
  gossip: { ev: ["rumor.", "member.", "ready", "stopped"] },
  // the diagram draws the last 30 messages: at a human's pace every one, under load a
  // sample (the first of each window) with exact counts
  multicast: {
    ev: ["mc.sent", "mc.delivered", "mc.excluded", "view.", "ready", "stopped"],
    thin: ["mc.sent", "mc.delivered"],
    keep: 40,
  },
  "lottery-server": { ev: ["batch.stored", "agency.done", "draw", "ready", "stopped"] },
};

/** What the nodes of a role without an entry in {@linkcode STREAM_SELECTION} stream. */
const LIFECYCLE_ONLY: StreamSelection = { ev: ["ready", "stopped"] };

/** The `/events` query of a node of `role` (replay and reconnect position aside). */
export function streamQuery(role: string): string {
  const sel = Object.hasOwn(STREAM_SELECTION, role) ? STREAM_SELECTION[role] : LIFECYCLE_ONLY;
  const q = new URLSearchParams({ ev: sel.ev.join(",") });
  if (sel.thin?.length) q.set("thin", sel.thin.join(","));
  if (sel.thin?.length && sel.keep) q.set("thin_keep", String(sel.keep));
  return q.toString();
}

/** Extra ctl commands polled per role, merged into `NodeView.extra`. */
const EXTRA: Record<string, string[]> = {
  queue: ["queues", "exchanges"],
  // who each gossip member believes alive, suspect or dead: the partition view
  gossip: ["members"],
};

/**
 * Watches every node of a cluster. Listeners get each status change and event as they
 * happen; `snapshot()` is what a new page starts from. Stops when the signal aborts
 * (`closed` resolves once every poller and stream has ended).
 */
export class ClusterWatch {
  readonly cluster: ClusterConfig;
  readonly #options: ClusterWatchOptions;
  readonly #nodes = new Map<string, NodeView>();
  readonly #events = new Map<string, EventRecord[]>();
  readonly #listeners = new Set<(u: WatchUpdate) => void>();
  readonly #tasks: Promise<void>[] = [];
  /** Per node: ends the poller's wait, so a lost event stream is checked at once. */
  readonly #wake = new Map<string, () => void>();

  constructor(cluster: ClusterConfig, options: ClusterWatchOptions) {
    this.cluster = cluster;
    this.#options = options;
    this.add(cluster.nodes, { source: cluster.source });
  }

  /**
   * Starts watching more nodes (a demo adds each step's cluster as it starts); names
   * already watched are skipped. `secret` and `token` override the watch's own for them.
   */
  add(
    nodes: readonly NodeEntry[],
    options: { secret?: string; token?: string; source?: string } = {},
  ): void {
    const auth = {
      secret: options.secret ?? this.#options.secret,
      token: options.token ?? this.#options.token,
    };
    for (const n of nodes) {
      if (this.#nodes.has(n.name) || this.#options.signal.aborted) continue;
      const http = typeof n.options.http === "string"
        ? formatAddr(
          parseHttpListen(n.options.http, `${options.source ?? "peers"}: node ${n.name}: http`),
        )
        : undefined;
      const view: NodeView = {
        name: n.name,
        role: n.role ?? "",
        address: `${n.hostname}:${n.port}`,
        http,
        up: false,
        error: "not polled yet",
        at: Date.now(),
        streaming: false,
        counts: {},
      };
      this.#nodes.set(n.name, view);
      this.#events.set(n.name, []);
      this.#publish({ type: "node", node: { ...view } });
      this.#tasks.push(this.#poll(n, auth));
      if (http) this.#tasks.push(this.#stream(n, http, auth));
    }
  }

  /** Resolves when every poller and stream has stopped (after the signal aborts). */
  get closed(): Promise<void> {
    return Promise.allSettled(this.#tasks).then(() => {});
  }

  /** Every node as last seen, and the recent events of each. */
  snapshot(): { cluster: string; nodes: NodeView[]; events: EventRecord[] } {
    const events = [...this.#events.values()].flat().sort((a, b) => a.ts - b.ts);
    return { cluster: this.cluster.cluster, nodes: [...this.#nodes.values()], events };
  }

  /** Adds a listener of updates; returns the function that removes it. */
  subscribe(listener: (u: WatchUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #publish(u: WatchUpdate): void {
    for (const l of this.#listeners) {
      try {
        l(u);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  #update(name: string, change: Partial<NodeView>): void {
    const view = this.#nodes.get(name)!;
    const wasUp = view.up;
    Object.assign(view, change, { at: Date.now() });
    if (!change.up && wasUp) view.downSince = Date.now();
    if (change.up) {
      delete view.error;
      delete view.downSince;
    }
    if (!view.role && typeof view.status?.role === "string") view.role = view.status.role;
    this.#publish({ type: "node", node: { ...view } });
  }

  async #poll(n: NodeEntry, auth: Auth): Promise<void> {
    const { signal } = this.#options;
    const interval = this.#options.intervalMs ?? 1000;
    const view = this.#nodes.get(n.name)!;
    let client: RpcClient | undefined;
    try {
      for (let i = 0; !signal.aborted && i < Number.MAX_SAFE_INTEGER; i++) {
        const t0 = performance.now();
        try {
          let status: Record<string, unknown>;
          if (view.http) {
            status = await this.#httpStatus(view.http, auth);
          } else {
            client ??= await RpcClient.connect({ hostname: n.hostname, port: n.port }, {
              role: "console",
              name: "console",
              secret: auth.secret,
              timeoutMs: Math.min(interval * 2, 3_000),
              signal,
            });
            status = stripReply(
              await client.request({ t: "ctl", cmd: "status", args: [] }, {
                timeoutMs: Math.max(interval * 2, 2_000),
                signal,
              }),
            );
          }
          const extra: Record<string, unknown> = {};
          const role = n.role ?? String(status.role ?? "");
          for (const cmd of Object.hasOwn(EXTRA, role) ? EXTRA[role] : []) {
            client ??= await RpcClient.connect({ hostname: n.hostname, port: n.port }, {
              role: "console",
              name: "console",
              secret: auth.secret,
              timeoutMs: 3_000,
              signal,
            });
            extra[cmd] = stripReply(
              await client.request({ t: "ctl", cmd, args: [] }, { timeoutMs: 3_000, signal }),
            );
          }
          this.#update(n.name, { up: true, status, extra });
        } catch (err) {
          if (signal.aborted) break;
          await client?.close().catch(() => {});
          client = undefined;
          const message = err instanceof Error ? err.message : String(err);
          if (view.up || view.error !== message) {
            this.#update(n.name, { up: false, error: message });
          }
        }
        const early = new AbortController();
        this.#wake.set(n.name, () => early.abort());
        await sleep(
          Math.max(0, interval - (performance.now() - t0)),
          AbortSignal.any([signal, early.signal]),
        );
      }
    } finally {
      await client?.close().catch(() => {});
    }
  }

  async #httpStatus(http: string, auth: Auth): Promise<Record<string, unknown>> {
    const res = await fetch(`http://${http}/status`, {
      headers: headers(auth),
      signal: AbortSignal.any([this.#options.signal, AbortSignal.timeout(3_000)]),
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`http /status: ${res.status}`);
    }
    return await res.json();
  }

  async #stream(n: NodeEntry, http: string, auth: Auth): Promise<void> {
    const { signal } = this.#options;
    const keep = this.#options.keepEvents ?? 400;
    const kept = this.#events.get(n.name)!;
    const backoff = new Backoff(STREAM_BACKOFF);
    // what was seen of this node's events: a reconnect to the same process skips them
    let epoch = "";
    let lastId = 0;
    const view = this.#nodes.get(n.name)!;
    for (let i = 0; !signal.aborted && i < Number.MAX_SAFE_INTEGER; i++) {
      try {
        // which events to ask for depends on the role: unknown until the first status
        if (!view.role) throw new Error("role not known yet");
        const query = `${streamQuery(view.role)}&replay=${keep}` +
          (epoch ? `&epoch=${epoch}&after=${lastId}` : "");
        const res = await fetch(`http://${http}/events?${query}`, {
          headers: headers(auth),
          signal,
        });
        if (!res.ok || !res.body) {
          await res.body?.cancel();
          throw new Error(`http /events: ${res.status}`);
        }
        view.streaming = true;
        backoff.reset();
        for await (const msg of readSse(res.body, signal)) {
          let data: Record<string, unknown>;
          try {
            data = JSON.parse(msg.data);
          } catch {
            continue;
          }
          if (msg.event === "hello") {
            if (data.epoch !== epoch) {
              epoch = String(data.epoch);
              lastId = 0;
            }
            continue;
          }
          if (msg.id !== undefined) lastId = Number(msg.id);
          let event: EventRecord;
          let count = 1;
          if (msg.event === "summary") {
            // the node's summary of a thinned kind: its last event, and how many there were
            if (!data.last || typeof data.last !== "object") continue;
            count = Number(data.count) || 1;
            event = { ...(data.last as EventRecord), thinned: count };
          } else event = data as EventRecord;
          if (typeof event.ev !== "string") continue;
          view.counts[event.ev] = (view.counts[event.ev] ?? 0) + count;
          kept.push(event);
          if (kept.length > keep) kept.splice(0, kept.length - keep);
          this.#publish({ type: "event", event });
        }
      } catch {
        // node down or restarting: try again after a pause
      }
      view.streaming = false;
      if (signal.aborted) break;
      this.#wake.get(n.name)?.(); // the stream ended: is the node still there?
      await sleep(backoff.next(), signal);
    }
  }
}

/**
 * Pacing of event-stream reconnects to a node: 200 ms doubling to 2 s, as before
 * `Backoff`; now with its ±25 % jitter, like every other link.
 */
const STREAM_BACKOFF = { initialMs: 200, maxMs: 2_000 } as const;

interface Auth {
  secret?: string;
  token?: string;
}

function headers(auth: Auth): Record<string, string> {
  return auth.token ? { authorization: `Bearer ${auth.token}` } : {};
}

function stripReply(reply: Record<string, unknown>): Record<string, unknown> {
  const { t: _t, cmd: _c, rid: _r, ...rest } = reply;
  return rest;
}

function formatAddr(a: { hostname: string; port: number }): string {
  return `${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}`;
}

/**
 * A node's HTTP endpoints on Deno's own HTTP server: `/healthz`, `/readyz`, `/status`,
 * `/metrics` and `/events` (Server-Sent Events), with a bearer token when the cluster has
 * a secret. It knows nothing about roles: what it serves comes from a {@linkcode NodeHttpSource}.
 *
 * @module
 */
import type { EventRecord } from "../events/mod.ts";
import { METRICS_CONTENT_TYPE } from "./metrics.ts";
import type { Readiness } from "./readiness.ts";
import {
  type EventSelection,
  EventSelectionError,
  parseEventSelection,
  RouteCache,
  ThinWindow,
} from "./event_selection.ts";
import { eventJson, SSE_BUFFER_BYTES, sseFrame, SseStream } from "./sse.ts";
import { type RecentEvent, RecentEvents } from "./recent.ts";
import { bearerMatches } from "./token.ts";

/** What the endpoints serve. */
export interface NodeHttpSource {
  /** The `ctl status` JSON. */
  status(): Promise<Record<string, unknown>>;
  /** The readiness verdict. */
  readiness(): Promise<Readiness>;
  /** The metrics text (exposition format). */
  metrics(): Promise<string>;
  /**
   * Subscribes to the node's events (with each one's JSON line, when the node already made
   * it); returns the unsubscribe function.
   */
  subscribe(listener: (event: EventRecord, line?: string) => void): () => void;
}

/** Options of {@linkcode NodeHttpServer}. */
export interface NodeHttpServerOptions {
  /** Where to listen. */
  hostname: string;
  /** Port (0: any free one). */
  port: number;
  /** Bearer token required on every path but `/healthz`, when set. */
  token?: string;
  /** At most this many `/events` clients at once (more get 503). @default {64} */
  maxSseClients?: number;
  /** Bytes held for one `/events` client before it is dropped. @default {SSE_BUFFER_BYTES} */
  sseBufferBytes?: number;
  /** Seconds between keep-alive comments on `/events`. @default {15} */
  keepAliveS?: number;
  /** Recent events kept to replay to a new `/events` client that asks (`?replay=N`). @default {256} */
  replayEvents?: number;
  /** Called for each request served (path, status code): metrics. */
  onRequest?: (path: string, code: number) => void;
  /** Called when an `/events` client is dropped for being slow. */
  onSseDrop?: () => void;
  /** Called when the server fails to serve a request (logged by the caller). */
  onError?: (err: unknown) => void;
}

const PATHS = ["/healthz", "/readyz", "/status", "/metrics", "/events"] as const;

function text(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function json(value: unknown, status = 200): Response {
  return new Response(
    JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v), 2) + "\n",
    { status, headers: { "content-type": "application/json; charset=utf-8" } },
  );
}

/**
 * An event as sent to `/events` clients: its id, its name, and its JSON line when the
 * events file made one (then the record itself is not kept: it dies young, as it does
 * without HTTP), else the record, its line made when a client first takes it.
 */
type Kept = RecentEvent;

/** One `/events` client: its stream, what it asked for, its window of thinned events. */
interface Client {
  stream: SseStream;
  selection: EventSelection;
  routes: RouteCache;
  window: ThinWindow<Kept>;
  timer?: ReturnType<typeof setTimeout>;
}

/**
 * The HTTP server of one node. It subscribes to the node's events once: each event is
 * kept for replay, and sent to the `/events` clients that want it with its frame built
 * once for all of them (its JSON line made only if some client takes it whole); events a
 * client thins are only counted until its window ends. `close()` ends every `/events`
 * stream, then shuts the server down; it is safe to call twice.
 */
export class NodeHttpServer implements AsyncDisposable {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #source: NodeHttpSource;
  readonly #options: NodeHttpServerOptions;
  readonly #clients = new Set<Client>();
  readonly #epoch = String(Date.now());
  /** Recent events, for replay (held as bytes: see {@linkcode RecentEvents}). */
  readonly #recent: RecentEvents;
  readonly #unsubscribe: () => void;
  #seq = 0;
  #closed: Promise<void> | undefined;

  constructor(source: NodeHttpSource, options: NodeHttpServerOptions) {
    this.#source = source;
    this.#options = options;
    this.#recent = new RecentEvents(Math.max(0, options.replayEvents ?? 256));
    this.#unsubscribe = source.subscribe((event, line) => this.#onEvent(event, line));
    this.#server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: () => {},
      onError: (err) => {
        options.onError?.(err);
        return text("internal error\n", 500);
      },
    }, (request) => this.#handle(request));
  }

  #onEvent(event: EventRecord, line?: string): void {
    const id = ++this.#seq;
    this.#recent.add(id, event, line);
    // nobody streaming, or nobody wanting this one: nothing allocated per event
    if (this.#clients.size === 0) return;
    let kept: Kept | undefined;
    let frame: string | undefined;
    for (const c of this.#clients) {
      const route = c.routes.route(event.ev);
      if (route === "skip") continue;
      kept ??= line === undefined ? { id, ev: event.ev, event } : { id, ev: event.ev, line };
      if (route === "thin" && !this.#thin(c, kept)) continue;
      frame ??= sseFrame(lineOf(kept), { id: kept.id });
      c.stream.write(frame);
    }
  }

  /**
   * Counts `kept` in the client's window, which ends (its summaries sent) `thinMs` after
   * its first event; true when it is one of the first `thinKeep` of its name, to go out whole.
   */
  #thin(c: Client, kept: Kept): boolean {
    c.timer ??= setTimeout(() => {
      c.timer = undefined;
      this.#sendWindow(c);
    }, c.selection.thinMs);
    return c.window.add(kept.ev, kept.id, kept);
  }

  #sendWindow(c: Client): void {
    for (const s of c.window.take()) {
      const data = `{"ev":${JSON.stringify(s.ev)},"count":${s.count},"last":${lineOf(s.last)}}`;
      if (!c.stream.write(sseFrame(data, { event: "summary", id: s.id }))) return;
    }
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /** `host:port` as bound. */
  get address(): string {
    const a = this.#server.addr;
    return `${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}`;
  }

  /** The number of `/events` clients. */
  get sseClients(): number {
    return this.#clients.size;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    const response = await this.#route(request, path, url);
    this.#options.onRequest?.(
      (PATHS as readonly string[]).includes(path) ? path : "other",
      response.status,
    );
    return response;
  }

  async #route(request: Request, path: string, url: URL): Promise<Response> {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text("method not allowed: use GET\n", 405, { allow: "GET, HEAD" });
    }
    if (path === "/healthz") return text("ok\n");
    if (!(PATHS as readonly string[]).includes(path)) {
      return text(`not found: ${path.slice(0, 200)}; paths are ${PATHS.join(", ")}\n`, 404);
    }
    if (this.#options.token !== undefined && !bearerMatches(request, this.#options.token)) {
      return text("unauthorized: send Authorization: Bearer <peerd http-token>\n", 401, {
        "www-authenticate": 'Bearer realm="peerd"',
      });
    }
    switch (path) {
      case "/readyz": {
        const r = await this.#source.readiness();
        return r.ready ? text("ready\n") : text(`not ready: ${r.reason ?? "unknown"}\n`, 503);
      }
      case "/status":
        try {
          return json(await this.#source.status());
        } catch (err) {
          return json({ error: err instanceof Error ? err.message : String(err) }, 503);
        }
      case "/metrics":
        return new Response(await this.#source.metrics(), {
          headers: { "content-type": METRICS_CONTENT_TYPE },
        });
      default:
        return this.#events(url);
    }
  }

  #events(url: URL): Response {
    if (this.#closed) return text("shutting down\n", 503);
    let selection: EventSelection;
    try {
      selection = parseEventSelection(url.searchParams);
    } catch (err) {
      if (err instanceof EventSelectionError) return text(`bad request: ${err.message}\n`, 400);
      throw err;
    }
    if (this.#clients.size >= (this.#options.maxSseClients ?? 64)) {
      return text("too many /events clients\n", 503, { "retry-after": "5" });
    }
    const replay = Math.max(0, Math.min(Number(url.searchParams.get("replay")) || 0, 100_000));
    // ids count this process's events; after=ID with this process's epoch skips those seen
    const after = url.searchParams.get("epoch") === this.#epoch
      ? Number(url.searchParams.get("after")) || 0
      : 0;
    const timer: { keepAlive?: ReturnType<typeof setInterval> } = {};
    const routes = new RouteCache(selection);
    const client: Client = {
      selection,
      routes,
      window: new ThinWindow<Kept>(selection.thinKeep),
      stream: new SseStream({
        maxBufferBytes: this.#options.sseBufferBytes ?? SSE_BUFFER_BYTES,
        onClose: (why) => {
          this.#clients.delete(client);
          clearTimeout(client.timer);
          clearInterval(timer.keepAlive);
          if (why === "dropped") this.#options.onSseDrop?.();
        },
      }),
    };
    const { stream } = client;
    stream.send({ epoch: this.#epoch, seq: this.#seq }, { event: "hello" });
    if (replay > 0) {
      for (const r of this.#recent.tail(replay)) {
        const route = routes.route(r.ev);
        if (r.id <= after || route === "skip") continue;
        if (route === "thin" && !client.window.add(r.ev, r.id, r)) continue;
        stream.write(sseFrame(lineOf(r), { id: r.id }));
      }
      this.#sendWindow(client);
    }
    if (!stream.closed) {
      this.#clients.add(client);
      timer.keepAlive = setInterval(
        () => stream.comment("keep-alive"),
        (this.#options.keepAliveS ?? 15) * 1000,
      );
    }
    return new Response(stream.body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every `/events` stream and stops the server. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#unsubscribe();
      for (const c of [...this.#clients]) c.stream.abort();
      await this.#server.shutdown();
    })();
    return this.#closed;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The event's JSON line: the one the events file made, or made now and kept for the next client. */
function lineOf(kept: Kept): string {
  if (kept.line === undefined) {
    kept.line = eventJson(kept.event);
    kept.event = undefined;
  }
  return kept.line;
}

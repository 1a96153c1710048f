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
import { SSE_BUFFER_BYTES, SseStream } from "./sse.ts";
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
 * The HTTP server of one node. `close()` ends every `/events` stream, then shuts the
 * server down; it is safe to call twice.
 */
export class NodeHttpServer implements AsyncDisposable {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #source: NodeHttpSource;
  readonly #options: NodeHttpServerOptions;
  readonly #streams = new Set<SseStream>();
  readonly #epoch = String(Date.now());
  readonly #recent: Array<{ id: number; event: EventRecord; line?: string }> = [];
  readonly #unsubscribe: () => void;
  #seq = 0;
  #closed: Promise<void> | undefined;

  constructor(source: NodeHttpSource, options: NodeHttpServerOptions) {
    this.#source = source;
    this.#options = options;
    const keep = options.replayEvents ?? 256;
    this.#unsubscribe = source.subscribe((event, line) => {
      this.#recent.push({ id: ++this.#seq, event, line });
      if (this.#recent.length > keep) this.#recent.shift();
    });
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
    return this.#streams.size;
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
    if (this.#streams.size >= (this.#options.maxSseClients ?? 64)) {
      return text("too many /events clients\n", 503, { "retry-after": "5" });
    }
    const prefix = url.searchParams.get("ev") ?? "";
    const replay = Math.max(0, Math.min(Number(url.searchParams.get("replay")) || 0, 100_000));
    // ids count this process's events; after=ID with this process's epoch skips those seen
    const after = url.searchParams.get("epoch") === this.#epoch
      ? Number(url.searchParams.get("after")) || 0
      : 0;
    let unsubscribe = () => {};
    const timer: { keepAlive?: ReturnType<typeof setInterval> } = {};
    const stream = new SseStream({
      maxBufferBytes: this.#options.sseBufferBytes ?? SSE_BUFFER_BYTES,
      onClose: (why) => {
        unsubscribe();
        clearInterval(timer.keepAlive);
        this.#streams.delete(stream);
        if (why === "dropped") this.#options.onSseDrop?.();
      },
    });
    this.#streams.add(stream);
    stream.send({ epoch: this.#epoch, seq: this.#seq }, { event: "hello" });
    const wanted = (e: EventRecord) => !prefix || e.ev.startsWith(prefix);
    if (replay > 0) {
      for (const r of this.#recent.slice(-replay)) {
        if (r.id > after && wanted(r.event)) stream.send(r.line ?? r.event, { id: r.id });
      }
    }
    let id = this.#seq;
    unsubscribe = this.#source.subscribe((event, line) => {
      id++;
      if (wanted(event)) stream.send(line ?? event, { id });
    });
    if (!stream.closed) {
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
      for (const s of [...this.#streams]) s.abort();
      await this.#server.shutdown();
    })();
    return this.#closed;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

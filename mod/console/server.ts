/**
 * The console's web server: the page and its scripts (embedded in the binary as text
 * imports), `/api/snapshot` (every node as last seen, recent events) and `/api/stream`
 * (Server-Sent Events: a snapshot, then every node change and event as it happens, a
 * bounded buffer per browser).
 *
 * @module
 */
import { SseStream } from "../http/mod.ts";
import type { ClusterWatch } from "./watch.ts";
import PAGE from "./assets/page.html" with { type: "text" };
import APP from "./assets/app.js" with { type: "text" };
import SPACETIME from "./assets/spacetime.js" with { type: "text" };
import NETWORK from "./assets/network.js" with { type: "text" };
import STYLE from "./assets/style.css" with { type: "text" };

const ASSETS: Record<string, [string, string]> = {
  "/": [PAGE, "text/html; charset=utf-8"],
  "/index.html": [PAGE, "text/html; charset=utf-8"],
  "/app.js": [APP, "text/javascript; charset=utf-8"],
  "/spacetime.js": [SPACETIME, "text/javascript; charset=utf-8"],
  "/network.js": [NETWORK, "text/javascript; charset=utf-8"],
  "/style.css": [STYLE, "text/css; charset=utf-8"],
};

/** Options of {@linkcode ConsoleServer}. */
export interface ConsoleServerOptions {
  /** Host to listen on. @default {"127.0.0.1"} */
  hostname?: string;
  /** Port (0: any free one). */
  port: number;
  /** At most this many browsers at once. @default {32} */
  maxClients?: number;
}

/** Serves the console of one watched cluster; `close()` ends the streams and the server. */
export class ConsoleServer implements AsyncDisposable {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #watch: ClusterWatch;
  readonly #streams = new Set<SseStream>();
  readonly #maxClients: number;
  #closed: Promise<void> | undefined;

  constructor(watch: ClusterWatch, options: ConsoleServerOptions) {
    this.#watch = watch;
    this.#maxClients = options.maxClients ?? 32;
    this.#server = Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port,
      onListen: () => {},
    }, (req) => this.#handle(req));
  }

  /** The page's URL. */
  get url(): string {
    const a = this.#server.addr;
    return `http://${a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname}:${a.port}/`;
  }

  #handle(req: Request): Response {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    }
    const asset = Object.hasOwn(ASSETS, path) ? ASSETS[path] : undefined;
    if (asset) {
      return new Response(asset[0], {
        headers: { "content-type": asset[1], "cache-control": "no-cache" },
      });
    }
    if (path === "/api/snapshot") {
      return new Response(JSON.stringify(this.#watch.snapshot()), {
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    }
    if (path === "/api/stream") return this.#stream();
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    return new Response(`not found: ${path.slice(0, 200)}\n`, {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }

  #stream(): Response {
    if (this.#closed || this.#streams.size >= this.#maxClients) {
      return new Response("too many pages open\n", { status: 503 });
    }
    let unsubscribe = () => {};
    const timer: { keepAlive?: ReturnType<typeof setInterval> } = {};
    const stream = new SseStream({
      maxBufferBytes: 4 * 1024 * 1024,
      onClose: () => {
        unsubscribe();
        clearInterval(timer.keepAlive);
        this.#streams.delete(stream);
      },
    });
    this.#streams.add(stream);
    stream.send(this.#watch.snapshot(), { event: "snapshot" });
    unsubscribe = this.#watch.subscribe((u) => {
      stream.send(u.type === "node" ? u.node : u.event, { event: u.type });
    });
    if (!stream.closed) timer.keepAlive = setInterval(() => stream.comment("keep-alive"), 15_000);
    return new Response(stream.body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    });
  }

  /** Ends every page's stream and stops the server. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
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

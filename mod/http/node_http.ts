/**
 * HTTP on a node (`--http HOST:PORT`): wires a {@linkcode NodeHttpServer} to a running
 * role — its events (metrics, `/events`), its status (given by the node server through
 * `RoleContext.exposeStatus`, or else asked over the node's own port with `ctl status`),
 * its readiness rule, and the token derived from the cluster secret.
 *
 * @module
 */
import type { HostPort } from "../config/mod.ts";
import { ctlRequest } from "../ctl/mod.ts";
import type { EventRecord } from "../events/mod.ts";
import type { RoleContext } from "../process/mod.ts";
import { MetricRegistry } from "./metrics.ts";
import { processMetrics } from "./process_metrics.ts";
import { type Readiness, type ReadinessRule, readinessRule } from "./readiness.ts";
import { roleMetrics } from "./role_metrics.ts";
import { NodeHttpServer } from "./server.ts";
import { httpToken } from "./token.ts";

/** Options of {@linkcode startNodeHttp}. */
export interface NodeHttpOptions {
  /** Where to listen. */
  listen: HostPort;
  /** The role's own readiness rule (else the built-in one for its name). */
  readiness?: ReadinessRule;
  /** The version written in `peerd_info`. */
  version?: string;
  /** Bytes held for one `/events` client before it is dropped. */
  sseBufferBytes?: number;
}

/** A node's running HTTP endpoints. */
export interface NodeHttp extends AsyncDisposable {
  /** `host:port` as bound. */
  readonly address: string;
  /** Gives the HTTP side the node's status (the node server calls it once). */
  exposeStatus(status: () => Promise<Record<string, unknown>>): void;
  /** Stops serving. */
  close(): Promise<void>;
}

const STATUS_TIMEOUT_MS = 3_000;

/** Starts the HTTP endpoints of the node of `ctx`. */
export async function startNodeHttp(ctx: RoleContext, options: NodeHttpOptions): Promise<NodeHttp> {
  const started = Date.now();
  const registry = new MetricRegistry();
  const info = registry.gauge("peerd_info", "1, labelled with the node's role, name and version");
  const readyGauge = registry.gauge("peerd_ready", "1 while the node is ready for its role");
  const uptime = registry.gauge("peerd_uptime_seconds", "seconds since the node started");
  const connections = registry.gauge("peerd_connections", "open connections on the node's port");
  const statusUp = registry.gauge("peerd_status_up", "1 when the node's status answered");
  const requests = registry.counter("peerd_http_requests_total", "HTTP requests by path and code");
  const sseClients = registry.gauge("peerd_http_sse_clients", "open /events streams");
  const sseDropped = registry.counter(
    "peerd_http_sse_dropped_total",
    "slow /events clients dropped",
  );
  const refreshProcess = processMetrics(registry);
  const role = roleMetrics(registry, ctx.role);
  const rule = options.readiness ?? readinessRule(ctx.role);

  let provided: (() => Promise<Record<string, unknown>>) | undefined;
  let readyEvent: EventRecord | undefined;
  const unsubscribe = ctx.events.subscribe((e) => {
    if (e.ev === "ready" && !readyEvent) readyEvent = e;
    role.event(e);
  });

  const base = () => ({
    role: ctx.role,
    name: ctx.name,
    uptime_s: Math.round((Date.now() - started) / 1000),
  });
  const nativeAddress = (): HostPort | undefined => {
    const listen = typeof readyEvent?.listen === "string" ? readyEvent.listen : undefined;
    const m = listen ? /^(.*):(\d+)$/.exec(listen) : null;
    if (m) return { hostname: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) };
    return readyEvent && ctx.listen.port !== 0 ? ctx.listen : undefined;
  };
  const status = async (): Promise<Record<string, unknown>> => {
    if (provided) return { ...(await provided()) };
    const address = nativeAddress();
    if (!address) return base();
    const reply = await ctlRequest(address, "status", [], {
      secret: ctx.secret,
      timeoutMs: STATUS_TIMEOUT_MS,
      signal: ctx.signal,
    });
    const { t: _t, cmd: _cmd, rid: _rid, ...rest } = reply;
    return rest;
  };
  const readiness = async (): Promise<Readiness> => {
    if (!readyEvent) return { ready: false, reason: "starting (no ready event yet)" };
    let s: Record<string, unknown>;
    try {
      s = await status();
    } catch (err) {
      return {
        ready: false,
        reason: `status: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    return rule ? rule(s) : { ready: true };
  };

  const token = ctx.secret ? await httpToken(ctx.secret) : undefined;
  const server = new NodeHttpServer({
    status: async () => {
      try {
        return await status();
      } catch (err) {
        throw new Error(`Cannot get status: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    readiness,
    metrics: async () => {
      info.set({ role: ctx.role, name: ctx.name, version: options.version ?? "" }, 1);
      let s: Record<string, unknown> | undefined;
      try {
        s = await status();
      } catch {
        s = undefined;
      }
      statusUp.set({}, s !== undefined);
      role.status(s ?? {});
      if (s) connections.set({}, s.connections);
      const r = !readyEvent ? false : s === undefined ? false : rule ? rule(s).ready : true;
      readyGauge.set({}, r);
      uptime.set({}, Math.round((Date.now() - started) / 100) / 10);
      sseClients.set({}, server.sseClients);
      refreshProcess();
      return registry.render();
    },
    subscribe: (listener) => ctx.events.subscribe(listener),
  }, {
    hostname: options.listen.hostname,
    port: options.listen.port,
    token,
    sseBufferBytes: options.sseBufferBytes,
    onRequest: (path, code) => requests.inc({ path, code: String(code) }),
    onSseDrop: () => {
      sseDropped.inc();
      ctx.log.warn("http: a slow /events client was dropped");
    },
    onError: (err) => ctx.log.warn(`http: ${err instanceof Error ? err.message : String(err)}`),
  });
  ctx.log.info(`http on ${server.address}`);
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      unsubscribe();
      await server.close();
    })();
  return {
    address: server.address,
    exposeStatus: (fn) => {
      provided ??= fn;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

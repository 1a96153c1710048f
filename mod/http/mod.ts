/**
 * HTTP on a node (`--http HOST:PORT`): `/healthz`, `/readyz`, `/status`, `/metrics`
 * (Prometheus text format, per-role figures from events and status), `/events`
 * (Server-Sent Events, bounded per client), bearer token from the cluster secret.
 *
 * ```ts
 * const http = await startNodeHttp(ctx, { listen: parseHttpListen("127.0.0.1:9101") });
 * // GET http://127.0.0.1:9101/metrics
 * await http.close();
 * ```
 *
 * @module
 */
export {
  Counter,
  Gauge,
  Histogram,
  type Labels,
  MetricRegistry,
  METRICS_CONTENT_TYPE,
  SECONDS_BUCKETS,
} from "./metrics.ts";
export { type RoleMetrics, roleMetrics, ROLES_WITH_METRICS } from "./role_metrics.ts";
export { processMetrics } from "./process_metrics.ts";
export { type Readiness, type ReadinessRule, readinessRule } from "./readiness.ts";
export {
  type EventRoute,
  type EventSelection,
  EventSelectionError,
  parseEventSelection,
  RouteCache,
  selects,
  THIN_DEFAULT_MS,
  THIN_KEEP_MAX,
  THIN_MS_RANGE,
  thins,
  type ThinSummary,
  ThinWindow,
} from "./event_selection.ts";
export {
  eventJson,
  readSse,
  SSE_BUFFER_BYTES,
  SSE_FLUSH_MS,
  sseFrame,
  SseStream,
  type SseStreamOptions,
} from "./sse.ts";
export { RECENT_SLOT_BYTES, type RecentEvent, RecentEvents } from "./recent.ts";
export { bearerMatches, HTTP_TOKEN_CONTEXT, httpToken } from "./token.ts";
export { NodeHttpServer, type NodeHttpServerOptions, type NodeHttpSource } from "./server.ts";
export { type NodeHttp, type NodeHttpOptions, startNodeHttp } from "./node_http.ts";
export { HTTP_DEFAULT_HOST, parseHttpListen } from "./listen.ts";
export { httpTokenCommand } from "./command.ts";

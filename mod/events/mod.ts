/**
 * Events (JSON Lines, `--events`) and stderr logging shared by every role.
 *
 * ```ts
 * const events = new EventSink({ node: "n1", role: "ring", path: "-" });
 * events.emit("ready", { port: 7101 });
 * ```
 *
 * @module
 */
export {
  type EventListener,
  type EventRecord,
  EventSink,
  type EventSinkOptions,
  isLogLevel,
  Logger,
  type LogLevel,
} from "./sink.ts";
export { EventLog } from "./event_log.ts";

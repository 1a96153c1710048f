/**
 * The JSON Lines event sink (`--events FILE|-`) and the stderr logger.
 *
 * @module
 */

/** Log and event levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Whether `s` names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return s in LEVEL_RANK;
}

/** One event as written: `{ts, node, role, ev, ...fields}`. */
export interface EventRecord {
  /** Wall-clock milliseconds. */
  ts: number;
  /** Node name. */
  node: string;
  /** Role of the node. */
  role: string;
  /** Dotted event name. */
  ev: string;
  [field: string]: unknown;
}

/** Options of {@linkcode EventSink}. */
export interface EventSinkOptions {
  /** Node name written in every event. */
  node: string;
  /** Role written in every event. */
  role: string;
  /** File to append to, `-` for stdout, undefined for none. */
  path?: string;
  /** Events at `debug` level are written only when this is `debug`. @default {"info"} */
  level?: LogLevel;
  /** Also receives every event (tests, in-process observers). */
  listener?: EventListener;
}

/**
 * An in-process observer of events; `line` is the event's JSON line when the sink writes
 * one (so an observer that sends JSON on need not build it again).
 */
export type EventListener = (event: EventRecord, line?: string) => void;

const encoder = new TextEncoder();

/**
 * Writes events as JSON Lines. Events emitted in one tick are written together, with a
 * synchronous write at the end of that tick (a microtask), so an event is on disk before
 * the process does any further I/O. `close()` writes what is left; it is safe to call twice.
 */
export class EventSink {
  readonly node: string;
  readonly role: string;
  #file: Deno.FsFile | undefined;
  #stdout: boolean;
  #debug: boolean;
  #lines: string[] = [];
  #scheduled = false;
  #listeners: EventListener[] = [];
  #closed = false;
  #holds = 0;
  #closing = false;

  constructor(options: EventSinkOptions) {
    this.node = options.node;
    this.role = options.role;
    this.#stdout = options.path === "-";
    this.#debug = options.level === "debug";
    if (options.path && options.path !== "-") {
      this.#file = Deno.openSync(options.path, { append: true, create: true });
    }
    if (options.listener) this.#listeners.push(options.listener);
  }

  /** Adds an in-process observer of every event; returns a function that removes it. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** Whether an emitted event goes anywhere (hot paths may skip building their fields). */
  get active(): boolean {
    return this.#listeners.length > 0 || (!this.#closed && (!!this.#file || this.#stdout));
  }

  /** Emits event `ev` with `fields`. */
  emit(ev: string, fields: Record<string, unknown> = {}): void {
    // nobody listening: no record to build (hot paths emit per message)
    if (!this.active) return;
    const ts = Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
    const event: EventRecord = { ts, node: this.node, role: this.role, ev, ...fields };
    const writes = !this.#closed && (!!this.#file || this.#stdout);
    const line = writes
      ? (plainFields(fields) ? JSON.stringify(event) : JSON.stringify(event, jsonReplacer))
      : undefined;
    for (const listener of this.#listeners) listener(event, line);
    if (line === undefined) return;
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /**
   * Holds writing events (to the file or stdout; listeners still get them at once) until
   * `until` settles: a node whose listener binds asynchronously says `ready` only once it
   * accepts connections.
   */
  holdUntil(until: Promise<unknown>): void {
    this.#holds++;
    const release = () => {
      this.#holds--;
      if (this.#holds === 0 && this.#lines.length > 0) this.#flush();
    };
    until.then(release, release);
  }

  /** Emits `ev` only when the level is `debug`. */
  debug(ev: string, fields: Record<string, unknown> = {}): void {
    if (this.#debug) this.emit(ev, fields);
  }

  /** Whether debug-level events are written. */
  get debugEnabled(): boolean {
    return this.#debug;
  }

  /** Writes pending events and closes the file. */
  close(): void {
    if (this.#closed) return;
    this.#closing = true;
    this.#flush();
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#lines.length === 0 || (this.#holds > 0 && !this.#closing)) return;
    const bytes = encoder.encode(this.#lines.join("\n") + "\n");
    this.#lines = [];
    const target = this.#file ?? (this.#stdout ? Deno.stdout : undefined);
    if (!target) return;
    let off = 0;
    while (off < bytes.length) off += target.writeSync(bytes.subarray(off));
  }
}

/**
 * Whether every field is a string, number, boolean, null or undefined: then `jsonReplacer`
 * changes nothing, and `JSON.stringify` without a replacer (several times faster: events are
 * emitted per message on hot paths) writes the same line.
 */
function plainFields(fields: Record<string, unknown>): boolean {
  for (const key in fields) {
    const v = fields[key];
    const t = typeof v;
    if (t !== "string" && t !== "number" && t !== "boolean" && t !== "undefined" && v !== null) {
      return false;
    }
  }
  return true;
}

/** JSON replacer that writes bigint as numbers and bytes as base64-free lengths. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array) return { bytes: value.length };
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/**
 * Human log lines on stderr: `time LEVEL node role: message`. Logs never go to stdout,
 * which is for results.
 */
export class Logger {
  #rank: number;
  #prefix: string;

  constructor(options: { node: string; role: string; level?: LogLevel }) {
    this.#rank = LEVEL_RANK[options.level ?? "info"];
    this.#prefix = `${options.node || "-"} ${options.role}`;
  }

  /** Debug detail, hidden unless `--log-level debug`. */
  debug(message: string): void {
    this.#write("debug", message);
  }

  /** Normal operation. */
  info(message: string): void {
    this.#write("info", message);
  }

  /** Something unexpected that the node handled. */
  warn(message: string): void {
    this.#write("warn", message);
  }

  /** Something failed. */
  error(message: string): void {
    this.#write("error", message);
  }

  #write(level: LogLevel, message: string): void {
    if (LEVEL_RANK[level] < this.#rank) return;
    const line = `${new Date().toISOString()} ${
      level.toUpperCase().padEnd(5)
    } ${this.#prefix}: ${message}\n`;
    try {
      Deno.stderr.writeSync(encoder.encode(line));
    } catch {
      // stderr gone: nothing to tell
    }
  }
}

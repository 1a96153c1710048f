/**
 * Server-Sent Events streams with a bounded buffer each: what a client has not taken yet
 * is held up to a byte limit; past it the client is dropped (its stream errors, its
 * connection closes), so a slow client never slows the node or grows its memory.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Default bytes held for one client before it is dropped. @default {1048576} */
export const SSE_BUFFER_BYTES = 1024 * 1024;

/** Default interval within which events are sent together. */
export const SSE_FLUSH_MS = 25;

/** Pending bytes that are sent at once, whatever the interval. */
const FLUSH_BYTES = 64 * 1024;

/** Options of {@linkcode SseStream}. */
export interface SseStreamOptions {
  /** Bytes held for the client before it is dropped. @default {SSE_BUFFER_BYTES} */
  maxBufferBytes?: number;
  /**
   * Events sent within this many ms go out as one chunk (0: at the end of the tick). A
   * node writing every event on its own would add event-loop turns to its protocol's
   * critical path. @default {SSE_FLUSH_MS}
   */
  flushMs?: number;
  /** Called once when the stream ends (client gone, dropped, or closed). */
  onClose?: (why: "dropped" | "cancelled" | "closed") => void;
}

/**
 * One client's event stream: `send` never blocks; `body` is the response body. Events
 * sent within `flushMs` go out as one chunk (one write).
 */
export class SseStream {
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #done = false;
  #pending: string[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushMs: number;
  #onClose?: (why: "dropped" | "cancelled" | "closed") => void;

  constructor(options: SseStreamOptions = {}) {
    this.#onClose = options.onClose;
    this.#flushMs = options.flushMs ?? SSE_FLUSH_MS;
    const max = options.maxBufferBytes ?? SSE_BUFFER_BYTES;
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        cancel: () => this.#end("cancelled"),
      },
      { highWaterMark: max, size: (chunk) => chunk.byteLength },
    );
  }

  /** Whether the stream has ended. */
  get closed(): boolean {
    return this.#done;
  }

  /** Queues one event (`data` is sent as JSON unless a string); drops a client that is behind. */
  send(data: unknown, options: { event?: string; id?: number } = {}): boolean {
    if (this.#done) return false;
    return this.#enqueue(sseFrame(data, options));
  }

  /**
   * Queues a frame made by {@linkcode sseFrame} (a server sending one event to many
   * clients builds its frame once); drops a client that is behind.
   */
  write(frame: string): boolean {
    return this.#done ? false : this.#enqueue(frame);
  }

  /** Queues an SSE comment (a keep-alive). */
  comment(text: string): boolean {
    return this.#done ? false : this.#enqueue(`: ${text.replace(/\n/g, " ")}\n\n`);
  }

  /** Ends the stream normally (what is queued is still delivered). */
  close(): void {
    if (this.#done) return;
    this.#flush();
    if (this.#done) return;
    try {
      this.#controller.close();
    } catch {
      // already errored
    }
    this.#end("closed");
  }

  /** Ends the stream at once, dropping what is queued (server shutdown). */
  abort(): void {
    if (this.#done) return;
    clearTimeout(this.#timer);
    this.#pending = [];
    try {
      this.#controller.error(new Error("server closing"));
    } catch {
      // gone
    }
    this.#end("closed");
  }

  #enqueue(frame: string): boolean {
    // what the client has not taken yet, plus this tick's: past the limit, it is dropped
    if ((this.#controller.desiredSize ?? 0) - this.#pendingBytes <= 0) {
      this.#drop();
      return false;
    }
    this.#pending.push(frame);
    this.#pendingBytes += frame.length;
    if (this.#pendingBytes >= FLUSH_BYTES) {
      this.#flush();
      return !this.#done;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      if (this.#flushMs > 0) this.#timer = setTimeout(() => this.#flush(), this.#flushMs);
      else queueMicrotask(() => this.#flush());
    }
    return true;
  }

  #flush(): void {
    this.#scheduled = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#done || this.#pending.length === 0) return;
    const bytes = encoder.encode(
      this.#pending.length === 1 ? this.#pending[0] : this.#pending.join(""),
    );
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#controller.enqueue(bytes);
  }

  #drop(): void {
    clearTimeout(this.#timer);
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      this.#controller.error(new Error("Cannot keep up: SSE client dropped"));
    } catch {
      // gone
    }
    this.#end("dropped");
  }

  #end(why: "dropped" | "cancelled" | "closed"): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#pending = [];
    this.#onClose?.(why);
  }
}

/**
 * One SSE frame: `event:` and `id:` lines when given, `data` (JSON unless a string) on as
 * many `data:` lines as it has lines, and the blank line that ends it.
 */
export function sseFrame(data: unknown, options: { event?: string; id?: number } = {}): string {
  const text = typeof data === "string" ? data : eventJson(data);
  let frame = "";
  if (options.event) frame += `event: ${options.event}\n`;
  if (options.id !== undefined) frame += `id: ${options.id}\n`;
  if (!text.includes("\n")) frame += `data: ${text}\n`;
  else for (const line of text.split("\n")) frame += `data: ${line}\n`;
  return frame + "\n";
}

/**
 * JSON of an event as the events file writes it (bigint as a number, bytes as their
 * length, maps and sets as objects and arrays); the replacer, which is slow, only when a
 * top-level field needs it (events are flat).
 */
export function eventJson(data: unknown): string {
  if (data && typeof data === "object" && !Array.isArray(data)) {
    for (const k in data) {
      const v = (data as Record<string, unknown>)[k];
      if (
        typeof v === "bigint" || v instanceof Uint8Array || v instanceof Map || v instanceof Set
      ) {
        return JSON.stringify(data, jsonReplacer);
      }
    }
    try {
      return JSON.stringify(data);
    } catch {
      // a bigint deeper down
    }
  }
  return JSON.stringify(data, jsonReplacer);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array) return { bytes: value.length };
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/**
 * Reads an SSE response body: yields `{event, id, data}` per event (a parser for clients
 * and tests). When `signal` aborts, the body is cancelled and the loop ends.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<{ event: string; id?: string; data: string }> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  let buffer = "";
  try {
    for (;;) {
      if (signal?.aborted) return;
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      let end: number;
      while ((end = buffer.indexOf("\n\n", start)) >= 0) {
        const block = buffer.slice(start, end);
        start = end + 2;
        let event = "message";
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = value;
          else if (field === "id") id = value;
          else if (field === "data") data.push(value);
        }
        if (data.length) yield { event, id, data: data.join("\n") };
      }
      buffer = buffer.slice(start);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

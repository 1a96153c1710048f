/**
 * Reading a node's JSON Lines events file as it grows: only the new bytes each time, torn
 * last lines (a killed process) kept until completed or skipped.
 *
 * @module
 */
import type { EventRecord } from "./sink.ts";

const decoder = new TextDecoder();

/** The events of one file, read incrementally; `all()` returns every event so far. */
export class EventLog {
  /** The file. */
  readonly path: string;
  #events: EventRecord[] = [];
  #offset = 0;
  #partial = "";

  constructor(path: string) {
    this.path = path;
  }

  /** Every event written so far (reads what is new). */
  all(): EventRecord[] {
    let text = "";
    try {
      const file = Deno.openSync(this.path, { read: true });
      try {
        file.seekSync(this.#offset, Deno.SeekMode.Start);
        const buf = new Uint8Array(256 * 1024);
        const parts: string[] = [];
        for (let i = 0; i < 100_000; i++) {
          const n = file.readSync(buf);
          if (n === null || n === 0) break;
          parts.push(decoder.decode(buf.subarray(0, n), { stream: true }));
          this.#offset += n;
        }
        text = parts.join("") + decoder.decode();
      } finally {
        file.close();
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (text) {
      const lines = (this.#partial + text).split("\n");
      this.#partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line) continue;
        try {
          this.#events.push(JSON.parse(line));
        } catch {
          // a line torn by a kill -9, followed by the next run's lines
        }
      }
    }
    return this.#events;
  }
}

/**
 * `peerd --role agency`: validates its bets file, uploads it in batches of at most 8 KiB
 * frames with several in flight, resumes after a server restart (batches carry their
 * sequence number, so resending is safe), says done, then waits for its winners and
 * prints them.
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import { ConfigError } from "../config/mod.ts";
import { defineRole, linkSecurity, type RoleContext, UsageError } from "../process/mod.ts";
import {
  Backoff,
  FrameEncoder,
  heartbeat,
  RemoteError,
  retryConnect,
  RpcClient,
} from "../wire/mod.ts";
import { betLineProblem, forEachCsvLine, type InvalidLine } from "./bet.ts";

/** Largest frame an agency sends, as the course requires. */
export const MAX_BATCH_FRAME_BYTES = 8 * 1024;

const utf8 = new TextEncoder();

/** UTF-8 byte length of `s[start, end)`, without encoding it. */
function utf8Length(s: string, start: number, end: number): number {
  let n = end - start;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return n;
}

/** A batch as an agency sends it: CSV lines of valid bets, and how many. */
export interface CsvBatch {
  csv: string;
  count: number;
}

/**
 * Validates an agency file and cuts its valid lines into batches whose `bets` frame
 * (`{t, agency, seq, csv, rid}`, header included) stays within `maxFrameBytes` and holds at
 * most `maxCount` bets. A batch is a slice of `text` (no copy) of consecutive valid lines;
 * a blank or invalid line ends the batch before it.
 */
export function splitCsvBatches(
  agency: number,
  text: string,
  maxFrameBytes: number,
  maxCount: number,
): { batches: CsvBatch[]; invalid: InvalidLine[]; valid: number } {
  const encoder = new FrameEncoder();
  // str16 header for the csv (3 bytes) instead of the empty fixstr (1), and some slack
  const overhead =
    encoder.encode({ t: "bets", agency, seq: 2 ** 31, csv: "", rid: 2 ** 31 }).length + 2 + 8;
  const batches: CsvBatch[] = [];
  const invalid: InvalidLine[] = [];
  let valid = 0;
  let batchStart = -1;
  let batchEnd = 0;
  let count = 0;
  let size = overhead;
  let lastLine = 0;
  const close = () => {
    if (count > 0) batches.push({ csv: text.slice(batchStart, batchEnd), count });
    batchStart = -1;
    count = 0;
    size = overhead;
  };
  forEachCsvLine(text, (lineNo, start, end) => {
    const problem = betLineProblem(text, start, end);
    if (problem !== undefined) {
      invalid.push({ line: lineNo, reason: problem });
      close();
      lastLine = lineNo;
      return;
    }
    if (lineNo !== lastLine + 1) close(); // a blank line lies between
    lastLine = lineNo;
    valid++;
    const bytes = utf8Length(text, start, end) + 1;
    if (count > 0 && (size + bytes > maxFrameBytes || count >= maxCount)) close();
    if (batchStart < 0) batchStart = start;
    batchEnd = end;
    count++;
    size += bytes;
  });
  close();
  return { batches, invalid, valid };
}

function agencyFromPath(path: string): number | undefined {
  const m = /agency-?(\d+)\.csv$/i.exec(path);
  return m ? Number(m[1]) : undefined;
}

class Uploader {
  readonly #ctx: RoleContext;
  readonly #server: { hostname: string; port: number };
  readonly #backoff = new Backoff({ initialMs: 100, maxMs: 2_000, jitter: 0.25 });

  constructor(ctx: RoleContext, server: { hostname: string; port: number }) {
    this.#ctx = ctx;
    this.#server = server;
  }

  /** Connects, retrying with capped, jittered backoff until the signal aborts or 60 s of failures. */
  async connect(): Promise<RpcClient> {
    const where = `${this.#server.hostname}:${this.#server.port}`;
    try {
      return await retryConnect(
        () =>
          RpcClient.connect(this.#server, {
            role: "agency",
            name: this.#ctx.name,
            ...linkSecurity(this.#ctx),
            timeoutMs: 3_000,
          }),
        {
          backoff: this.#backoff,
          signal: this.#ctx.signal,
          giveUpAfterMs: 60_000,
          fatal: (err) => err instanceof RemoteError, // refused (unauthorized): no point retrying
          onFailure: ({ failures }) => {
            if (failures === 1) this.#ctx.log.warn(`Cannot reach ${where}: retrying`);
          },
        },
      );
    } catch (err) {
      if (err instanceof RemoteError) throw err;
      if (this.#ctx.signal.aborted) throw new Error("stopped", { cause: err });
      throw new Error(`Cannot reach the server at ${where} for a minute`, { cause: err });
    }
  }

  /** Runs `work` on a connection, reconnecting and running it again when the connection breaks. */
  async withRetry<T>(what: string, work: (client: RpcClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const client = await this.connect();
      // a partition leaves the connection silent, not broken: the heartbeat closes it after
      // HEARTBEAT_SILENCE_MS without an answer, so `work` fails now and is resumed on a new one
      const stop = new AbortController();
      const beat = heartbeat(client, {
        probe: { t: "echo", data: "" },
        signal: AbortSignal.any([stop.signal, this.#ctx.signal]),
      });
      try {
        return await work(client);
      } catch (err) {
        if (err instanceof RemoteError || this.#ctx.signal.aborted) throw err;
        this.#ctx.log.warn(
          `${what}: connection lost (${
            err instanceof Error ? err.message : String(err)
          }); resuming`,
        );
        stop.abort();
        const silent = (await beat) === "silent";
        this.#ctx.events.emit("link.down", { what, ...(silent ? { reason: "heartbeat" } : {}) });
      } finally {
        stop.abort();
        await beat;
        await client.close();
      }
    }
    throw new Error(`Cannot finish ${what}: too many reconnects`);
  }
}

/** The agency role. */
export const agencyRole = defineRole({
  name: "agency",
  summary: "lottery agency: uploads its bets file in batches, then prints its winners",
  peers: "none",
  options: {
    agency: {
      type: "int",
      min: 1,
      help: "agency number (default: from the file name agency-N.csv)",
    },
    bets: {
      type: "string",
      arg: "file",
      help: "bets CSV: first_name,last_name,document,birthdate,number",
    },
    server: {
      type: "string",
      arg: "host:port",
      default: "127.0.0.1:7601",
      help: "the lottery server",
    },
    batchMax: {
      type: "int",
      default: 1000,
      min: 1,
      help: "most bets a batch (frames also stay ≤ 8 KiB)",
    },
    inFlight: {
      type: "int",
      default: 8,
      min: 1,
      help: "batches sent before waiting for acknowledgements",
    },
    round: {
      type: "int",
      min: 1,
      help: "the round to upload to (default: the server's current round, asked once)",
    },
    skipInvalid: { type: "bool", help: "report invalid lines and send the rest (default: exit 2)" },
  },
  examples: ["peerd --role agency --agency 1 --bets agency-1.csv --server 127.0.0.1:7601"],
  async run(ctx) {
    const o = ctx.options;
    const path = o.bets;
    if (!path) throw new UsageError("--bets <file> is required");
    const agency = o.agency ?? agencyFromPath(path);
    if (agency === undefined || agency < 1) {
      throw new UsageError("--agency <n ≥ 1> is required (or name the file agency-N.csv)");
    }
    const server = parseHostPort(o.server, "--server");
    const { batchMax, inFlight } = o;
    let round = o.round;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      throw new ConfigError(
        `${path}: cannot read: ${
          err instanceof Deno.errors.NotFound ? "no such file" : String(err)
        }`,
      );
    }
    const { batches, invalid, valid } = splitCsvBatches(
      agency,
      text,
      MAX_BATCH_FRAME_BYTES,
      batchMax,
    );
    for (const bad of invalid.slice(0, 50)) console.error(`${path}:${bad.line}: ${bad.reason}`);
    if (invalid.length > 50) {
      console.error(`${path}: … and ${invalid.length - 50} more invalid lines`);
    }
    if (invalid.length > 0 && !o.skipInvalid) {
      throw new ConfigError(
        `${path}: ${invalid.length} invalid lines; nothing sent (--skip-invalid sends the rest)`,
      );
    }
    const up = new Uploader(ctx, server);
    const acked = new Set<number>();
    const progress = Deno.stderr.isTerminal();
    const t0 = performance.now();
    ctx.events.emit("ready", {
      agency,
      bets: valid,
      batches: batches.length,
      invalid: invalid.length,
    });
    try {
      if (round === undefined) {
        // pinned once, so a reconnect after the server opened another round cannot move
        // this file's bets into it
        const info = await up.withRetry("round", (client) => client.request({ t: "round" }));
        round = Number(info.round);
        ctx.events.emit("round", { agency, round, drawn: info.drawn === true });
      }
      await up.withRetry("upload", async (client) => {
        const todo = batches.map((_, i) => i).filter((i) => !acked.has(i));
        let next = 0;
        const worker = async () => {
          while (next < todo.length && !ctx.signal.aborted) {
            const seq = todo[next++];
            await client.request({ t: "bets", agency, seq, round, csv: batches[seq].csv }, {
              timeoutMs: 30_000,
            });
            acked.add(seq);
            if (progress) {
              const pct = Math.floor((100 * acked.size) / batches.length);
              const bar = "#".repeat(Math.floor(pct / 5)).padEnd(20, ".");
              Deno.stderr.writeSync(
                utf8.encode(
                  `\ragency ${agency} [${bar}] ${pct}% ${acked.size}/${batches.length} batches`,
                ),
              );
            }
          }
        };
        const results = await Promise.allSettled(
          Array.from({ length: Math.min(inFlight, todo.length) }, worker),
        );
        const failed = results.find((r) => r.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
      });
      if (progress) Deno.stderr.writeSync(utf8.encode("\n"));
      if (ctx.signal.aborted) {
        console.log(
          `action: shutdown | result: success | enviados: ${acked.size}/${batches.length}`,
        );
        return 0;
      }
      const secs = (performance.now() - t0) / 1000;
      console.log(
        `action: apuestas_enviadas | result: success | cantidad: ${valid} | lotes: ${batches.length}`,
      );
      ctx.log.info(`sent ${valid} bets in ${batches.length} batches in ${secs.toFixed(2)} s`);
      await up.withRetry("done", async (client) => {
        try {
          await client.request({ t: "done", agency, round, batches: batches.length });
        } catch (err) {
          if (!(err instanceof RemoteError && err.code === "already_done")) throw err;
        }
      });
      const reply = await up.withRetry(
        "winners",
        (client) =>
          client.request({ t: "winners", agency, round, wait: true }, {
            timeoutMs: 24 * 3600_000,
            signal: ctx.signal,
          }),
      );
      const documents = (reply.documents as string[]) ?? [];
      console.log(
        `action: consulta_ganadores | result: success | cant_ganadores: ${documents.length}`,
      );
      for (const doc of documents) console.log(`ganador: ${doc}`);
      ctx.events.emit("winners", { agency, count: documents.length, documents });
      return 0;
    } catch (err) {
      if (ctx.signal.aborted) {
        console.log("action: shutdown | result: success");
        return 0;
      }
      if (err instanceof RemoteError) {
        console.error(`peerd agency: the server refused: ${err.message}`);
        ctx.events.emit("refused", { agency, round, code: err.code, message: err.message });
        return 1;
      }
      throw err;
    }
  },
});

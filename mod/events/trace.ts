/**
 * `peerd trace <events.jsonl…>`: merges the events files of several nodes into one
 * timeline, time relative to the first event, one line each.
 *
 * @module
 */
import type { Command } from "commander";
import type { CommandDefinition } from "../process/mod.ts";
import type { EventRecord } from "./sink.ts";

/** Reads events files, skipping torn lines; returns them merged by time. */
export function readEventFiles(paths: string[]): EventRecord[] {
  const all: EventRecord[] = [];
  for (const path of paths) {
    const text = Deno.readTextFileSync(path);
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        all.push(JSON.parse(line));
      } catch {
        // torn last line of a killed node
      }
    }
  }
  return all.sort((a, b) => a.ts - b.ts);
}

/** Formats one event as a timeline line. */
export function formatTraceLine(e: EventRecord, t0: number, width: number): string {
  const { ts, node, role: _role, ev, ...rest } = e;
  const fields = Object.entries(rest).map(([k, v]) =>
    `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
  ).join(" ");
  return `${((ts - t0) / 1000).toFixed(3).padStart(9)}s  ${String(node).padEnd(width)}  ${
    ev.padEnd(20)
  } ${fields}`;
}

/** The `trace` subcommand. */
export const traceCommand: CommandDefinition = {
  name: "trace",
  summary: "merge events files (--events) of several nodes into one readable timeline",
  register(program: Command): void {
    program
      .command("trace")
      .description("merge events files of several nodes into one timeline")
      .argument("<files...>", "events files written with --events")
      .option("--ev <prefix>", "only events whose name starts with this")
      .option("--node <name>", "only this node's events")
      .action((files: string[], opts: { ev?: string; node?: string }) => {
        let events: EventRecord[];
        try {
          events = readEventFiles(files);
        } catch (err) {
          console.error(`peerd trace: ${err instanceof Error ? err.message : String(err)}`);
          Deno.exitCode = 1;
          return;
        }
        const t0 = events[0]?.ts ?? 0;
        const shown = events.filter((e) =>
          (!opts.ev || e.ev.startsWith(opts.ev)) && (!opts.node || e.node === opts.node)
        );
        const width = Math.max(4, ...shown.map((e) => String(e.node).length));
        for (const e of shown) console.log(formatTraceLine(e, t0, width));
      });
  },
};

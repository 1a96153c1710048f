/**
 * `peerd trace <events.jsonl…>`: merges the events files of several nodes into one
 * timeline, time relative to the first event, one line each.
 *
 * @module
 */
import type { Command } from "commander";
import type { CommandDefinition } from "../process/mod.ts";
import type { EventRecord } from "../events/mod.ts";
import { layoutSpaceTime, renderSpaceTimeSvg } from "../console/mod.ts";

/**
 * The space-time diagram (SVG) of the multicast events among `events`: one lane per
 * node, messages as arrows (the layout the console page draws too).
 */
export function spaceTimeSvg(
  events: EventRecord[],
  options: { axis?: "order" | "time"; width?: number } = {},
): { svg: string; messages: number; arrows: number; sameOrder: boolean } {
  const mc = events.filter((e) => e.role === "multicast" || e.ev.startsWith("mc."));
  const messages = new Set(mc.filter((e) => e.ev === "mc.delivered").map((e) => String(e.id)));
  const width = options.width ?? Math.max(900, Math.min(12_000, 140 + messages.size * 40));
  const layout = layoutSpaceTime(mc, { axis: options.axis, width });
  return {
    svg: renderSpaceTimeSvg(layout),
    messages: layout.sends.length,
    arrows: layout.arrows.length,
    sameOrder: layout.sameOrder,
  };
}

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
      .option("--svg <out.svg>", "write the multicast space-time diagram as SVG instead")
      .option("--time-axis", "with --svg: time to scale (default: events evenly spaced)")
      .action((
        files: string[],
        opts: { ev?: string; node?: string; svg?: string; timeAxis?: boolean },
      ) => {
        let events: EventRecord[];
        try {
          events = readEventFiles(files);
        } catch (err) {
          console.error(`peerd trace: ${err instanceof Error ? err.message : String(err)}`);
          Deno.exitCode = 1;
          return;
        }
        if (opts.svg) {
          const picked = events.filter((e) => !opts.node || e.node === opts.node);
          const out = spaceTimeSvg(picked, { axis: opts.timeAxis ? "time" : "order" });
          try {
            Deno.writeTextFileSync(opts.svg, out.svg + "\n");
          } catch (err) {
            console.error(
              `peerd trace: Cannot write ${opts.svg}: ${
                err instanceof Error ? err.message : String(err)
              }`,
            );
            Deno.exitCode = 1;
            return;
          }
          console.log(
            `peerd trace: ${opts.svg}: ${out.messages} messages, ${out.arrows} arrows, orders ${
              out.sameOrder ? "identical" : "differ"
            }`,
          );
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

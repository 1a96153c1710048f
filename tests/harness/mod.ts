/**
 * Test harness: real peerd processes on free 127.0.0.1 ports (re-exported from
 * `mod/harness`, the same code the demo uses), plus small assertion helpers for events.
 *
 * @module
 */
export {
  ClusterNode,
  freePort,
  freePorts,
  LocalCluster,
  type LocalClusterOptions,
  type NodeSpec,
  pause,
} from "../../mod/harness/mod.ts";
export { peerdArgv, peerdCommand } from "../../mod/process/mod.ts";
import type { EventRecord } from "../../mod/events/mod.ts";
import { peerdCommand } from "../../mod/process/mod.ts";
import { pause } from "../../mod/harness/mod.ts";

/** Runs peerd to completion with `args`; returns exit code, stdout and stderr (bounded by `timeoutMs`). */
export async function runPeerd(
  args: string[],
  options: { timeoutMs?: number; cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = peerdCommand(args, {
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: options.cwd,
    env: options.env,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }, options.timeoutMs ?? 30_000);
  try {
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  let last: T | undefined;
  while (performance.now() < deadline) {
    last = await check();
    if (last) return last as NonNullable<T>;
    await pause(options.intervalMs ?? 25);
  }
  throw new Error(
    `timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${options.what ?? "condition"}`,
  );
}

/** The events named `ev`. */
export function eventsNamed(events: EventRecord[], ev: string): EventRecord[] {
  return events.filter((e) => e.ev === ev);
}

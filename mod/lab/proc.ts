/**
 * Processes of the lab by pid: their state from `/proc`, signals, and the check that a pid
 * is still the process the lab started (its environment names the node's log file), so a
 * reused pid is never signalled.
 *
 * @module
 */
import { sleep } from "../wire/mod.ts";

/** What `/proc/<pid>/stat` says about a process. */
export type ProcState = "running" | "stopped" | "zombie" | "gone";

/** The state of `pid`. */
export function procState(pid: number): ProcState {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return "gone";
  }
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  if (state === "Z" || state === "X") return "zombie";
  if (state === "T" || state === "t") return "stopped";
  return "running";
}

/** The variable whose value names a lab process: its log file, unique per node. */
export const LAB_LOG_ENV = "PEERD_LAB_LOG";

/**
 * Whether `pid` is a process the lab started for the node logging to `logPath`: its
 * environment holds `PEERD_LAB_LOG=<logPath>` (so a reused pid is never signalled).
 */
export function isOurs(pid: number, logPath: string): boolean {
  try {
    const environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
    return environ.split("\0").includes(`${LAB_LOG_ENV}=${logPath}`);
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid`; false when it is gone. */
export function signalPid(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone or a zombie, at most `timeoutMs`; true when it is. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const s = procState(pid);
    if (s === "gone" || s === "zombie") return true;
    await sleep(20);
  }
  return false;
}

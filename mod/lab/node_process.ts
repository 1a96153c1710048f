/**
 * The processes of a lab's nodes: each started inside its namespace (`ip netns exec …
 * setsid sh -c …`, output to its log), readiness from its events, and signals only to the
 * process the lab started (checked by pid and log path), with the state file kept current.
 *
 * @module
 */
import type { EventRecord } from "../events/mod.ts";
import { peerdArgv } from "../process/mod.ts";
import { sleep } from "../wire/mod.ts";
import { LabUsageError } from "./plan.ts";
import { isOurs, procState, signalPid, waitGone } from "./proc.ts";
import { type LabNodeState, type LabState, writeState } from "./state.ts";

interface Running {
  child?: Deno.ChildProcess;
  status?: Promise<Deno.CommandStatus>;
}

const SHELL_EXEC = 'exec "$0" "$@" </dev/null >>"$PEERD_LAB_LOG" 2>&1';

/** A node's stdout/stderr log text ("" before it wrote any). */
export function logText(n: LabNodeState): string {
  try {
    return Deno.readTextFileSync(n.logPath);
  } catch {
    return "";
  }
}

/** Options of {@linkcode LabProcesses}. */
export interface LabProcessesOptions {
  /** Leave processes running when this process exits. */
  detached: boolean;
  /** How long a node may take to be ready. */
  readyTimeoutMs: number;
  /** Every event a node wrote so far. */
  events: (node: string) => EventRecord[];
}

/** Starts, waits for, signals and reaps the node processes of one lab. */
export class LabProcesses {
  #state: LabState;
  #options: LabProcessesOptions;
  #running = new Map<string, Running>();

  constructor(state: LabState, options: LabProcessesOptions) {
    this.#state = state;
    this.#options = options;
  }

  #events(node: string): EventRecord[] {
    return this.#options.events(node);
  }

  /** The argv a node runs with (after `ip netns exec <ns> setsid sh -c …`). */
  argv(n: LabNodeState): string[] {
    if (n.command) return peerdArgv(n.command);
    return peerdArgv([
      "--role",
      n.role,
      "--name",
      n.name,
      "--peers",
      this.#state.peersPath,
      "--listen",
      `${n.ip}:${n.port}`,
      "--data",
      n.dataDir,
      "--events",
      n.eventsPath,
      "--log-level",
      this.#state.logLevel,
      ...n.args,
    ]);
  }

  /** Whether `node`'s process is alive (running or paused). */
  alive(n: LabNodeState): boolean {
    if (n.pid === undefined) return false;
    const s = procState(n.pid);
    return (s === "running" || s === "stopped") && isOurs(n.pid, n.logPath);
  }

  /** Starts `node` in its namespace and waits for its ready event (unless `waitReady: false`). */
  async start(n: LabNodeState, options: { waitReady?: boolean } = {}): Promise<void> {
    const node = n.name;
    if (this.alive(n)) {
      throw new LabUsageError(`Cannot start ${node}: already running (pid ${n.pid})`);
    }
    const from = this.#events(node).length;
    const [program, ...rest] = this.argv(n);
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", n.netns, "setsid", "sh", "-c", SHELL_EXEC, program, ...rest],
      env: { PEERD_LAB_LOG: n.logPath },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const running: Running = { child, status: child.status };
    if (this.#options.detached) child.unref();
    this.#running.set(node, running);
    n.pid = child.pid;
    n.paused = false;
    writeState(this.#state);
    if (options.waitReady === false || n.readyEvent === null) return;
    const readyEvent = n.readyEvent;
    const deadline = performance.now() + this.#options.readyTimeoutMs;
    let index = from;
    while (performance.now() < deadline) {
      const all = this.#events(node);
      for (; index < all.length; index++) if (all[index].ev === readyEvent) return;
      const s = procState(child.pid);
      if (s === "gone" || s === "zombie") {
        const status = await child.status;
        this.#running.delete(node);
        throw new Error(
          `Cannot start ${node}: exited with code ${status.code} before ready\n${
            logText(n).slice(-2000)
          }`,
        );
      }
      await sleep(20);
    }
    throw new Error(
      `Cannot start ${node}: no ${readyEvent} event within ${this.#options.readyTimeoutMs} ms\n${
        logText(n).slice(-2000)
      }`,
    );
  }

  /**
   * Waits for `node`'s process to end by itself (a client such as an agency); resolves with
   * its exit code (undefined when this process did not start it, e.g. after `Lab.attach`).
   * Rejects after `timeoutMs`.
   */
  async exited(n: LabNodeState, options: { timeoutMs?: number } = {}): Promise<number | undefined> {
    const node = n.name;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const running = this.#running.get(node);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${node} did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      if (running?.status) {
        const status = await Promise.race([running.status, timeout]);
        this.#running.delete(node);
        return status.code;
      }
      if (n.pid !== undefined && !await waitGone(n.pid, timeoutMs)) {
        throw new Error(`${node} did not exit within ${timeoutMs} ms`);
      }
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` to `node`'s process (checked to be the one the lab started). */
  #signal(n: LabNodeState, signal: Deno.Signal): boolean {
    if (n.pid === undefined || !isOurs(n.pid, n.logPath)) return false;
    return signalPid(n.pid, signal);
  }

  async reap(n: LabNodeState, timeoutMs: number): Promise<boolean> {
    const running = this.#running.get(n.name);
    if (running?.status) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = await Promise.race([
        running.status.then(() => true),
        new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (done) this.#running.delete(n.name);
      return done;
    }
    return n.pid === undefined ? true : await waitGone(n.pid, timeoutMs);
  }

  /** SIGKILL to `node`; resolves once it is gone. */
  async kill(n: LabNodeState): Promise<void> {
    this.#signal(n, "SIGKILL");
    await this.reap(n, 10_000);
    n.paused = false;
    writeState(this.#state);
  }

  /** SIGTERM to `node` (SIGKILL after `graceMs`); resolves once it is gone. */
  async stop(n: LabNodeState, graceMs = 6_000): Promise<void> {
    if (!this.#signal(n, "SIGTERM")) {
      await this.reap(n, 1_000);
      return;
    }
    this.#signal(n, "SIGCONT");
    if (!await this.reap(n, graceMs)) {
      this.#signal(n, "SIGKILL");
      await this.reap(n, 10_000);
    }
    n.paused = false;
    writeState(this.#state);
  }

  /** SIGSTOP to `node`; resolves once the kernel shows it stopped (bounded: 2 s). */
  async pause(n: LabNodeState): Promise<void> {
    if (!this.#signal(n, "SIGSTOP")) {
      throw new LabUsageError(`Cannot pause ${n.name}: not running`);
    }
    n.paused = true;
    writeState(this.#state);
    await untilProcState(n, (s) => s === "stopped");
  }

  /** SIGCONT to `node`; resolves once the kernel shows it running again (bounded: 2 s). */
  async resume(n: LabNodeState): Promise<void> {
    if (!this.#signal(n, "SIGCONT")) {
      throw new LabUsageError(`Cannot resume ${n.name}: not running`);
    }
    n.paused = false;
    writeState(this.#state);
    await untilProcState(n, (s) => s !== "stopped");
  }

  /** Kill -9 (if running), then start again; waits for ready unless `waitReady: false`. */
  async restart(n: LabNodeState, options: { waitReady?: boolean } = {}): Promise<void> {
    if (this.alive(n)) await this.kill(n);
    await this.start(n, options);
  }

  /** Waits for every process this object started to be reaped, then forgets them. */
  async settle(): Promise<void> {
    for (const running of this.#running.values()) await running.status;
    this.#running.clear();
  }
}

/** A signal is delivered asynchronously: waits until `/proc` shows its effect (bounded: 2 s). */
async function untilProcState(
  n: LabNodeState,
  ok: (s: ReturnType<typeof procState>) => boolean,
): Promise<void> {
  const pid = n.pid;
  if (pid === undefined) return;
  for (let i = 0; i < 400 && !ok(procState(pid)); i++) await sleep(5);
}

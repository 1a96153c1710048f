/**
 * {@linkcode Lab}: a cluster of real peerd processes, one network namespace and one IP a
 * node on a private bridge, with partitions, one-way loss, pauses, kills and restarts.
 * The same class serves the tests (`await using lab = await Lab.up(…)`) and `peerd lab`.
 * It ties together the plan (`plan.ts`), the network (`build.ts`, `net.ts`), the node
 * processes (`node_process.ts`) and the state file (`state.ts`).
 *
 * @module
 */
import { type HostPort, loadPeersFile } from "../config/mod.ts";
import { ctlRequest } from "../ctl/mod.ts";
import { EventLog, type EventRecord } from "../events/mod.ts";
import { type Message, sleep } from "../wire/mod.ts";
import { buildLab, takenNetns, teardownNetwork } from "./build.ts";
import { labUnavailableReason, loadRules } from "./net.ts";
import { LabProcesses, logText } from "./node_process.ts";
import {
  addCuts,
  checkPrefix,
  type Cut,
  cutKey,
  isolateCuts,
  LabUsageError,
  nftScript,
  onewayCut,
  partitionCuts,
} from "./plan.ts";
import { procState } from "./proc.ts";
import {
  type LabDownReport,
  type LabNodeSpec,
  type LabStatus,
  type LabUpOptions,
  specsFromConfig,
} from "./specs.ts";
import { type LabNodeState, type LabState, readState, statePath, writeState } from "./state.ts";

/** The lab cannot run here (not root, no `ip`, no `nft`): exit code 2. */
export class LabUnavailableError extends Error {
  /** Always 2. */
  readonly exitCode = 2;

  constructor(reason: string) {
    super(`Cannot start a lab: ${reason}`);
    this.name = "LabUnavailableError";
  }
}

/**
 * Why the lab cannot run here (`"not root"`, no `ip`, no `nft`), or undefined when it can.
 * Tests print `skipped: <reason>` when this returns a reason.
 */
export function labAvailable(): Promise<string | undefined> {
  return labUnavailableReason();
}

/**
 * A lab of real peerd processes in network namespaces. Always end it (`await using`, or
 * `down()` in `finally`): `down` stops every process, then removes every namespace, veth
 * and the bridge it recorded in `lab.json`, and only those. Faults act at once:
 * `partition`/`isolate`/`oneway` load nftables rules in the receivers' namespaces (packets
 * dropped silently at input), `heal` empties them; `kill`, `pause`, `resume` signal a node.
 */
export class Lab implements AsyncDisposable {
  #state: LabState;
  #procs: LabProcesses;
  #logs = new Map<string, EventLog>();
  #ownsDir: boolean;

  private constructor(
    state: LabState,
    options: { ownsDir: boolean; detached: boolean; readyTimeoutMs: number },
  ) {
    this.#state = state;
    this.#ownsDir = options.ownsDir;
    this.#procs = new LabProcesses(state, {
      detached: options.detached,
      readyTimeoutMs: options.readyTimeoutMs,
      events: (node) => this.events(node),
    });
    LIVE.add(this);
  }

  /**
   * Creates the bridge, one namespace a node, writes the peers file with the nodes' lab
   * addresses, starts every node that is not deferred and waits for each one's ready event.
   * Throws {@linkcode LabUnavailableError} when the lab cannot run here; on any other
   * failure it removes what it made before throwing.
   */
  static async up(options: LabUpOptions): Promise<Lab> {
    checkPrefix(options.prefix);
    const reason = await labUnavailableReason();
    if (reason) throw new LabUnavailableError(reason);
    let secret = options.secret;
    let specs: LabNodeSpec[];
    if (typeof options.peers === "string") {
      const config = loadPeersFile(options.peers);
      secret ??= config.secret;
      specs = specsFromConfig(config, options);
    } else {
      specs = options.peers;
    }
    const ownsDir = options.dir === undefined;
    const dir = await Deno.realPath(
      options.dir ?? await Deno.makeTempDir({ prefix: `peerd-lab-${options.prefix}-` }),
    ).catch(async () => {
      await Deno.mkdir(options.dir!, { recursive: true });
      return Deno.realPath(options.dir!);
    });
    if (readState(dir)) {
      throw new LabUsageError(
        `Cannot start a lab in ${dir}: ${
          statePath(dir)
        } exists (a lab is up there; run \`peerd lab down --dir ${dir}\`)`,
      );
    }
    const taken = await takenNetns(options.prefix);
    if (taken.length > 0) {
      throw new LabUsageError(
        `Cannot start a lab with prefix "${options.prefix}": namespaces ${
          taken.join(", ")
        } exist (another lab with this prefix is up; pick another --prefix or take that one down)`,
      );
    }
    const state: LabState = {
      version: 1,
      prefix: options.prefix,
      dir,
      links: [],
      netns: [],
      nodes: [],
      cuts: [],
      peersPath: `${dir}/peers.json`,
      secret,
      logLevel: options.logLevel ?? "info",
    };
    const lab = new Lab(state, {
      ownsDir,
      detached: options.detached ?? false,
      readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    });
    try {
      await buildLab(state, specs);
      await Promise.all(
        specs.filter((s) => !s.deferred).map((s) => lab.start(s.name)),
      );
    } catch (err) {
      await lab.down().catch(() => {});
      throw err;
    }
    return lab;
  }

  /**
   * The labs this process brought up or attached and has not taken down yet, oldest first:
   * a test harness downs them after a test that timed out or forgot to.
   */
  static live(): Lab[] {
    return [...LIVE];
  }

  /** A lab that is up in folder `dir` (from its state file), e.g. for `peerd lab partition`. */
  static attach(dir: string, options: { detached?: boolean } = {}): Lab {
    const state = readState(dir);
    if (!state) throw new LabUsageError(`Cannot find a lab in ${dir}: no ${statePath(dir)}`);
    return new Lab(state, {
      ownsDir: false,
      detached: options.detached ?? true,
      readyTimeoutMs: 30_000,
    });
  }

  /** The lab folder. */
  get dir(): string {
    return this.#state.dir;
  }

  /** The prefix. */
  get prefix(): string {
    return this.#state.prefix;
  }

  /** The peers file the lab wrote (lab addresses). */
  get peersPath(): string {
    return this.#state.peersPath;
  }

  /** The lab's /24. */
  get subnet(): string | undefined {
    return this.#state.subnet;
  }

  /** Node names, in order. */
  get names(): string[] {
    return this.#state.nodes.map((n) => n.name);
  }

  #node(name: string): LabNodeState {
    const node = this.#state.nodes.find((n) => n.name === name);
    if (!node) {
      throw new LabUsageError(
        `Cannot find node "${name}" in the lab; nodes are ${this.names.join(", ")}`,
      );
    }
    return node;
  }

  /** `ip:port` of `node`, reachable from the host. */
  address(node: string): string {
    const n = this.#node(node);
    return `${n.ip}:${n.port}`;
  }

  /** `{hostname, port}` of `node`. */
  hostPort(node: string): HostPort {
    const n = this.#node(node);
    return { hostname: n.ip, port: n.port };
  }

  /** `node`'s IP. */
  ip(node: string): string {
    return this.#node(node).ip;
  }

  /** `node`'s events file. */
  eventsPath(node: string): string {
    return this.#node(node).eventsPath;
  }

  /** `node`'s data directory. */
  dataDir(node: string): string {
    return this.#node(node).dataDir;
  }

  /** `node`'s stdout/stderr log text. */
  log(node: string): string {
    return logText(this.#node(node));
  }

  /** Every event `node` wrote so far (every run). */
  events(node: string): EventRecord[] {
    const n = this.#node(node);
    let log = this.#logs.get(node);
    if (!log) {
      log = new EventLog(n.eventsPath);
      this.#logs.set(node, log);
    }
    return log.all();
  }

  /** Every node's events, merged by time. */
  allEvents(): EventRecord[] {
    return this.names.flatMap((n) => this.events(n)).sort((a, b) => a.ts - b.ts);
  }

  /** The number of events of `node` so far: pass it as `from` to wait only for newer ones. */
  mark(node: string): number {
    return this.events(node).length;
  }

  /** Waits (polling every 20 ms, bounded) for an event of `node` matching `match`. */
  async waitForEvent(
    node: string,
    match: string | ((e: EventRecord) => boolean),
    options: { timeoutMs?: number; from?: number; signal?: AbortSignal } = {},
  ): Promise<EventRecord> {
    const pred = typeof match === "string" ? (e: EventRecord) => e.ev === match : match;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = performance.now() + timeoutMs;
    let index = options.from ?? 0;
    while (performance.now() < deadline && !options.signal?.aborted) {
      const all = this.events(node);
      for (; index < all.length; index++) if (pred(all[index])) return all[index];
      await sleep(20, options.signal);
    }
    throw new Error(
      `${node}: no event ${typeof match === "string" ? match : "matching"} within ${timeoutMs} ms`,
    );
  }

  /** Sends a control command to `node` from the host; rejects on an error reply. */
  ctl(
    node: string,
    cmd: string,
    args: string[] = [],
    options: { timeoutMs?: number } = {},
  ): Promise<Message> {
    return ctlRequest(this.hostPort(node), cmd, args, {
      secret: this.#state.secret,
      timeoutMs: options.timeoutMs ?? 10_000,
    });
  }

  /** The argv a node runs with (after `ip netns exec <ns> setsid sh -c …`). */
  argv(node: string): string[] {
    return this.#procs.argv(this.#node(node));
  }

  /** Whether `node`'s process is alive (running or paused). */
  alive(node: string): boolean {
    return this.#procs.alive(this.#node(node));
  }

  /** Starts `node` in its namespace and waits for its ready event (unless `waitReady: false`). */
  start(node: string, options: { waitReady?: boolean } = {}): Promise<void> {
    return this.#procs.start(this.#node(node), options);
  }

  /**
   * Waits for `node`'s process to end by itself (a client such as an agency); resolves with
   * its exit code (undefined when this process did not start it, e.g. after `Lab.attach`).
   * Rejects after `timeoutMs`.
   */
  exited(node: string, options: { timeoutMs?: number } = {}): Promise<number | undefined> {
    return this.#procs.exited(this.#node(node), options);
  }

  /** SIGKILL to `node`; resolves once it is gone. */
  kill(node: string): Promise<void> {
    return this.#procs.kill(this.#node(node));
  }

  /** SIGTERM to `node` (SIGKILL after `graceMs`); resolves once it is gone. */
  stop(node: string, graceMs = 6_000): Promise<void> {
    return this.#procs.stop(this.#node(node), graceMs);
  }

  /** SIGSTOP to `node`; resolves once the kernel shows it stopped (bounded: 2 s). */
  pause(node: string): Promise<void> {
    return this.#procs.pause(this.#node(node));
  }

  /** SIGCONT to `node`; resolves once the kernel shows it running again (bounded: 2 s). */
  resume(node: string): Promise<void> {
    return this.#procs.resume(this.#node(node));
  }

  /** Kill -9 (if running), then start again; waits for ready unless `waitReady: false`. */
  restart(node: string, options: { waitReady?: boolean } = {}): Promise<void> {
    return this.#procs.restart(this.#node(node), options);
  }

  /** The directed cuts in force. */
  get cuts(): Cut[] {
    return [...this.#state.cuts];
  }

  async #applyCuts(cuts: Cut[]): Promise<void> {
    const before = new Set(this.#state.cuts.map(cutKey));
    this.#state.cuts = cuts;
    writeState(this.#state);
    const touched = new Set<string>();
    for (const c of cuts) if (!before.has(cutKey(c))) touched.add(c.to);
    const after = new Set(cuts.map(cutKey));
    for (const k of before) if (!after.has(k)) touched.add(k.split(">")[1]);
    await Promise.all(
      [...touched].map((node) =>
        loadRules(this.#node(node).netns, nftScript(node, cuts, (x) => this.ip(x)))
      ),
    );
  }

  /**
   * Partitions the nodes into `groups`, both ways, replacing every cut in force. Nodes in
   * no group keep all their links.
   */
  partition(...groups: string[][]): Promise<void> {
    return this.#applyCuts(partitionCuts(groups, this.names));
  }

  /** Cuts `node` off from every other node, both ways, replacing every cut in force. */
  isolate(node: string): Promise<void> {
    return this.#applyCuts(isolateCuts(node, this.names));
  }

  /** Adds a one-way cut: `from`'s packets to `to` are dropped (at `to`); `to` → `from` still flows. */
  oneway(from: string, to: string): Promise<void> {
    return this.#applyCuts(addCuts(this.#state.cuts, [onewayCut(from, to, this.names)]));
  }

  /** Removes every cut. */
  heal(): Promise<void> {
    return this.#applyCuts([]);
  }

  /** Nodes, pids, process states, cut links. */
  status(): LabStatus {
    const s = this.#state;
    return {
      prefix: s.prefix,
      dir: s.dir,
      subnet: s.subnet,
      bridge: s.bridge,
      peersPath: s.peersPath,
      nodes: s.nodes.map((n) => {
        const alive = this.alive(n.name);
        const stopped = alive && procState(n.pid!) === "stopped";
        return {
          name: n.name,
          role: n.role,
          address: `${n.ip}:${n.port}`,
          netns: n.netns,
          ...(alive ? { pid: n.pid } : {}),
          state: !alive ? "stopped" : stopped ? "paused" : "running",
        };
      }),
      cuts: s.cuts.map(cutKey),
    };
  }

  /**
   * Stops every node (SIGTERM, SIGKILL after `graceMs`), kills anything left inside the
   * lab's namespaces, deletes the namespaces, veths and bridge it recorded, then the state
   * file. Idempotent; safe on a half-built lab.
   */
  async down(options: { graceMs?: number } = {}): Promise<LabDownReport> {
    const s = this.#state;
    const report: LabDownReport = { killed: 0, netns: 0, links: 0 };
    const graceMs = options.graceMs ?? 3_000;
    await Promise.all(s.nodes.map(async (n) => {
      if (this.#procs.alive(n)) {
        report.killed++;
        await this.#procs.stop(n, graceMs);
      } else {
        await this.#procs.reap(n, 1_000);
      }
    }));
    await teardownNetwork(s, report);
    await this.#procs.settle();
    LIVE.delete(this);
    try {
      Deno.removeSync(statePath(s.dir));
    } catch {
      // already removed
    }
    if (this.#ownsDir && !Deno.env.get("PEERD_KEEP_TEST_DIRS")) {
      await Deno.remove(s.dir, { recursive: true }).catch(() => {});
    }
    return report;
  }

  /** `down()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}

const LIVE = new Set<Lab>();

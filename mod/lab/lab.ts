/**
 * {@linkcode Lab}: a cluster of real peerd processes, one network namespace and one IP a
 * node on a private bridge, with partitions, one-way loss, pauses, kills and restarts.
 * The same class serves the tests (`await using lab = await Lab.up(…)`) and `peerd lab`.
 *
 * @module
 */
import {
  type ClusterConfig,
  formatPeersJson,
  type HostPort,
  loadPeersFile,
} from "../config/mod.ts";
import { ctlRequest } from "../ctl/mod.ts";
import type { EventRecord } from "../events/mod.ts";
import { peerdArgv } from "../process/mod.ts";
import { type Message, sleep } from "../wire/mod.ts";
import { EventLog } from "../events/mod.ts";
import {
  addCuts,
  checkPrefix,
  chooseSubnet,
  type Cut,
  cutKey,
  expandArg,
  isolateCuts,
  LabUsageError,
  nftScript,
  onewayCut,
  partitionCuts,
  planLab,
} from "./plan.ts";
import {
  createBridge,
  createNetns,
  deleteLink,
  deleteNetns,
  holdersOf,
  labUnavailableReason,
  listNetns,
  loadRules,
  netnsPids,
  usedNetworks,
  wireNode,
} from "./net.ts";
import { isOurs, procState, signalPid, waitGone } from "./proc.ts";
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

/** One node of a lab. Arguments may name other nodes: `{addr:NAME}`, `{ip:NAME}`, `{dir}`. */
export interface LabNodeSpec {
  /** Node name (unique). */
  name: string;
  /** Its role. */
  role: string;
  /** Port it listens on (every node has its own IP, so ports may repeat). @default {7000} */
  port?: number;
  /** Extra arguments after the common ones. */
  args?: string[];
  /** Extra keys of its peers.json entry (neighbours, role options). */
  entry?: Record<string, unknown>;
  /** Leave it out of the peers file (a client such as an agency or a front end's user). */
  unlisted?: boolean;
  /** Do not start it with the others (`lab.start(name)` later). */
  deferred?: boolean;
  /** Event that means ready; null for none. @default {"ready"; null with `command`} */
  readyEvent?: string | null;
  /**
   * Run this peerd command instead of a role (`["queue-ctl", "--queue", "{addr:q1}",
   * "consume", "jobs"]`): a client inside its own namespace. `role` is then only a label,
   * the node is left out of the peers file, and its output goes to `lab.log(name)`.
   */
  command?: string[];
}

/** Options of {@linkcode Lab.up}. */
export interface LabUpOptions {
  /** The nodes, or a peers file (peers.json / machines.txt) whose nodes to start. */
  peers: string | LabNodeSpec[];
  /** Prefix of every name the lab makes (1–8 of `[a-z0-9]`); each engineer or test its own. */
  prefix: string;
  /** Lab folder: state, peers file, events, logs, data. @default {a new temp dir} */
  dir?: string;
  /** Only these nodes of a peers file. */
  only?: string[];
  /** Role for peers-file nodes that name none (machines.txt). */
  role?: string;
  /** Extra arguments for every node started from a peers file. */
  args?: string[];
  /** Extra arguments for the peers-file nodes of a role (`{"lottery-server": ["--agencies", "5"]}`). */
  roleArgs?: Record<string, string[]>;
  /** Cluster secret written to the peers file. */
  secret?: string;
  /** How long each node may take to be ready. @default {30000} */
  readyTimeoutMs?: number;
  /** Log level of every node. @default {"info"} */
  logLevel?: string;
  /** Leave node processes running when this process exits (`peerd lab up`). @default {false} */
  detached?: boolean;
}

/** One node in {@linkcode LabStatus}. */
export interface LabNodeStatus {
  /** Node name. */
  name: string;
  /** Role. */
  role: string;
  /** `ip:port`. */
  address: string;
  /** Namespace. */
  netns: string;
  /** Current pid, if a process runs. */
  pid?: number;
  /** Process state. */
  state: "running" | "paused" | "stopped";
}

/** What `lab status` shows. */
export interface LabStatus {
  /** Prefix. */
  prefix: string;
  /** Folder. */
  dir: string;
  /** Subnet. */
  subnet?: string;
  /** Bridge. */
  bridge?: string;
  /** Peers file. */
  peersPath: string;
  /** Nodes. */
  nodes: LabNodeStatus[];
  /** Directed cuts (`from>to`: packets from `from` to `to` are dropped). */
  cuts: string[];
}

/** What `down` removed. */
export interface LabDownReport {
  /** Processes signalled. */
  killed: number;
  /** Namespaces deleted. */
  netns: number;
  /** Links deleted (bridge and veths still present). */
  links: number;
}

interface Running {
  child?: Deno.ChildProcess;
  status?: Promise<Deno.CommandStatus>;
}

const SHELL_EXEC = 'exec "$0" "$@" </dev/null >>"$PEERD_LAB_LOG" 2>&1';

/**
 * A lab of real peerd processes in network namespaces. Always end it (`await using`, or
 * `down()` in `finally`): `down` stops every process, then removes every namespace, veth
 * and the bridge it recorded in `lab.json`, and only those. Faults act at once:
 * `partition`/`isolate`/`oneway` load nftables rules in the receivers' namespaces (packets
 * dropped silently at input), `heal` empties them; `kill`, `pause`, `resume` signal a node.
 */
export class Lab implements AsyncDisposable {
  #state: LabState;
  #running = new Map<string, Running>();
  #logs = new Map<string, EventLog>();
  #ownsDir: boolean;
  #detached: boolean;
  #readyTimeoutMs: number;

  private constructor(
    state: LabState,
    options: { ownsDir: boolean; detached: boolean; readyTimeoutMs: number },
  ) {
    this.#state = state;
    this.#ownsDir = options.ownsDir;
    LIVE.add(this);
    this.#detached = options.detached;
    this.#readyTimeoutMs = options.readyTimeoutMs;
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
      await lab.#build(specs);
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

  async #build(specs: LabNodeSpec[]): Promise<void> {
    const state = this.#state;
    const names = specs.map((s) => s.name);
    const skip: string[] = [];
    for (let attempt = 0; attempt < 8; attempt++) {
      const subnet = chooseSubnet(state.prefix, await usedNetworks(), skip);
      const plan = planLab(state.prefix, names, subnet);
      state.subnet = subnet;
      state.bridge = plan.bridge;
      state.bridgeIp = plan.bridgeIp;
      writeState(state);
      await createBridge(plan);
      // another lab may have taken the same /24 at the same moment: check, else try another
      if ((await holdersOf(subnet, plan.bridge)).length > 0) {
        await deleteLink(plan.bridge);
        skip.push(subnet);
        continue;
      }
      const empty = nftScript("", [], () => "");
      for (const n of plan.nodes) {
        state.netns.push(n.netns);
        state.links.push(n.hostVeth);
        writeState(state);
        await createNetns(n);
        await wireNode(plan, n, empty);
      }
      const byName = new Map(plan.nodes.map((n) => [n.node, n]));
      const portOf = new Map(specs.map((s) => [s.name, s.port ?? 7000]));
      const lookup = {
        dir: state.dir,
        ip: (node: string) => {
          const n = byName.get(node);
          if (!n) throw new LabUsageError(`Cannot expand {ip:${node}}: unknown node`);
          return n.ip;
        },
        address: (node: string) => `${lookup.ip(node)}:${portOf.get(node)}`,
      };
      await Deno.mkdir(`${state.dir}/data`, { recursive: true });
      await Deno.mkdir(`${state.dir}/logs`, { recursive: true });
      state.nodes = specs.map((s) => ({
        name: s.name,
        role: s.role,
        netns: byName.get(s.name)!.netns,
        ip: byName.get(s.name)!.ip,
        port: s.port ?? 7000,
        args: (s.args ?? []).map((a) => expandArg(a, lookup)),
        listed: !s.unlisted && !s.command,
        readyEvent: s.readyEvent === undefined ? (s.command ? null : "ready") : s.readyEvent,
        command: s.command?.map((a) => expandArg(a, lookup)),
        eventsPath: `${state.dir}/${s.name}.events.jsonl`,
        logPath: `${state.dir}/logs/${s.name}.log`,
        dataDir: `${state.dir}/data/${s.name}`,
        entry: s.entry,
      }));
      writeState(state);
      this.#writePeersFile();
      return;
    }
    throw new Error("Cannot start a lab: every subnet tried was taken meanwhile");
  }

  #writePeersFile(): void {
    const s = this.#state;
    const text = formatPeersJson(
      s.nodes.filter((n) => n.listed).map((n) => ({
        name: n.name,
        hostname: n.ip,
        port: n.port,
        role: n.role,
        ...(n.entry ?? {}),
      })),
      { cluster: `lab-${s.prefix}`, secret: s.secret },
    );
    Deno.writeTextFileSync(s.peersPath, text);
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
    try {
      return Deno.readTextFileSync(this.#node(node).logPath);
    } catch {
      return "";
    }
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
    const n = this.#node(node);
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
  alive(node: string): boolean {
    const n = this.#node(node);
    if (n.pid === undefined) return false;
    const s = procState(n.pid);
    return (s === "running" || s === "stopped") && isOurs(n.pid, n.logPath);
  }

  /** Starts `node` in its namespace and waits for its ready event (unless `waitReady: false`). */
  async start(node: string, options: { waitReady?: boolean } = {}): Promise<void> {
    const n = this.#node(node);
    if (this.alive(node)) {
      throw new LabUsageError(`Cannot start ${node}: already running (pid ${n.pid})`);
    }
    const from = this.mark(node);
    const [program, ...rest] = this.argv(node);
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", n.netns, "setsid", "sh", "-c", SHELL_EXEC, program, ...rest],
      env: { PEERD_LAB_LOG: n.logPath },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const running: Running = { child, status: child.status };
    if (this.#detached) child.unref();
    this.#running.set(node, running);
    n.pid = child.pid;
    n.paused = false;
    writeState(this.#state);
    if (options.waitReady === false || n.readyEvent === null) return;
    const readyEvent = n.readyEvent;
    const deadline = performance.now() + this.#readyTimeoutMs;
    let index = from;
    while (performance.now() < deadline) {
      const all = this.events(node);
      for (; index < all.length; index++) if (all[index].ev === readyEvent) return;
      const s = procState(child.pid);
      if (s === "gone" || s === "zombie") {
        const status = await child.status;
        this.#running.delete(node);
        throw new Error(
          `Cannot start ${node}: exited with code ${status.code} before ready\n${
            this.log(node).slice(-2000)
          }`,
        );
      }
      await sleep(20);
    }
    throw new Error(
      `Cannot start ${node}: no ${readyEvent} event within ${this.#readyTimeoutMs} ms\n${
        this.log(node).slice(-2000)
      }`,
    );
  }

  /**
   * Waits for `node`'s process to end by itself (a client such as an agency); resolves with
   * its exit code (undefined when this process did not start it, e.g. after `Lab.attach`).
   * Rejects after `timeoutMs`.
   */
  async exited(node: string, options: { timeoutMs?: number } = {}): Promise<number | undefined> {
    const n = this.#node(node);
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
  #signal(node: string, signal: Deno.Signal): boolean {
    const n = this.#node(node);
    if (n.pid === undefined || !isOurs(n.pid, n.logPath)) return false;
    return signalPid(n.pid, signal);
  }

  async #reap(node: string, timeoutMs: number): Promise<boolean> {
    const n = this.#node(node);
    const running = this.#running.get(node);
    if (running?.status) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = await Promise.race([
        running.status.then(() => true),
        new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (done) this.#running.delete(node);
      return done;
    }
    return n.pid === undefined ? true : await waitGone(n.pid, timeoutMs);
  }

  /** SIGKILL to `node`; resolves once it is gone. */
  async kill(node: string): Promise<void> {
    this.#signal(node, "SIGKILL");
    await this.#reap(node, 10_000);
    this.#node(node).paused = false;
    writeState(this.#state);
  }

  /** SIGTERM to `node` (SIGKILL after `graceMs`); resolves once it is gone. */
  async stop(node: string, graceMs = 6_000): Promise<void> {
    if (!this.#signal(node, "SIGTERM")) {
      await this.#reap(node, 1_000);
      return;
    }
    this.#signal(node, "SIGCONT");
    if (!await this.#reap(node, graceMs)) {
      this.#signal(node, "SIGKILL");
      await this.#reap(node, 10_000);
    }
    this.#node(node).paused = false;
    writeState(this.#state);
  }

  /** SIGSTOP to `node`; resolves once the kernel shows it stopped (bounded: 2 s). */
  async pause(node: string): Promise<void> {
    if (!this.#signal(node, "SIGSTOP")) {
      throw new LabUsageError(`Cannot pause ${node}: not running`);
    }
    this.#node(node).paused = true;
    writeState(this.#state);
    await this.#untilProcState(node, (s) => s === "stopped");
  }

  /** SIGCONT to `node`; resolves once the kernel shows it running again (bounded: 2 s). */
  async resume(node: string): Promise<void> {
    if (!this.#signal(node, "SIGCONT")) {
      throw new LabUsageError(`Cannot resume ${node}: not running`);
    }
    this.#node(node).paused = false;
    writeState(this.#state);
    await this.#untilProcState(node, (s) => s !== "stopped");
  }

  /** A signal is delivered asynchronously: waits until `/proc` shows its effect. */
  async #untilProcState(node: string, ok: (s: ReturnType<typeof procState>) => boolean) {
    const pid = this.#node(node).pid;
    if (pid === undefined) return;
    for (let i = 0; i < 400 && !ok(procState(pid)); i++) await sleep(5);
  }

  /** Kill -9 (if running), then start again; waits for ready unless `waitReady: false`. */
  async restart(node: string, options: { waitReady?: boolean } = {}): Promise<void> {
    if (this.alive(node)) await this.kill(node);
    await this.start(node, options);
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
      if (this.alive(n.name)) {
        report.killed++;
        await this.stop(n.name, graceMs);
      } else {
        await this.#reap(n.name, 1_000);
      }
    }));
    const existing = new Set(await listNetns());
    for (const ns of s.netns) {
      if (!existing.has(ns)) continue;
      // anything still inside the lab's own namespace was started there by the lab
      for (const pid of await netnsPids(ns)) {
        if (signalPid(pid, "SIGKILL")) report.killed++;
        await waitGone(pid, 2_000);
      }
      if (await deleteNetns(ns)) report.netns++;
    }
    for (const link of s.links) if (await deleteLink(link)) report.links++;
    if (s.bridge && await deleteLink(s.bridge)) report.links++;
    for (const running of this.#running.values()) await running.status;
    this.#running.clear();
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

async function takenNetns(prefix: string): Promise<string[]> {
  return (await listNetns()).filter((ns) => ns.startsWith(`peerd-${prefix}-`));
}

function specsFromConfig(config: ClusterConfig, options: LabUpOptions): LabNodeSpec[] {
  const path = config.source;
  const nodes = options.only
    ? options.only.map((name) => {
      const n = config.nodes.find((x) => x.name === name);
      if (!n) throw new LabUsageError(`Cannot find node "${name}" in ${path}`);
      return n;
    })
    : config.nodes;
  return nodes.map((n) => {
    const role = n.role ?? options.role;
    if (!role) {
      throw new LabUsageError(`Cannot start ${n.name}: ${path} gives it no role (pass --role)`);
    }
    // an entry's own "args" (an array of strings) are extra arguments for that node
    const { args: entryArgs, ...rest } = n.options;
    if (
      entryArgs !== undefined &&
      (!Array.isArray(entryArgs) || entryArgs.some((a) => typeof a !== "string"))
    ) {
      throw new LabUsageError(
        `Cannot start ${n.name}: ${path}: "args" must be an array of strings`,
      );
    }
    return {
      name: n.name,
      role,
      port: n.port,
      args: [
        ...(options.args ?? []),
        ...(options.roleArgs?.[role] ?? []),
        ...(entryArgs as string[] ?? []),
      ],
      entry: { ...rest, ...(n.neighbours ? { neighbours: n.neighbours } : {}) },
    };
  });
}

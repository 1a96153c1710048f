/**
 * A local cluster of real peerd processes on 127.0.0.1: free ports, a generated peers
 * file, readiness from `ready` events, events collected per node, kill and restart, and a
 * stop that always ends every process. The demo and the integration tests both use it.
 *
 * @module
 */
import { formatPeersJson } from "../config/mod.ts";
import { EventLog, type EventRecord } from "../events/mod.ts";
import { ctlRequest } from "../ctl/mod.ts";
import { type Message, sleep, type TlsConfig } from "../wire/mod.ts";
import { peerdCommand, stopProcess } from "../process/mod.ts";

/** How many ports handed out lately `freePort` remembers, so it never repeats one of them. */
const RECENT_PORT_LIMIT = 512;
/** Ports handed out lately, oldest first. */
const recentPorts: number[] = [];

/**
 * Finds a free TCP port on 127.0.0.1 (bound and released at once) that this process has
 * not handed out lately: the kernel may offer the same ephemeral port twice in a row, and
 * two nodes of one cluster given one port would fight over it.
 */
export function freePort(): number {
  return freePorts(1)[0];
}

/**
 * `count` distinct free ports on 127.0.0.1, none handed out lately by this process. All of
 * them are held bound until the last is found, then released together.
 */
export function freePorts(count: number): number[] {
  const held: Deno.Listener[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count && attempt < count * 64; attempt++) {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      held.push(listener);
      const port = (listener.addr as Deno.NetAddr).port;
      if (!recentPorts.includes(port)) ports.push(port);
    }
  } finally {
    for (const listener of held) listener.close();
  }
  if (ports.length < count) {
    throw new Error(`freePorts: found ${ports.length} of ${count} free ports on 127.0.0.1`);
  }
  recentPorts.push(...ports);
  recentPorts.splice(0, Math.max(0, recentPorts.length - RECENT_PORT_LIMIT));
  return ports;
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts: `sleep` of `mod/wire` under the name
 * test polling loops use. Links pace their retries with `Backoff` and `sleep` instead.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal);
}

/** One node to start. */
export interface NodeSpec {
  /** Node name (unique). */
  name: string;
  /** Its role. */
  role: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** Port; a free one when absent. */
  port?: number;
  /** Extra keys for this node in peers.json (neighbours, options). */
  entry?: Record<string, unknown>;
  /** Do not start it with the others (start later with `node.start()`). */
  deferred?: boolean;
  /** Leave it out of the peers file (a client-like process). */
  unlisted?: boolean;
  /** Event name that means ready. @default {"ready"} */
  readyEvent?: string | null;
}

/** Options of {@linkcode LocalCluster.start}. */
export interface LocalClusterOptions {
  /** The nodes. */
  nodes: NodeSpec[];
  /** Working directory for peers file, data and events; a temp dir when absent. */
  dir?: string;
  /** Peers file format. @default {"json"} */
  peersFormat?: "json" | "txt";
  /** Cluster secret written to peers.json. */
  secret?: string;
  /** TLS that `ctl` uses to reach the nodes (give the nodes `--tls-*` in their args). */
  tls?: TlsConfig;
  /** How long each node may take to become ready. @default {20000} */
  readyTimeoutMs?: number;
  /** Log level passed to every node. @default {"info"} */
  logLevel?: string;
  /** Keep stderr on the parent's stderr instead of capturing it. @default {false} */
  inheritStderr?: boolean;
  /** Extra environment. */
  env?: Record<string, string>;
}

/** One peerd process of a {@linkcode LocalCluster}; it can be killed and started again. */
export class ClusterNode {
  readonly name: string;
  readonly role: string;
  readonly port: number;
  readonly eventsPath: string;
  readonly dataDir: string;
  readonly spec: NodeSpec;
  #cluster: LocalCluster;
  #child: Deno.ChildProcess | undefined;
  #status: Promise<Deno.CommandStatus> | undefined;
  #stdout = "";
  #stderr = "";
  #pumps: Promise<void>[] = [];
  readonly #eventLog: EventLog;

  constructor(cluster: LocalCluster, spec: NodeSpec, port: number) {
    this.#cluster = cluster;
    this.spec = spec;
    this.name = spec.name;
    this.role = spec.role;
    this.port = port;
    this.eventsPath = `${cluster.dir}/${spec.name}.events.jsonl`;
    this.#eventLog = new EventLog(this.eventsPath);
    this.dataDir = `${cluster.dir}/data/${spec.name}`;
  }

  /** `127.0.0.1:port`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** The OS process id, while running. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Everything the process printed on stdout so far (all runs). */
  get stdout(): string {
    return this.#stdout;
  }

  /** Everything the process printed on stderr so far (when captured). */
  get stderr(): string {
    return this.#stderr;
  }

  /** The arguments the node runs with. */
  argv(): string[] {
    const c = this.#cluster;
    return [
      "--role",
      this.role,
      "--name",
      this.name,
      "--peers",
      c.peersPath,
      "--listen",
      this.address,
      "--data",
      this.dataDir,
      "--events",
      this.eventsPath,
      "--log-level",
      c.options.logLevel ?? "info",
      ...(this.spec.args ?? []),
    ];
  }

  /** Starts the process and waits for its ready event. */
  async start(options: { waitReady?: boolean } = {}): Promise<void> {
    if (this.#child) throw new Error(`Cannot start ${this.name}: already running`);
    const mark = this.mark();
    const inherit = this.#cluster.options.inheritStderr ?? false;
    const child = peerdCommand(this.argv(), {
      stdin: "null",
      stdout: "piped",
      stderr: inherit ? "inherit" : "piped",
      env: this.#cluster.options.env,
    }).spawn();
    this.#child = child;
    this.#pumps = [this.#pump(child.stdout, "out")];
    if (!inherit) this.#pumps.push(this.#pump(child.stderr, "err"));
    this.#status = child.status;
    const readyEvent = this.spec.readyEvent === undefined ? "ready" : this.spec.readyEvent;
    if (options.waitReady === false || readyEvent === null) return;
    const timeoutMs = this.#cluster.options.readyTimeoutMs ?? 20_000;
    const exited = this.#status.then((s) => s);
    const gaveUp = new AbortController();
    const ready = this.waitForEvent(readyEvent, { timeoutMs, from: mark, signal: gaveUp.signal })
      .then(() => undefined);
    const first = await Promise.race([ready, exited]);
    if (first !== undefined) {
      gaveUp.abort(); // it exited: stop polling for a ready event that cannot come
      await ready.catch(() => {});
      throw new Error(
        `Cannot start ${this.name}: exited with code ${
          (first as Deno.CommandStatus).code
        } before ready\n${this.#stderr.slice(-2000)}`,
      );
    }
  }

  /** Sends `signal` and waits for exit; resolves with the exit code. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<number> {
    const child = this.#child;
    if (!child) return -1;
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
    const status = await this.#status!;
    await Promise.allSettled(this.#pumps);
    this.#child = undefined;
    return status.code;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (and how long it took). */
  async stop(graceMs = 6_000): Promise<{ code: number; ms: number }> {
    const child = this.#child;
    if (!child) return { code: -1, ms: 0 };
    const t0 = performance.now();
    const status = await stopProcess(child, graceMs);
    await Promise.allSettled(this.#pumps);
    this.#child = undefined;
    return { code: status.code, ms: performance.now() - t0 };
  }

  /** Waits for the process to exit by itself; resolves with its code. */
  async exited(timeoutMs = 30_000): Promise<number> {
    if (!this.#child) return -1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const status = await Promise.race([this.#status!, timeout]);
      await Promise.allSettled(this.#pumps);
      this.#child = undefined;
      return status.code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** All events this node wrote so far (all runs). */
  events(): EventRecord[] {
    return this.#eventLog.all();
  }

  /** The current number of events: pass it as `from` to wait only for newer ones. */
  mark(): number {
    return this.events().length;
  }

  /** Waits (polling the events file every 20 ms, bounded) for an event matching `match`. */
  async waitForEvent(
    match: string | ((e: EventRecord) => boolean),
    options: { timeoutMs?: number; from?: number; signal?: AbortSignal } = {},
  ): Promise<EventRecord> {
    const pred = typeof match === "string" ? (e: EventRecord) => e.ev === match : match;
    const deadline = performance.now() + (options.timeoutMs ?? 10_000);
    let index = options.from ?? 0;
    while (performance.now() < deadline && !options.signal?.aborted) {
      const all = this.events();
      for (; index < all.length; index++) if (pred(all[index])) return all[index];
      await pause(20, options.signal);
    }
    throw new Error(
      `${this.name}: no event ${typeof match === "string" ? match : "matching"} within ${
        options.timeoutMs ?? 10_000
      } ms`,
    );
  }

  /** Sends a control command; resolves with the reply (rejects on an error reply). */
  ctl(cmd: string, args: string[] = [], options: { timeoutMs?: number } = {}): Promise<Message> {
    return ctlRequest({ hostname: "127.0.0.1", port: this.port }, cmd, args, {
      secret: this.#cluster.options.secret,
      tls: this.#cluster.options.tls,
      timeoutMs: options.timeoutMs ?? 15_000,
    });
  }

  async #pump(stream: ReadableStream<Uint8Array>, which: "out" | "err"): Promise<void> {
    const textDecoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        const text = textDecoder.decode(chunk, { stream: true });
        if (which === "out") this.#stdout = (this.#stdout + text).slice(-4_000_000);
        else this.#stderr = (this.#stderr + text).slice(-1_000_000);
      }
    } catch {
      // process gone
    }
  }
}

/**
 * Real peerd processes on 127.0.0.1. Always stop it (`await using`, or `stop()` in
 * `finally`): every process it started is ended, SIGTERM first, SIGKILL after a grace.
 */
export class LocalCluster implements AsyncDisposable {
  readonly dir: string;
  readonly peersPath: string;
  readonly options: LocalClusterOptions;
  readonly nodes: ClusterNode[] = [];
  #ownsDir: boolean;

  private constructor(options: LocalClusterOptions, dir: string, ownsDir: boolean) {
    this.options = options;
    this.dir = dir;
    this.#ownsDir = ownsDir;
    this.peersPath = `${dir}/peers.${options.peersFormat === "txt" ? "txt" : "json"}`;
  }

  /** Writes the peers file and starts every node that is not deferred, in order. */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? await Deno.makeTempDir({ prefix: "peerd-cluster-" });
    await Deno.mkdir(dir, { recursive: true });
    const cluster = new LocalCluster(options, dir, ownsDir);
    for (const spec of options.nodes) {
      cluster.nodes.push(new ClusterNode(cluster, spec, spec.port ?? freePort()));
    }
    cluster.writePeersFile();
    try {
      await Promise.all(cluster.nodes.filter((n) => !n.spec.deferred).map((n) => n.start()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** (Re)writes the peers file from the listed nodes. */
  writePeersFile(): void {
    const listed = this.nodes.filter((n) => !n.spec.unlisted);
    const text = this.options.peersFormat === "txt"
      ? listed.map((n) => `${n.name} 127.0.0.1:${n.port}`).join("\n") + "\n"
      : formatPeersJson(
        listed.map((n) => ({
          name: n.name,
          hostname: "127.0.0.1",
          port: n.port,
          role: n.role,
          ...(n.spec.entry ?? {}),
        })),
        { cluster: "test", secret: this.options.secret },
      );
    Deno.writeTextFileSync(this.peersPath, text);
  }

  /** The node called `name`. */
  node(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name} in this cluster`);
    return node;
  }

  /** Adds a node (not started) and rewrites the peers file. */
  add(spec: NodeSpec): ClusterNode {
    const node = new ClusterNode(this, spec, spec.port ?? freePort());
    this.nodes.push(node);
    this.writePeersFile();
    return node;
  }

  /** Every node's events, merged and sorted by time. */
  allEvents(): EventRecord[] {
    return this.nodes.flatMap((n) => n.events()).sort((a, b) => a.ts - b.ts);
  }

  /** Stops every running node (SIGTERM, then SIGKILL); resolves with their exit codes. */
  async stop(): Promise<Map<string, number>> {
    const codes = new Map<string, number>();
    await Promise.all(
      this.nodes.filter((n) => n.running).map(async (n) => {
        codes.set(n.name, (await n.stop()).code);
      }),
    );
    return codes;
  }

  /** Stops everything and removes the temp dir it made. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    if (this.#ownsDir && !Deno.env.get("PEERD_KEEP_TEST_DIRS")) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

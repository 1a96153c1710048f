/**
 * What a lab is asked to run (node specs, the options of `Lab.up`, the specs of a peers
 * file's nodes) and what it reports (status, the down report).
 *
 * @module
 */
import type { ClusterConfig } from "../config/mod.ts";
import { LabUsageError } from "./plan.ts";

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

/** The node specs of a peers file's nodes (`only` some of them), with the options' arguments. */
export function specsFromConfig(config: ClusterConfig, options: LabUpOptions): LabNodeSpec[] {
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

/**
 * The lab's state file (`lab.json` in the lab folder): every name the lab made, recorded
 * before it is made, every node's process, and the cuts in force. `lab down` works from it
 * alone, so a lab whose own process crashed is still removed completely.
 *
 * @module
 */
import type { Cut } from "./plan.ts";

/** The state file's name inside the lab folder. */
export const STATE_FILE = "lab.json";

/** One node as the state file records it. */
export interface LabNodeState {
  /** Node name. */
  name: string;
  /** Its role (`--role`). */
  role: string;
  /** Its namespace. */
  netns: string;
  /** Its IPv4 address. */
  ip: string;
  /** Its port. */
  port: number;
  /** Extra arguments after the common ones (expanded). */
  args: string[];
  /** Whether it is in the peers file. */
  listed: boolean;
  /** Event that means ready (null: none). */
  readyEvent: string | null;
  /** Its events file. */
  eventsPath: string;
  /** Its stdout/stderr log. */
  logPath: string;
  /** Its data directory. */
  dataDir: string;
  /** The pid of its current (or last) process. */
  pid?: number;
  /** Whether the lab paused it (SIGSTOP). */
  paused?: boolean;
  /** Extra keys of its peers.json entry. */
  entry?: Record<string, unknown>;
  /** A peerd command run instead of the role (expanded). */
  command?: string[];
}

/** The whole state of one lab. */
export interface LabState {
  /** Format version. */
  version: 1;
  /** The prefix every name carries. */
  prefix: string;
  /** The lab folder (absolute). */
  dir: string;
  /** The subnet, once chosen. */
  subnet?: string;
  /** The bridge's address. */
  bridgeIp?: string;
  /** The bridge, recorded before it is created. */
  bridge?: string;
  /** Root-namespace links the lab made (host veth ends), recorded before creation. */
  links: string[];
  /** Namespaces the lab made, recorded before creation. */
  netns: string[];
  /** The nodes. */
  nodes: LabNodeState[];
  /** Directed cuts in force. */
  cuts: Cut[];
  /** The peers file the lab wrote. */
  peersPath: string;
  /** Cluster secret, if any. */
  secret?: string;
  /** Log level passed to every node. */
  logLevel: string;
}

/** The state file path of lab folder `dir`. */
export function statePath(dir: string): string {
  return `${dir}/${STATE_FILE}`;
}

/** Writes `state` atomically (a temp file renamed over the old one). */
export function writeState(state: LabState): void {
  const path = statePath(state.dir);
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
  Deno.renameSync(tmp, path);
}

/** Reads the state of lab folder `dir`, or undefined when there is none. Throws on a broken file. */
export function readState(dir: string): LabState | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(statePath(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  const state = JSON.parse(text) as LabState;
  if (state.version !== 1 || !Array.isArray(state.nodes)) {
    throw new Error(`Cannot read ${statePath(dir)}: not a lab state file (version 1)`);
  }
  return state;
}

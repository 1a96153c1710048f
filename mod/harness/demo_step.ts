/**
 * The demo's contract with each subsystem: a step starts real processes, exercises the
 * role, and returns a few readable summary lines.
 *
 * @module
 */
import type { ClusterConfig } from "../config/mod.ts";
import type { LocalCluster, NodeSpec } from "./cluster.ts";

/** What a demo step gets. */
export interface DemoContext {
  /** A scratch directory for this step. */
  dir: string;
  /** The repo's peers file (peers.json), when present. */
  peers?: ClusterConfig;
  /** Aborted when the demo is interrupted or the step runs out of time. */
  signal: AbortSignal;
  /** Prints a progress line. */
  say(line: string): void;
  /**
   * The nodes of `role` in the peers file (with their ports), or `count` nodes named
   * `<prefix>1…` on free ports when the file has none.
   */
  nodesFor(role: string, count: number, prefix: string): NodeSpec[];
  /** Starts real processes in this step's directory; they are stopped when the step ends. */
  startCluster(
    nodes: NodeSpec[],
    options?: { peersFormat?: "json" | "txt"; secret?: string },
  ): Promise<LocalCluster>;
}

/** One subsystem's part of `peerd --role demo`. */
export interface DemoStep {
  /** Short name, as printed and as given to `--only`. */
  name: string;
  /** What it shows, one line. */
  title: string;
  /** Runs the step; resolves with summary lines (throws on failure). */
  run(ctx: DemoContext): Promise<string[]>;
}

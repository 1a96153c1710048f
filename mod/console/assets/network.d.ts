/** Types of network.js (who can reach whom, from the nodes' own state). */

/** What network.js reads of a node: the console's view of it. */
export interface NetworkNode {
  name: string;
  role: string;
  up: boolean;
  status?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

/** One link between two peers. */
export interface NetworkEdge {
  /** The ends, `a` < `b`. */
  a: string;
  b: string;
  /**
   * `ok`: both ends answer the console and reach each other; `cut`: both answer, but one
   * (`by`) or both cannot reach the other; `down`: an end does not answer the console.
   */
  state: "ok" | "cut" | "down";
  /** The ends that say they cannot reach the other one. */
  by: string[];
}

/** Links, cut links, the groups that reach each other, and each node's unreachable peers. */
export interface NetworkView {
  edges: NetworkEdge[];
  cuts: NetworkEdge[];
  groups: string[][];
  unreachable: Record<string, string[]>;
}

/** The peers `node` says it cannot reach; undefined when its role or status says nothing. */
export function unreachableFrom(
  node: NetworkNode,
  all: ReadonlyArray<{ name: string; role: string }>,
): string[] | undefined;

/** Every link between peers with its state, and the partition's groups. */
export function networkOf(nodes: readonly NetworkNode[]): NetworkView;

/**
 * The harness above the roles: local clusters of real peerd processes (free ports, a
 * generated peers file, readiness from events, kill and restart), the polling pause of
 * test and demo loops, and the demo's step contract. The demo and the integration tests
 * use it; role code never does (tests/layering_test.ts checks it).
 *
 * ```ts
 * await using cluster = await LocalCluster.start({ nodes: [{ name: "e1", role: "echo" }] });
 * const status = await cluster.node("e1").ctl("status");
 * ```
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
} from "./cluster.ts";
export type { DemoContext, DemoStep } from "./demo_step.ts";

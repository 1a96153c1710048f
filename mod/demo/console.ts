/**
 * `peerd --role demo --console`: the demo's nodes get HTTP (an `"http"` entry in their
 * peers file on a free port) and the console watches each step's cluster as it starts.
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import { type RunningConsole, startConsole } from "../console/mod.ts";
import { httpToken } from "../http/mod.ts";
import { freePorts, type LocalCluster, type NodeSpec } from "../harness/mod.ts";

/** The demo's console. */
export interface DemoConsole {
  /** The page's URL. */
  readonly url: string;
  /** The specs with fixed native ports and an HTTP address each. */
  withHttp(nodes: NodeSpec[]): NodeSpec[];
  /** Starts watching a started cluster's nodes. */
  watch(cluster: LocalCluster, secret?: string): Promise<void>;
  /** Stops the console. */
  close(): Promise<void>;
}

/** Starts an empty console on `listen`; the demo adds clusters as it starts them. */
export async function startDemoConsole(listen: string, signal: AbortSignal): Promise<DemoConsole> {
  const running: RunningConsole = await startConsole(
    { cluster: "demo", nodes: [], source: "demo", options: {} },
    { listen: parseHostPort(listen, "--console-listen", { allowZero: true }), signal },
  );
  return {
    url: running.url,
    withHttp(nodes) {
      const ports = freePorts(nodes.length * 2);
      return nodes.map((n, i) => ({
        ...n,
        port: n.port ?? ports[2 * i],
        entry: { ...(n.entry ?? {}), http: `127.0.0.1:${ports[2 * i + 1]}` },
      }));
    },
    async watch(cluster, secret) {
      running.watch.add(
        cluster.nodes.filter((n) => !n.spec.unlisted).map((n) => ({
          name: n.name,
          role: n.role,
          hostname: "127.0.0.1",
          port: n.port,
          options: { ...(n.spec.entry ?? {}) },
        })),
        { secret, token: secret ? await httpToken(secret) : undefined },
      );
    },
    close: () => running.close(),
  };
}

/**
 * Demo step for the echo role: one echo server, a round trip, and its status.
 *
 * @module
 */
import { RpcClient } from "../wire/mod.ts";
import type { DemoStep } from "../harness/mod.ts";

/** Echo round trips against a real echo process. */
export const echoDemo: DemoStep = {
  name: "echo",
  title: "echo server: round trips and ctl status",
  async run(ctx) {
    const cluster = await ctx.startCluster(ctx.nodesFor("echo", 1, "e"));
    const node = cluster.nodes[0];
    const client = await RpcClient.connect({ hostname: "127.0.0.1", port: node.port }, {
      name: "demo",
    });
    try {
      const t0 = performance.now();
      const n = 1000;
      for (let i = 0; i < n; i++) {
        const reply = await client.request({ t: "echo", data: `hello ${i}` });
        if (reply.data !== `hello ${i}`) {
          throw new Error(`echo answered ${String(reply.data)} to hello ${i}`);
        }
      }
      const ms = performance.now() - t0;
      const status = await node.ctl("status");
      return [
        `echo server ${node.name} on ${node.address}`,
        `${n} sequential round trips in ${ms.toFixed(0)} ms (${
          ((ms * 1000) / n).toFixed(0)
        } µs each)`,
        `peerd ctl ${node.address} status → echoed=${String(status.echoed)}`,
      ];
    } finally {
      await client.close();
    }
  },
};

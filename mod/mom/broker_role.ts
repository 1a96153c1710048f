/**
 * The `broker` role: wiring of {@linkcode Broker} to its store, its listener and the
 * process lifecycle.
 *
 * @module
 */
import { aborted, type RoleContext, type RoleDefinition, startNodeServer } from "../process/mod.ts";
import type { FrameServer } from "../wire/mod.ts";
import { prepareDataDir } from "../storage/mod.ts";
import { BrokerStore } from "./broker_store.ts";
import { Broker } from "./broker.ts";

/** The `broker` role. */
export const brokerRole: RoleDefinition = {
  name: "broker",
  summary: "MOM broker: catalogue of users/topics/subscriptions, durable routing to daemons",
  peers: "optional",
  defaultPort: 7401,
  examples: [
    "peerd --role broker --name b1 --peers peers.json",
    "peerd ctl 127.0.0.1:7401 status",
  ],
  async run(ctx: RoleContext): Promise<number> {
    prepareDataDir(ctx.dataDir);
    const store = new BrokerStore(`${ctx.dataDir}/broker.sqlite`);
    const broker = new Broker(ctx, store);
    let server: FrameServer;
    try {
      server = startNodeServer(ctx, {
        handlers: broker.handlers(),
        ctl: { status: () => broker.status() },
        onSessionClose: (s) => broker.sessionClosed(s),
      });
    } catch (err) {
      broker.close();
      store.close();
      throw err;
    }
    try {
      ctx.events.emit("ready", { listen: `${ctx.listen.hostname}:${server.port}` });
      ctx.log.info(`broker listening on ${ctx.listen.hostname}:${server.port}`);
      const failure = await Promise.race([aborted(ctx.signal), broker.failed]);
      if (failure) throw failure;
    } finally {
      await server.close();
      broker.close();
      store.close();
      ctx.events.emit("stopped", {});
    }
    return 0;
  },
};

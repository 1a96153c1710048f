/**
 * `peerd --role queue`: the queue engine served standalone on its listen port, durable
 * state in `<data>/queue.db`.
 *
 * @module
 */
import { aborted, type RoleContext, type RoleDefinition, startNodeServer } from "../process/mod.ts";
import { queueCtlCommands, queueStatus } from "./ctl.ts";
import { QueueEngine } from "./engine.ts";
import { queueService } from "./server.ts";
import { prepareDataDir } from "../storage/mod.ts";

/** Opens the engine under `ctx.dataDir`, events going to `ctx.events`. */
export function openEngine(ctx: RoleContext, sync = "normal"): QueueEngine {
  prepareDataDir(ctx.dataDir);
  return new QueueEngine({
    path: `${ctx.dataDir}/queue.db`,
    synchronous: sync === "full" ? "FULL" : "NORMAL",
    onEvent: (ev, fields) => {
      if (ev === "store.error") ctx.log.error(`store: ${String(fields.message)}`);
      ctx.events.emit(ev, fields);
    },
  });
}

/** The queue role. */
export const queueRole: RoleDefinition = {
  name: "queue",
  summary: "AMQP-like queue server: exchanges, durable queues, acks, confirms (SQLite)",
  peers: "optional",
  defaultPort: 7501,
  options: [
    {
      flags: "--sync <mode>",
      description: "SQLite synchronous: normal (survives kill -9) or full (survives power loss)",
      default: "normal",
      choices: ["normal", "full"],
    },
  ],
  examples: [
    "peerd --role queue --peers peers.json --name q1",
    "peerd ctl 127.0.0.1:7501 queues",
    "peerd ctl 127.0.0.1:7501 publish '' jobs hello",
  ],
  async run(ctx: RoleContext): Promise<number> {
    const engine = openEngine(ctx, String(ctx.options.sync ?? "normal"));
    const service = queueService(engine);
    let server;
    try {
      server = startNodeServer(ctx, {
        handlers: service.handlers,
        onSession: service.onSession,
        onSessionClose: service.onSessionClose,
        ctl: { ...queueCtlCommands(engine), status: () => queueStatus(engine) },
      });
    } catch (err) {
      engine.close();
      throw err;
    }
    try {
      ctx.events.emit("ready", { listen: `${ctx.listen.hostname}:${server.port}` });
      ctx.log.info(`queue listening on ${ctx.listen.hostname}:${server.port}`);
      await aborted(ctx.signal);
    } finally {
      await server.close();
      engine.close();
      ctx.events.emit("stopped", { ...engine.stats });
    }
    return 0;
  },
};

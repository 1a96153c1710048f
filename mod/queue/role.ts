/**
 * `peerd --role queue`: the queue engine served standalone on its listen port, durable
 * state in `<data>/queue.db`.
 *
 * @module
 */
import { amqpAuthenticator, AmqpListener } from "./amqp/mod.ts";
import { ConfigError, parseHostPort } from "../config/mod.ts";
import { aborted, defineRole, type RoleContext, startNodeServer } from "../process/mod.ts";
import { queueCtlCommands, queueStatus } from "./ctl.ts";
import { QueueEngine } from "./engine.ts";
import { queueService } from "./server.ts";
import { prepareDataDir } from "../storage/mod.ts";

/** Queued message bytes past which publishers are held back, unless `--max-queue-memory` says. */
export const DEFAULT_MAX_QUEUE_MEMORY = 512 * 1024 * 1024;

/** Opens the engine under `ctx.dataDir`, events going to `ctx.events` (`maxMemory` 0: no limit). */
export function openEngine(
  ctx: RoleContext,
  sync: "normal" | "full" = "normal",
  maxMemory = 0,
): QueueEngine {
  prepareDataDir(ctx.dataDir);
  return new QueueEngine({
    path: `${ctx.dataDir}/queue.db`,
    synchronous: sync === "full" ? "FULL" : "NORMAL",
    maxMemory,
    onEvent: (ev, fields) => {
      if (ev === "store.error") ctx.log.error(`store: ${String(fields.message)}`);
      ctx.events.emit(ev, fields);
    },
  });
}

/** The queue role. */
export const queueRole = defineRole({
  name: "queue",
  summary: "AMQP-like queue server: exchanges, durable queues, acks, confirms (SQLite)",
  peers: "optional",
  defaultPort: 7501,
  options: {
    sync: {
      type: "choice",
      arg: "mode",
      choices: ["normal", "full"],
      default: "normal",
      help: "SQLite synchronous: normal (survives kill -9) or full (survives power loss)",
    },
    maxQueueMemory: {
      type: "size",
      arg: "bytes",
      default: DEFAULT_MAX_QUEUE_MEMORY,
      min: 0,
      help:
        "memory pressure past this many bytes of queued message bodies: AMQP publishers get connection.blocked, native publishes 'overloaded' (0: no limit)",
    },
    amqp: {
      type: "string",
      arg: "host:port",
      help:
        "also serve AMQP 0-9-1 (RabbitMQ clients) here; a bare port means 127.0.0.1 (off by default)",
    },
  },
  examples: [
    "peerd --role queue --peers peers.json --name q1",
    "peerd --role queue --name q1 --peers peers.json --amqp 127.0.0.1:5672",
    "peerd ctl 127.0.0.1:7501 queues",
    "peerd ctl 127.0.0.1:7501 publish '' jobs hello",
  ],
  async run(ctx): Promise<number> {
    const amqpAt = amqpAddress(ctx.options.amqp);
    const engine = openEngine(ctx, ctx.options.sync, ctx.options.maxQueueMemory);
    const service = queueService(engine);
    let server;
    let amqp: AmqpListener | undefined;
    try {
      if (amqpAt) {
        amqp = AmqpListener.listen(engine, {
          ...amqpAt,
          authenticate: amqpAuthenticator({ users: amqpUsers(ctx), secret: ctx.secret }),
          maxMessageBytes: ctx.maxFrame,
          onEvent: (ev, fields) => ctx.events.emit(ev, fields),
        });
      }
      server = startNodeServer(ctx, {
        handlers: service.handlers,
        onSession: service.onSession,
        onSessionClose: service.onSessionClose,
        ctl: {
          ...queueCtlCommands(engine),
          status: () => ({ ...queueStatus(engine), amqpConnections: amqp?.connections ?? 0 }),
        },
      });
    } catch (err) {
      await amqp?.close();
      engine.close();
      throw err;
    }
    try {
      const amqpListen = amqp ? `${amqp.addr.hostname}:${amqp.addr.port}` : undefined;
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${server.port}`,
        ...(amqpListen ? { amqp: amqpListen } : {}),
      });
      ctx.log.info(
        `queue listening on ${ctx.listen.hostname}:${server.port}${
          amqpListen ? `, AMQP 0-9-1 on ${amqpListen}` : ""
        }`,
      );
      await aborted(ctx.signal);
    } finally {
      await amqp?.close();
      await server.close();
      engine.close();
      ctx.events.emit("stopped", { ...engine.stats });
    }
    return 0;
  },
});

/** `--amqp HOST:PORT` (or a bare port, on loopback); undefined when off. */
function amqpAddress(text: string | undefined): { hostname: string; port: number } | undefined {
  if (text === undefined || text === "") return undefined;
  if (/^\d+$/.test(text)) return parseHostPort(`127.0.0.1:${text}`, "--amqp", { allowZero: true });
  return parseHostPort(text, "--amqp", { allowZero: true });
}

/** The peers file's `amqpUsers` (`{"name": "password"}`). */
function amqpUsers(ctx: RoleContext): Record<string, string> | undefined {
  const v = ctx.cluster?.options.amqpUsers;
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(`${ctx.cluster!.source}: key "amqpUsers" must be an object of passwords`);
  }
  for (const [k, p] of Object.entries(v)) {
    if (typeof p !== "string") {
      throw new ConfigError(
        `${ctx.cluster!.source}: key "amqpUsers.${k}" must be a string (the password)`,
      );
    }
  }
  return v as Record<string, string>;
}

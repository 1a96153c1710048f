/**
 * Control commands over an engine (`peerd ctl HOST:PORT <cmd>`): list queues with their
 * depths, declare, bind, publish, get, purge, delete. Shared by `--role queue` and the
 * leader, which embeds the engine.
 *
 * @module
 */
import type { CtlCommands } from "../ctl/mod.ts";
import { ProtocolError } from "../wire/mod.ts";
import type { ConnectionSink, EngineConnection, QueueEngine } from "./engine.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function usage(text: string): ProtocolError {
  return new ProtocolError("bad_field", `Cannot run: usage: ${text}`);
}

function flag(args: string[], name: string): boolean {
  return args.includes(name);
}

/** The control commands (besides `status`) of an engine. */
export function queueCtlCommands(engine: QueueEngine): CtlCommands {
  const sink: ConnectionSink = {
    deliver: () => true,
    returned: () => {},
    confirmed: () => {},
    confirmFailed: () => {},
    cancelled: () => {},
  };
  let ctlConn: EngineConnection | undefined;
  const conn = () => ctlConn ??= engine.connect("ctl", sink);
  return {
    queues: () => ({ queues: engine.queues() }),
    exchanges: () => ({ exchanges: engine.exchanges() }),
    declare: (args) => {
      const name = args.find((a) => !a.startsWith("--"));
      if (name === undefined) {
        throw usage("declare <queue> [--transient] [--auto-delete] [--max-length=N]");
      }
      const max = args.find((a) => a.startsWith("--max-length="));
      const info = engine.declareQueue(undefined, name, {
        durable: !flag(args, "--transient"),
        autoDelete: flag(args, "--auto-delete"),
        maxLength: max ? Number(max.slice("--max-length=".length)) : 0,
      });
      return { ...info };
    },
    "declare-exchange": (args) => {
      const [name, type = "direct"] = args.filter((a) => !a.startsWith("--"));
      if (!name) throw usage("declare-exchange <name> [direct|fanout|topic] [--transient]");
      const created = engine.declareExchange(name, type, { durable: !flag(args, "--transient") });
      return { exchange: name, type, created };
    },
    bind: (args) => {
      const [queue, exchange, key = ""] = args;
      if (!queue || !exchange) throw usage("bind <queue> <exchange> [key]");
      engine.bindQueue(undefined, queue, exchange, key);
      return { queue, exchange, key };
    },
    publish: async (args) => {
      const rest = args.filter((a) => a !== "--transient");
      if (rest.length < 3) throw usage("publish <exchange|''> <key> <text…> [--transient]");
      const [exchange, key, ...words] = rest;
      const ex = exchange === "''" || exchange === "-" ? "" : exchange;
      const routed = engine.publish(conn(), ex, key, encoder.encode(words.join(" ")), {
        persistent: !flag(args, "--transient"),
      });
      await engine.committed();
      return { routed };
    },
    get: (args) => {
      if (!args[0]) throw usage("get <queue>");
      const d = engine.get(conn(), args[0], { noAck: true });
      if (!d) return { empty: true };
      return {
        empty: false,
        queue: d.queue,
        exchange: d.exchange,
        key: d.routingKey,
        redelivered: d.redelivered,
        body: decoder.decode(d.body),
      };
    },
    purge: (args) => {
      if (!args[0]) throw usage("purge <queue>");
      return { messages: engine.purgeQueue(undefined, args[0]) };
    },
    delete: (args) => {
      if (!args[0]) throw usage("delete <queue>");
      return { messages: engine.deleteQueue(undefined, args[0]) };
    },
  };
}

/** Status fields of an engine. */
export function queueStatus(engine: QueueEngine): Record<string, unknown> {
  const queues = engine.queues();
  return {
    queues: queues.length,
    messages: queues.reduce((n, q) => n + q.messages, 0),
    unacked: queues.reduce((n, q) => n + q.unacked, 0),
    engine_connections: engine.connectionCount,
    held_bytes: engine.heldBytes,
    memory_blocked: engine.memoryBlocked,
    ...engine.stats,
  };
}

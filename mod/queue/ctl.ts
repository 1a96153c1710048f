/**
 * Control commands over an engine (`peerd ctl HOST:PORT <cmd>`): list queues with their
 * depths, declare, bind, publish, get, purge, delete. Shared by `--role queue` and the
 * leader, which embeds the engine.
 *
 * @module
 */
import { ctlCommand, type CtlCommands } from "../ctl/mod.ts";
import type { ConnectionSink, EngineConnection, QueueEngine } from "./engine.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

const TRANSIENT = { type: "bool", help: "not stored (lost on restart)" } as const;

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
    declare: ctlCommand("declare", {
      summary: "declare a queue (durable unless --transient)",
      args: { queue: { type: "string", help: "the queue's name" } },
      flags: {
        transient: TRANSIENT,
        "auto-delete": { type: "bool", help: "deleted when its last consumer goes" },
        "max-length": {
          type: "int",
          min: 0,
          default: 0,
          help: "most messages kept (the oldest are dropped; 0: no limit)",
        },
      },
    }, (a) => ({
      ...engine.declareQueue(undefined, a.queue, {
        durable: !a.transient,
        autoDelete: a["auto-delete"],
        maxLength: a["max-length"],
      }),
    })),
    "declare-exchange": ctlCommand("declare-exchange", {
      summary: "declare an exchange (durable unless --transient)",
      args: {
        name: { type: "string", help: "the exchange's name" },
        type: {
          type: "choice",
          choices: ["direct", "fanout", "topic", "headers"],
          default: "direct",
          optional: true,
          help: "how it routes",
        },
      },
      flags: { transient: TRANSIENT },
    }, ({ name, type, transient }) => ({
      exchange: name,
      type,
      created: engine.declareExchange(name, type, { durable: !transient }),
    })),
    bind: ctlCommand("bind", {
      summary: "bind a queue to an exchange",
      args: {
        queue: { type: "string", help: "the queue" },
        exchange: { type: "string", help: "the exchange" },
        key: { type: "string", default: "", optional: true, help: "the binding key" },
      },
    }, ({ queue, exchange, key }) => {
      engine.bindQueue(undefined, queue, exchange, key);
      return { queue, exchange, key };
    }),
    publish: ctlCommand("publish", {
      summary: "publish a text message (persistent unless --transient)",
      args: {
        exchange: { type: "string", help: "the exchange ('' or - for the default one)" },
        key: { type: "string", help: "the routing key" },
        text: { type: "string", rest: true, help: "the body (the remaining words)" },
      },
      flags: { transient: TRANSIENT },
    }, async ({ exchange, key, text, transient }) => {
      const ex = exchange === "''" || exchange === "-" ? "" : exchange;
      const routed = engine.publish(conn(), ex, key, encoder.encode(text), {
        persistent: !transient,
      });
      await engine.committed();
      return { routed };
    }),
    get: ctlCommand("get", {
      summary: "take one message off a queue (acknowledged at once)",
      args: { queue: { type: "string", help: "the queue" } },
    }, ({ queue }) => {
      const d = engine.get(conn(), queue, { noAck: true });
      if (!d) return { empty: true };
      return {
        empty: false,
        queue: d.queue,
        exchange: d.exchange,
        key: d.routingKey,
        redelivered: d.redelivered,
        body: decoder.decode(d.body),
      };
    }),
    purge: ctlCommand("purge", {
      summary: "drop every ready message of a queue",
      args: { queue: { type: "string", help: "the queue" } },
    }, ({ queue }) => ({ messages: engine.purgeQueue(undefined, queue) })),
    delete: ctlCommand("delete", {
      summary: "delete a queue",
      args: { queue: { type: "string", help: "the queue" } },
    }, ({ queue }) => ({ messages: engine.deleteQueue(undefined, queue) })),
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

/**
 * Serving a {@linkcode QueueEngine} over the foundation's framed TCP: one engine
 * connection per session, frames mapped to engine operations, deliveries, returns and
 * confirms pushed back, and backpressure from the socket pausing deliveries.
 *
 * @module
 */
import {
  errorFrame,
  fieldBool,
  fieldBytes,
  fieldInt,
  fieldOptInt,
  fieldOptString,
  fieldString,
  type FrameHandler,
  type Message,
  type PeerSession,
  ProtocolError,
} from "../wire/mod.ts";
import type { ConnectionSink, EngineConnection, QueueEngine } from "./engine.ts";
import {
  HEARTBEAT_MAX_MS,
  HEARTBEAT_MIN_MS,
  HEARTBEAT_MISSES,
  MAX_NAME_LENGTH,
  QueueFrame,
} from "./protocol.ts";

const CONN_KEY = "queueConn";

function nameField(msg: Message, field: string): string {
  return fieldString(msg, field, { allowEmpty: true, maxLength: MAX_NAME_LENGTH });
}

function optMap(msg: Message, field: string): Record<string, unknown> | undefined {
  const v = msg[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) {
    throw new ProtocolError("bad_field", `Cannot accept ${msg.t}: field ${field} must be a map`, {
      field,
    });
  }
  return v as Record<string, unknown>;
}

/** A session's sink: engine output becomes frames on the socket. */
function sessionSink(session: PeerSession, onBlocked: () => void): ConnectionSink {
  return {
    deliver(d) {
      const ok = session.send({
        t: QueueFrame.Deliver,
        tag: d.consumerTag,
        dt: d.deliveryTag,
        queue: d.queue,
        ex: d.exchange,
        key: d.routingKey,
        body: d.body,
        re: d.redelivered,
        props: d.props,
      });
      if (!ok) onBlocked();
      return ok;
    },
    returned(r) {
      session.send({
        t: QueueFrame.Return,
        ex: r.exchange,
        key: r.routingKey,
        body: r.body,
        props: r.props,
        reason: r.reason,
      });
    },
    confirmed(seq) {
      session.send({ t: QueueFrame.ConfirmOk, seq });
    },
    confirmFailed(seq, err) {
      session.send({ ...errorFrame(err), t: QueueFrame.ConfirmFail, seq });
    },
    cancelled(tag) {
      session.send({ t: QueueFrame.Cancelled, tag });
    },
    open: () => !session.conn.closed,
  };
}

/** Frame handlers and session hooks that serve `engine`. */
export interface QueueService {
  /** Handlers by frame type (give them to `startNodeServer`). */
  handlers: Record<string, FrameHandler>;
  /** Opens the session's engine connection. */
  onSession(session: PeerSession): void;
  /** Closes it (unacked deliveries go back to their queues). */
  onSessionClose(session: PeerSession): void;
}

/** Builds the handlers that serve `engine` to framed sessions. */
export function queueService(engine: QueueEngine): QueueService {
  const connOf = (session: PeerSession): EngineConnection => {
    const c = session.data[CONN_KEY] as EngineConnection | undefined;
    if (!c) throw new ProtocolError("unavailable", "Cannot serve: session has no queue connection");
    return c;
  };
  const ok = (fields: Record<string, unknown> = {}): Message => ({ t: QueueFrame.Ok, ...fields });
  // sessions that announced heartbeats: closed when silent for HEARTBEAT_MISSES intervals (a
  // partitioned or paused client), so their unacked deliveries go to other consumers
  const beating = new Map<PeerSession, { intervalMs: number; last: number }>();
  let sweep: ReturnType<typeof setInterval> | undefined;
  const sweepSilent = () => {
    const now = performance.now();
    for (const [session, hb] of beating) {
      if (now - hb.last > hb.intervalMs * HEARTBEAT_MISSES) {
        beating.delete(session);
        session.conn.close();
      }
    }
    if (beating.size === 0) {
      clearInterval(sweep);
      sweep = undefined;
    }
  };
  /** One-way frames: errors go back as pushes without a rid unless one was given. */
  const oneWay = (fn: (msg: Message, c: EngineConnection) => void): FrameHandler => (msg, s) => {
    fn(msg, connOf(s));
    return msg.rid !== undefined ? ok() : undefined;
  };
  const handlers: Record<string, FrameHandler> = {
    [QueueFrame.ExchangeDeclare]: (msg) => {
      const created = engine.declareExchange(
        nameField(msg, "exchange"),
        fieldOptString(msg, "type") ?? "direct",
        {
          durable: fieldBool(msg, "durable", true),
          autoDelete: fieldBool(msg, "autoDelete", false),
          passive: fieldBool(msg, "passive", false),
        },
      );
      return ok({ created });
    },
    [QueueFrame.ExchangeDelete]: (msg) => {
      engine.deleteExchange(nameField(msg, "exchange"));
      return ok();
    },
    [QueueFrame.QueueDeclare]: (msg, s) => {
      const info = engine.declareQueue(connOf(s), nameField(msg, "queue"), {
        durable: fieldBool(msg, "durable", true),
        exclusive: fieldBool(msg, "exclusive", false),
        autoDelete: fieldBool(msg, "autoDelete", false),
        maxLength: fieldOptInt(msg, "maxLength", { min: 0 }) ?? 0,
        messageTtl: fieldOptInt(msg, "messageTtl", { min: 0 }) ?? 0,
        expires: fieldOptInt(msg, "expires", { min: 0 }) ?? 0,
        deadLetterExchange: fieldOptString(msg, "deadLetterExchange"),
        deadLetterRoutingKey: fieldOptString(msg, "deadLetterRoutingKey"),
        passive: fieldBool(msg, "passive", false),
      });
      return ok({ queue: info.name, messages: info.messages, consumers: info.consumers });
    },
    [QueueFrame.QueueDelete]: (msg, s) =>
      ok({ messages: engine.deleteQueue(connOf(s), nameField(msg, "queue")) }),
    [QueueFrame.QueuePurge]: (msg, s) =>
      ok({ messages: engine.purgeQueue(connOf(s), nameField(msg, "queue")) }),
    [QueueFrame.QueueBind]: (msg, s) => {
      engine.bindQueue(
        connOf(s),
        nameField(msg, "queue"),
        nameField(msg, "exchange"),
        nameField(msg, "key"),
      );
      return ok();
    },
    [QueueFrame.QueueUnbind]: (msg, s) => {
      engine.unbindQueue(
        connOf(s),
        nameField(msg, "queue"),
        nameField(msg, "exchange"),
        nameField(msg, "key"),
      );
      return ok();
    },
    [QueueFrame.Qos]: (msg, s) => {
      engine.qos(connOf(s), fieldInt(msg, "prefetch", { min: 0, max: 65535 }));
      return ok();
    },
    [QueueFrame.ConfirmSelect]: (_msg, s) => {
      engine.confirmSelect(connOf(s));
      return ok();
    },
    [QueueFrame.Publish]: (msg, s) => {
      const conn = connOf(s);
      let exchange: string,
        key: string,
        body: Uint8Array,
        props: Record<string, unknown> | undefined;
      let persistent: boolean, mandatory: boolean, expiration: number | undefined;
      try {
        exchange = nameField(msg, "ex");
        key = nameField(msg, "key");
        body = fieldBytes(msg, "body");
        persistent = fieldBool(msg, "persistent", false);
        mandatory = fieldBool(msg, "mandatory", false);
        props = optMap(msg, "props");
        expiration = fieldOptInt(msg, "expiration", { min: 0 });
        // under memory pressure the native protocol refuses publishes (`overloaded`)
        engine.assertMemory();
      } catch (err) {
        // a malformed or refused publish still takes its confirm number
        if (conn.confirmMode && err instanceof ProtocolError) {
          conn.publishSeq++;
          conn.sink.confirmFailed(conn.publishSeq, err);
          return;
        }
        throw err;
      }
      engine.publish(conn, exchange, key, body, { persistent, mandatory, props, expiration });
      return msg.rid !== undefined ? ok() : undefined;
    },
    [QueueFrame.Consume]: (msg, s) => {
      const tag = engine.consume(connOf(s), nameField(msg, "queue"), {
        noAck: fieldBool(msg, "noAck", false),
        prefetch: fieldOptInt(msg, "prefetch", { min: 0, max: 65535 }),
        tag: fieldOptString(msg, "tag"),
      });
      return ok({ tag });
    },
    [QueueFrame.Cancel]: (msg, s) => {
      engine.cancel(connOf(s), fieldString(msg, "tag"));
      return ok();
    },
    [QueueFrame.Ack]: oneWay((msg, c) =>
      engine.ack(c, fieldInt(msg, "dt", { min: 0 }), fieldBool(msg, "multiple", false))
    ),
    [QueueFrame.Nack]: oneWay((msg, c) =>
      engine.nack(c, fieldInt(msg, "dt", { min: 0 }), {
        multiple: fieldBool(msg, "multiple", false),
        requeue: fieldBool(msg, "requeue", true),
      })
    ),
    [QueueFrame.Get]: (msg, s) => {
      const d = engine.get(connOf(s), nameField(msg, "queue"), {
        noAck: fieldBool(msg, "noAck", false),
      });
      if (!d) return ok({ empty: true });
      return ok({
        empty: false,
        dt: d.deliveryTag,
        queue: d.queue,
        ex: d.exchange,
        key: d.routingKey,
        body: d.body,
        re: d.redelivered,
        props: d.props,
      });
    },
    [QueueFrame.List]: () => ok({ queues: engine.queues(), exchanges: engine.exchanges() }),
    [QueueFrame.Heartbeat]: (msg, s) => {
      const intervalMs = fieldInt(msg, "interval_ms", {
        min: HEARTBEAT_MIN_MS,
        max: HEARTBEAT_MAX_MS,
      });
      const hb = beating.get(s);
      if (hb) {
        hb.last = performance.now();
        hb.intervalMs = intervalMs;
      } else if (!s.conn.closed) {
        beating.set(s, { intervalMs, last: performance.now() });
        sweep ??= setInterval(sweepSilent, HEARTBEAT_MIN_MS);
      }
      return ok();
    },
    [QueueFrame.Sync]: async () => {
      await engine.committed();
      return ok();
    },
  };
  return {
    handlers,
    onSession(session) {
      let conn: EngineConnection | undefined = undefined;
      const sink = sessionSink(session, () => {
        if (session.conn.closed) return;
        session.conn.drained().then(() => {
          if (conn) engine.resume(conn);
        });
      });
      conn = engine.connect(`${session.peer.name || session.peer.role}@${session.remote}`, sink);
      session.data[CONN_KEY] = conn;
    },
    onSessionClose(session) {
      beating.delete(session);
      if (beating.size === 0 && sweep !== undefined) {
        clearInterval(sweep);
        sweep = undefined;
      }
      const conn = session.data[CONN_KEY] as EngineConnection | undefined;
      if (conn) engine.disconnect(conn);
    },
  };
}

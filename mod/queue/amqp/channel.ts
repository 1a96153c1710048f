/**
 * An AMQP channel: its state (flow, confirm numbering, the publish whose content is
 * arriving) and the methods a client sends on it apart from the hot `basic.publish` and
 * `basic.ack`: channel flow and close, exchange, queue and basic methods, confirm
 * select; each answered on the channel, errors thrown as `AmqpError` for the session to
 * turn into a channel or connection exception.
 *
 * @module
 */
import type { EngineConnection, QueueEngine } from "../engine.ts";
import { ProtocolError } from "../../wire/mod.ts";
import {
  AmqpError,
  type AmqpMethod,
  AmqpWriter,
  type FieldTable,
  writeContent,
  writeMethodFrame,
} from "./codec.ts";
import { ReplyCode } from "./constants.ts";
import type { PendingContent } from "./content.ts";
import { plainValue, rawProperties } from "./message.ts";
import { queueArguments } from "./queue_args.ts";

/** One open channel of a session; one engine connection. */
export class Channel {
  /** The channel number. */
  readonly id: number;
  /** Its engine connection (delivery tags, prefetch, confirms are per channel). */
  conn!: EngineConnection;
  /** `closing` after a channel exception, until the client's `close-ok`. */
  state: "open" | "closing" = "open";
  /** `channel.flow` active. */
  flow = true;
  /** In confirm mode. */
  confirm = false;
  /** The highest publish number confirmed (ack or nack) so far. */
  lastConfirmed = 0;
  /** The publish whose content is arriving. */
  pending?: PendingContent;
  /** While a consume is being handled, its first deliveries wait here (after consume-ok). */
  hold?: AmqpWriter;

  constructor(id: number) {
    this.id = id;
  }
}

/** What channel methods need of their session. */
export interface ChannelHost {
  /** The engine. */
  readonly engine: QueueEngine;
  /** The negotiated frame_max. */
  readonly frameMax: number;
  /** Where frames are written now. */
  readonly out: AmqpWriter;
  /** Writes one method frame and wakes the transport. */
  send(channel: number, classId: number, methodId: number, args?: Record<string, unknown>): void;
  /** Output was written directly to `out`. */
  wake(): void;
  /** `ch` was closed by the client's `channel.close`. */
  closed(ch: Channel): void;
}

/** Handles method `m` on open channel `ch`. */
export function channelMethod(host: ChannelHost, ch: Channel, m: AmqpMethod): void {
  const a = m.args;
  const e = host.engine;
  const c = ch.conn;
  const reply = (methodId: number, args?: Record<string, unknown>) => {
    if (!a.noWait) host.send(ch.id, m.classId, methodId, args);
  };
  switch (m.name) {
    case "channel.open":
      throw new AmqpError(
        ReplyCode.ChannelError,
        `second 'channel.open' seen on channel ${ch.id}`,
        20,
        10,
      );
    case "channel.flow":
      ch.flow = a.active === true;
      host.send(ch.id, 20, 21, { active: ch.flow });
      if (ch.flow) e.resume(c);
      return;
    case "channel.flow-ok":
      return;
    case "channel.close":
      host.send(ch.id, 20, 41);
      e.disconnect(c);
      host.closed(ch);
      return;
    case "channel.close-ok":
      return;
    case "exchange.declare": {
      const name = String(a.exchange);
      const args = a.arguments as FieldTable;
      if (args["alternate-exchange"] !== undefined) {
        throw new AmqpError(
          ReplyCode.NotImplemented,
          `exchange argument 'alternate-exchange' is not supported by peerd`,
          40,
          10,
        );
      }
      if (a.passive) {
        if (name !== "" && !e.exchangeInfo(name)) {
          throw new AmqpError(ReplyCode.NotFound, `no exchange '${name}' in vhost '/'`, 40, 10);
        }
      } else if (name === "") {
        throw new AmqpError(
          ReplyCode.AccessRefused,
          `operation not permitted on the default exchange`,
          40,
          10,
        );
      } else {
        e.declareExchange(name, String(a.type), {
          durable: a.durable === true,
          autoDelete: a.autoDelete === true,
          internal: a.internal === true,
        });
      }
      reply(11);
      return;
    }
    case "exchange.delete": {
      const name = String(a.exchange);
      const info = e.exchangeInfo(name);
      if (info) {
        if (a.ifUnused && info.bindings > 0) {
          throw new AmqpError(
            ReplyCode.PreconditionFailed,
            `exchange '${name}' in vhost '/' in use`,
            40,
            20,
          );
        }
        e.deleteExchange(name);
      }
      reply(21);
      return;
    }
    case "exchange.bind":
    case "exchange.unbind":
      throw new AmqpError(
        ReplyCode.NotImplemented,
        `exchange-to-exchange bindings are not supported by peerd`,
        m.classId,
        m.methodId,
      );
    case "queue.declare": {
      const info = e.declareQueue(c, String(a.queue), {
        durable: a.durable === true,
        exclusive: a.exclusive === true,
        autoDelete: a.autoDelete === true,
        ...queueArguments(a.arguments as FieldTable),
        passive: a.passive === true,
      });
      reply(11, {
        queue: info.name,
        messageCount: info.messages,
        consumerCount: info.consumers,
      });
      return;
    }
    case "queue.bind":
    case "queue.unbind": {
      const exchange = String(a.exchange);
      const info = e.exchangeInfo(exchange);
      const key = info?.type === "headers"
        ? JSON.stringify(plainValue(a.arguments as FieldTable))
        : String(a.routingKey);
      if (m.name === "queue.bind") {
        e.bindQueue(c, String(a.queue), exchange, key);
        reply(21);
      } else {
        e.unbindQueue(c, String(a.queue), exchange, key);
        host.send(ch.id, 50, 51);
      }
      return;
    }
    case "queue.purge":
      reply(31, { messageCount: e.purgeQueue(c, String(a.queue)) });
      return;
    case "queue.delete": {
      const name = String(a.queue);
      let info;
      try {
        info = e.queueInfo(c, name);
      } catch (err) {
        // deleting a queue that is not there is fine, as in RabbitMQ
        if (err instanceof ProtocolError && err.code === "not_found") {
          reply(41, { messageCount: 0 });
          return;
        }
        throw err;
      }
      if (a.ifUnused && info.consumers > 0) {
        throw new AmqpError(
          ReplyCode.PreconditionFailed,
          `queue '${name}' in vhost '/' in use`,
          50,
          40,
        );
      }
      if (a.ifEmpty && info.messages > 0) {
        throw new AmqpError(
          ReplyCode.PreconditionFailed,
          `queue '${name}' in vhost '/' is not empty`,
          50,
          40,
        );
      }
      reply(41, { messageCount: e.deleteQueue(c, name) });
      return;
    }
    case "basic.qos": {
      if (a.prefetchSize !== 0) {
        throw new AmqpError(
          ReplyCode.NotImplemented,
          `prefetch_size!=0 (${a.prefetchSize})`,
          60,
          10,
        );
      }
      e.qos(c, Number(a.prefetchCount), a.global ? { shared: true } : { existing: false });
      host.send(ch.id, 60, 11);
      return;
    }
    case "basic.consume": {
      const queue = String(a.queue);
      const tag = String(a.consumerTag);
      if (!a.noWait) ch.hold = new AmqpWriter(256);
      let got: string;
      try {
        got = e.consume(c, queue, {
          noAck: a.noAck === true,
          exclusive: a.exclusive === true,
          tag: tag === "" ? undefined : tag,
        });
      } catch (err) {
        ch.hold = undefined;
        throw err;
      }
      const held = ch.hold;
      ch.hold = undefined;
      reply(21, { consumerTag: got });
      if (held && held.length > 0) host.out.bytes(held.view());
      return;
    }
    case "basic.cancel": {
      const tag = String(a.consumerTag);
      try {
        e.cancel(c, tag);
      } catch (err) {
        if (!(err instanceof ProtocolError && err.code === "not_found")) throw err;
      }
      reply(31, { consumerTag: tag });
      return;
    }
    case "basic.get": {
      const queue = String(a.queue);
      const d = e.get(c, queue, { noAck: a.noAck === true });
      if (!d) {
        host.send(ch.id, 60, 72, { clusterId: "" });
        return;
      }
      writeMethodFrame(host.out, ch.id, 60, 71, {
        deliveryTag: d.deliveryTag,
        redelivered: d.redelivered,
        exchange: d.exchange,
        routingKey: d.routingKey,
        messageCount: e.queueInfo(c, queue).messages,
      });
      writeContent(
        host.out,
        ch.id,
        rawProperties(d.props, d.persistent),
        d.body,
        host.frameMax,
      );
      host.wake();
      return;
    }
    case "basic.ack":
      e.ack(c, Number(a.deliveryTag), a.multiple === true);
      return;
    case "basic.nack":
      e.nack(c, Number(a.deliveryTag), {
        multiple: a.multiple === true,
        requeue: a.requeue === true,
      });
      return;
    case "basic.reject":
      e.nack(c, Number(a.deliveryTag), { multiple: false, requeue: a.requeue === true });
      return;
    case "basic.recover":
    case "basic.recover-async":
      if (!a.requeue) {
        throw new AmqpError(ReplyCode.NotImplemented, "requeue=false", m.classId, m.methodId);
      }
      e.nack(c, 0, { multiple: true, requeue: true });
      if (m.name === "basic.recover") host.send(ch.id, 60, 111);
      return;
    case "confirm.select":
      e.confirmSelect(c);
      ch.confirm = true;
      reply(11);
      return;
    case "tx.select":
    case "tx.commit":
    case "tx.rollback":
      throw new AmqpError(
        ReplyCode.NotImplemented,
        "transactions (tx.*) are not supported by peerd; use publisher confirms",
        m.classId,
        m.methodId,
      );
    default:
      throw new AmqpError(
        ReplyCode.CommandInvalid,
        `'${m.name}' is not a method a client sends`,
        m.classId,
        m.methodId,
      );
  }
}

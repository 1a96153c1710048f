/**
 * The queue protocol's frame types and error codes (append-only). Requests that expect an
 * answer carry a `rid` and get `q.ok` (or `error`); `q.publish`, `q.ack` and `q.nack` are
 * one-way, and their failures come back as pushes. {@linkcode QUEUE_FRAMES} lists every
 * frame with its fields: it is the table in docs/queue.md (tests/protocol_docs_test.ts
 * compares the two, and the server's handlers with it).
 *
 * @module
 */
import type { FrameSpec } from "../wire/mod.ts";

/** Frame types of the queue protocol. */
export const QueueFrame = {
  ExchangeDeclare: "q.exchange.declare",
  ExchangeDelete: "q.exchange.delete",
  QueueDeclare: "q.queue.declare",
  QueueDelete: "q.queue.delete",
  QueuePurge: "q.queue.purge",
  QueueBind: "q.queue.bind",
  QueueUnbind: "q.queue.unbind",
  Qos: "q.qos",
  ConfirmSelect: "q.confirm",
  Publish: "q.publish",
  Consume: "q.consume",
  Cancel: "q.cancel",
  Ack: "q.ack",
  Nack: "q.nack",
  Get: "q.get",
  List: "q.list",
  Sync: "q.sync",
  /** `{interval_ms}` → `q.ok`: the client will send one every interval; the server closes it after HEARTBEAT_MISSES silent intervals. */
  Heartbeat: "q.heartbeat",
  // server → client
  Ok: "q.ok",
  Deliver: "q.deliver",
  Return: "q.return",
  ConfirmOk: "q.confirm.ok",
  ConfirmFail: "q.confirm.fail",
  Cancelled: "q.cancelled",
} as const;

/**
 * A connection that announced heartbeats (`q.heartbeat`) and sends none for this many
 * intervals is closed by the server (its unacknowledged deliveries go back to their
 * queues), and a client whose heartbeats go unanswered that long closes it too.
 */
export const HEARTBEAT_MISSES = 3;
/** Bounds of a heartbeat interval (ms). */
export const HEARTBEAT_MIN_MS = 50;
/** See {@linkcode HEARTBEAT_MIN_MS}. */
export const HEARTBEAT_MAX_MS = 600_000;

/** Error codes of the queue protocol (beside the wire's own). */
export const QueueErrorCode = {
  /** Redeclaring an exchange or queue with other properties (AMQP 406). */
  PreconditionFailed: "precondition_failed",
  /** A named exchange or queue does not exist (AMQP 404). */
  NotFound: "not_found",
  /** An exclusive queue of another connection (AMQP 405). */
  ResourceLocked: "resource_locked",
  /** Ack or nack of a delivery tag this connection does not hold (AMQP 406). */
  UnknownDeliveryTag: "unknown_delivery_tag",
  /** A reserved name (`amq.*`) or a bad argument. */
  AccessRefused: "access_refused",
  /** An unknown exchange type (AMQP 503). */
  CommandInvalid: "command_invalid",
  /** The store could not commit. */
  StoreFailed: "store_failed",
  /** The queues hold more message bytes than `--max-queue-memory`: publish later. */
  Overloaded: "overloaded",
} as const;

/** Longest exchange, queue or consumer-tag name. */
export const MAX_NAME_LENGTH = 255;

const C = "client → server";
const S = "server → client";

/** Every frame of the queue protocol. */
export const QUEUE_FRAMES: readonly FrameSpec[] = [
  {
    t: QueueFrame.ExchangeDeclare,
    route: C,
    fields: "exchange, type?, durable?, autoDelete?, passive?",
    reply: "q.ok {created}",
    note: "`type`: direct (default), fanout, topic or headers",
  },
  { t: QueueFrame.ExchangeDelete, route: C, fields: "exchange", reply: "q.ok", note: "" },
  {
    t: QueueFrame.QueueDeclare,
    route: C,
    fields: "queue, durable?, exclusive?, autoDelete?, maxLength?, messageTtl?, expires?, " +
      "deadLetterExchange?, deadLetterRoutingKey?, passive?",
    reply: "q.ok {queue, messages, consumers}",
    note: "an empty `queue` gets a server-made name `amq.gen-…`",
  },
  { t: QueueFrame.QueueDelete, route: C, fields: "queue", reply: "q.ok {messages}", note: "" },
  { t: QueueFrame.QueuePurge, route: C, fields: "queue", reply: "q.ok {messages}", note: "" },
  { t: QueueFrame.QueueBind, route: C, fields: "queue, exchange, key", reply: "q.ok", note: "" },
  { t: QueueFrame.QueueUnbind, route: C, fields: "queue, exchange, key", reply: "q.ok", note: "" },
  {
    t: QueueFrame.Qos,
    route: C,
    fields: "prefetch",
    reply: "q.ok",
    note: "unacknowledged deliveries per consumer (0: no limit)",
  },
  {
    t: QueueFrame.ConfirmSelect,
    route: C,
    fields: "",
    reply: "q.ok",
    note: "confirm mode: every later publish is numbered and confirmed",
  },
  {
    t: QueueFrame.Publish,
    route: C,
    fields: "ex, key, body, persistent?, mandatory?, props?, expiration?",
    reply: "",
    note: "one-way (`q.ok` only when it carries a `rid`); errors come back as pushes",
  },
  {
    t: QueueFrame.Consume,
    route: C,
    fields: "queue, noAck?, prefetch?, tag?",
    reply: "q.ok {tag}",
    note: "deliveries follow as `q.deliver`",
  },
  { t: QueueFrame.Cancel, route: C, fields: "tag", reply: "q.ok", note: "ends a consumer" },
  {
    t: QueueFrame.Ack,
    route: C,
    fields: "dt, multiple?",
    reply: "",
    note: "one-way; `multiple`: every delivery up to `dt`",
  },
  {
    t: QueueFrame.Nack,
    route: C,
    fields: "dt, multiple?, requeue?",
    reply: "",
    note: "one-way; `requeue` (default true) or dead-letter/drop",
  },
  {
    t: QueueFrame.Get,
    route: C,
    fields: "queue, noAck?",
    reply: "q.ok {empty, dt?, queue?, ex?, key?, body?, re?, props?}",
    note: "one message, or `empty: true`",
  },
  { t: QueueFrame.List, route: C, fields: "", reply: "q.ok {queues, exchanges}", note: "" },
  {
    t: QueueFrame.Sync,
    route: C,
    fields: "",
    reply: "q.ok",
    note: "answered once everything before it is committed",
  },
  {
    t: QueueFrame.Heartbeat,
    route: C,
    fields: "interval_ms",
    reply: "q.ok",
    note:
      "the client sends one every interval; the server closes it after HEARTBEAT_MISSES silent intervals",
  },
  { t: QueueFrame.Ok, route: S, fields: "…", reply: "", note: "the answer of a request" },
  {
    t: QueueFrame.Deliver,
    route: S,
    fields: "tag, dt, queue, ex, key, body, re, props",
    reply: "",
    note: "a delivery to consumer `tag` (`re`: redelivered)",
  },
  {
    t: QueueFrame.Return,
    route: S,
    fields: "ex, key, body, props, reason",
    reply: "",
    note: "a mandatory publish that no queue took",
  },
  {
    t: QueueFrame.ConfirmOk,
    route: S,
    fields: "seq",
    reply: "",
    note: "every publish up to `seq` is stored (confirm mode)",
  },
  {
    t: QueueFrame.ConfirmFail,
    route: S,
    fields: "seq, code, message",
    reply: "",
    note: "publish `seq` failed (confirm mode)",
  },
  {
    t: QueueFrame.Cancelled,
    route: S,
    fields: "tag",
    reply: "",
    note: "the server ended a consumer (its queue was deleted)",
  },
];

/** The routes of {@linkcode QUEUE_FRAMES}. */
export const QUEUE_ROUTES = { client: C, server: S } as const;

/**
 * The queue protocol's frame types and error codes (append-only). Requests that expect an
 * answer carry a `rid` and get `q.ok` (or `error`); `q.publish`, `q.ack` and `q.nack` are
 * one-way, and their failures come back as pushes.
 *
 * @module
 */

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

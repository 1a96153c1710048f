/**
 * `queue.declare` arguments as RabbitMQ names them, read into engine queue options:
 * `x-max-length`, `x-message-ttl`, `x-expires`, `x-dead-letter-exchange`,
 * `x-dead-letter-routing-key`, `x-overflow: drop-head`, `x-queue-type: classic`. Every
 * other argument RabbitMQ gives a meaning is refused (540), so nothing is silently ignored.
 *
 * @module
 */
import type { QueueOptions } from "../engine.ts";
import { AmqpError, type FieldTable, type FieldValue } from "./codec.ts";
import { ReplyCode } from "./constants.ts";

/** Arguments RabbitMQ knows that peerd does not implement. */
export const QUEUE_ARGS_REFUSED: ReadonlySet<string> = new Set([
  "x-max-length-bytes",
  "x-max-priority",
  "x-single-active-consumer",
  "x-queue-master-locator",
  "x-queue-leader-locator",
  "x-quorum-initial-group-size",
  "x-delivery-limit",
  "x-stream-max-segment-size-bytes",
  "x-max-age",
]);

/** The queue options `args` ask for (406 on a bad value, 540 on an argument not supported). */
export function queueArguments(
  args: FieldTable,
): Pick<
  QueueOptions,
  "maxLength" | "messageTtl" | "expires" | "deadLetterExchange" | "deadLetterRoutingKey"
> {
  let maxLength = 0;
  let messageTtl = 0;
  let expires = 0;
  let deadLetterExchange: string | undefined;
  let deadLetterRoutingKey: string | undefined;
  for (const [k, v] of Object.entries(args)) {
    if (QUEUE_ARGS_REFUSED.has(k)) {
      throw new AmqpError(
        ReplyCode.NotImplemented,
        `queue argument '${k}' is not supported by peerd`,
        50,
        10,
      );
    }
    if (k === "x-max-length") maxLength = int(k, v, 0);
    else if (k === "x-message-ttl") messageTtl = int(k, v, 0);
    else if (k === "x-expires") expires = int(k, v, 1);
    else if (k === "x-dead-letter-exchange") deadLetterExchange = str(k, v);
    else if (k === "x-dead-letter-routing-key") deadLetterRoutingKey = str(k, v);
    else if (k === "x-overflow" && v !== "drop-head") {
      throw new AmqpError(
        ReplyCode.NotImplemented,
        `x-overflow '${String(v)}' is not supported by peerd (only drop-head)`,
        50,
        10,
      );
    } else if (k === "x-queue-type" && v !== "classic") {
      throw new AmqpError(
        ReplyCode.NotImplemented,
        `queue type '${String(v)}' is not supported by peerd (only classic)`,
        50,
        10,
      );
    }
  }
  return { maxLength, messageTtl, expires, deadLetterExchange, deadLetterRoutingKey };
}

function int(k: string, v: FieldValue, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new AmqpError(
      ReplyCode.PreconditionFailed,
      `invalid arg '${k}': must be an integer ≥ ${min}`,
      50,
      10,
    );
  }
  return v;
}

function str(k: string, v: FieldValue): string {
  if (typeof v !== "string") {
    throw new AmqpError(
      ReplyCode.PreconditionFailed,
      `invalid arg '${k}': must be a string`,
      50,
      10,
    );
  }
  return v;
}

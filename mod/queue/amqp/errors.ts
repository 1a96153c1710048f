/**
 * Engine errors as AMQP exceptions: the engine's `ProtocolError` codes mapped to the
 * specification's reply codes, with the class and method of the method that failed.
 *
 * @module
 */
import { ProtocolError } from "../../wire/mod.ts";
import { AmqpError, type AmqpMethod } from "./codec.ts";
import { ReplyCode } from "./constants.ts";

const ENGINE_CODES: Record<string, number> = {
  not_found: ReplyCode.NotFound,
  resource_locked: ReplyCode.ResourceLocked,
  precondition_failed: ReplyCode.PreconditionFailed,
  unknown_delivery_tag: ReplyCode.PreconditionFailed,
  access_refused: ReplyCode.AccessRefused,
  command_invalid: ReplyCode.CommandInvalid,
  bad_field: ReplyCode.PreconditionFailed,
  store_failed: ReplyCode.InternalError,
};

/** The method `basic.publish` (class 60, method 40), for errors of a publish. */
export const BASIC_PUBLISH: AmqpMethod = {
  classId: 60,
  methodId: 40,
  name: "basic.publish",
  args: {},
};

/** `err` (an `AmqpError`, an engine `ProtocolError`, anything) as an `AmqpError` naming method `m`. */
export function asAmqpError(err: unknown, m: AmqpMethod | undefined): AmqpError {
  if (err instanceof AmqpError) {
    if (err.classId || !m) return err;
    return new AmqpError(err.code, err.message, m.classId, m.methodId);
  }
  if (err instanceof ProtocolError) {
    return new AmqpError(
      ENGINE_CODES[err.code] ?? ReplyCode.InternalError,
      err.code === "unknown_delivery_tag"
        ? `unknown delivery tag ${err.details?.deliveryTag}` // RabbitMQ's words
        : err.message,
      m?.classId ?? 0,
      m?.methodId ?? 0,
    );
  }
  return new AmqpError(
    ReplyCode.InternalError,
    err instanceof Error ? err.message : String(err),
    m?.classId ?? 0,
    m?.methodId ?? 0,
  );
}

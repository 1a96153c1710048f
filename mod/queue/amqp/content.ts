/**
 * Content assembly, pure: a `basic.publish` method frame starts a message, its content
 * header gives the size and properties, body frames fill it. Each step checks what the
 * specification requires (505 UNEXPECTED_FRAME for frames out of order or a body longer
 * than announced, 406 for a message over the size limit or a bad `expiration`).
 *
 * @module
 */
import { AmqpError, decodeContentHeader, shortString } from "./codec.ts";
import { ClassId, ReplyCode } from "./constants.ts";
import { engineProps } from "./message.ts";

/** A publish whose content is still arriving. */
export interface PendingContent {
  exchange: string;
  key: string;
  mandatory: boolean;
  bodySize: number;
  /** The message's engine props (decoded from the content header; holds the raw bytes). */
  props?: Record<string, unknown>;
  persistent: boolean;
  parts: Uint8Array[];
  received: number;
}

/** Reads the arguments of a `basic.publish` method frame in place (the hot path). */
export function startPublish(payload: Uint8Array): PendingContent {
  // class (2), method (2), ticket (2), exchange, routing key, bits
  const p = payload;
  let at = 6;
  const exLen = p[at++];
  if (at + exLen + 2 > p.length) {
    throw new AmqpError(ReplyCode.SyntaxError, "basic.publish: truncated arguments");
  }
  const exchange = shortString(p, at, exLen);
  at += exLen;
  const keyLen = p[at++];
  if (at + keyLen + 1 > p.length) {
    throw new AmqpError(ReplyCode.SyntaxError, "basic.publish: truncated arguments");
  }
  const key = shortString(p, at, keyLen);
  at += keyLen;
  const bits = p[at];
  if (bits & 2) throw new AmqpError(ReplyCode.NotImplemented, "immediate=true", 60, 40);
  return {
    exchange,
    key,
    mandatory: (bits & 1) !== 0,
    bodySize: 0,
    persistent: false,
    parts: [],
    received: 0,
  };
}

/**
 * Takes the content header of `p` (arriving on `channel`) and returns `p`; throws a
 * connection error for a header out of place. A body over the size limit is the
 * caller's to refuse (a channel error, {@linkcode tooLarge}).
 */
export function acceptHeader(
  p: PendingContent | undefined,
  channel: number,
  payload: Uint8Array,
): PendingContent {
  if (!p || p.props) {
    throw new AmqpError(
      ReplyCode.UnexpectedFrame,
      p
        ? `second content header on channel ${channel}`
        : `content header on channel ${channel} without a 'basic.publish'`,
    );
  }
  const h = decodeContentHeader(payload);
  if (h.classId !== ClassId.Basic) {
    throw new AmqpError(
      ReplyCode.FrameError,
      `content header of class ${h.classId}, expected basic (60)`,
    );
  }
  // decoded now: the header's bytes are a view of the read buffer (copied on a cache miss)
  const ep = engineProps(h.rawProperties);
  p.props = ep.props;
  p.persistent = ep.persistent;
  p.bodySize = h.bodySize;
  return p;
}

/** The channel error for a body over `maxBytes`. */
export function tooLarge(p: PendingContent, maxBytes: number): AmqpError {
  return new AmqpError(
    ReplyCode.PreconditionFailed,
    `message size ${p.bodySize} is larger than max size ${maxBytes}`,
    60,
    40,
  );
}

/** Adds a body frame to `p` (copied); returns whether the body is complete. */
export function acceptBody(
  p: PendingContent | undefined,
  channel: number,
  payload: Uint8Array,
): p is PendingContent {
  if (!p || !p.props) {
    throw new AmqpError(
      ReplyCode.UnexpectedFrame,
      `content body on channel ${channel} without a ${p ? "content header" : "'basic.publish'"}`,
    );
  }
  if (p.received + payload.length > p.bodySize) {
    throw new AmqpError(
      ReplyCode.UnexpectedFrame,
      `content body on channel ${channel} is longer than the ${p.bodySize} bytes its header announced`,
    );
  }
  p.parts.push(payload.slice());
  p.received += payload.length;
  return p.received === p.bodySize;
}

/** The body of a complete `p` in one array (the one part itself when there is one). */
export function assembleBody(p: PendingContent): Uint8Array {
  if (p.parts.length === 1) return p.parts[0];
  if (p.parts.length === 0) return new Uint8Array(0);
  const body = new Uint8Array(p.received);
  let at = 0;
  for (const part of p.parts) {
    body.set(part, at);
    at += part.length;
  }
  return body;
}

/** The `expiration` property as milliseconds (undefined when absent; 406 when not a number). */
export function expirationMs(props: Record<string, unknown>): number | undefined {
  if (props.expiration === undefined) return undefined;
  const e = String(props.expiration);
  if (!/^\d{1,15}$/.test(e)) {
    throw new AmqpError(
      ReplyCode.PreconditionFailed,
      `invalid expiration '${e.slice(0, 40)}': must be a number of milliseconds`,
      60,
      40,
    );
  }
  return Number(e);
}

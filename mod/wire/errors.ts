import { ErrorCode, type ErrorCodeValue, MAX_QUOTE_CHARS } from "./constants.ts";
import type { Message } from "./codec.ts";

/** A frame could not be decoded or violated the framing rules; `code` goes back to the peer. */
export class WireError extends Error {
  /** The error code sent to the peer in an `error` frame. */
  readonly code: ErrorCodeValue;
  /** Whether the connection must be closed after reporting (the byte stream is lost). */
  readonly fatal: boolean;

  constructor(
    code: ErrorCodeValue,
    message: string,
    options?: { cause?: unknown; fatal?: boolean },
  ) {
    super(message, { cause: options?.cause });
    this.name = "WireError";
    this.code = code;
    this.fatal = options?.fatal ?? false;
  }
}

/**
 * A request was well framed but cannot be served: unknown type, wrong field types, a
 * protocol rule broken. Handlers throw it; the server answers `{t:"error", code, message}`
 * and keeps the connection.
 */
export class ProtocolError extends Error {
  /** The error code sent to the peer. */
  readonly code: ErrorCodeValue;
  /** Extra fields copied into the error frame. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCodeValue, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.details = details;
  }
}

/** The peer answered a request with an `error` frame. */
export class RemoteError extends Error {
  /** The code from the peer's error frame. */
  readonly code: string;
  /** The whole error frame as received. */
  readonly frame: Record<string, unknown>;

  constructor(frame: Record<string, unknown>) {
    super(`${String(frame.code ?? "error")}: ${String(frame.message ?? "")}`);
    this.name = "RemoteError";
    this.code = String(frame.code ?? "error");
    this.frame = frame;
  }
}

/** The connection closed before the operation could finish. */
export class ConnectionClosedError extends Error {
  constructor(message = "Cannot complete: connection closed", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionClosedError";
  }
}

/** Longest `message` of an error frame, in characters. */
const MAX_ERROR_MESSAGE_CHARS = 1000;

/**
 * A peer's value as it may be quoted in an error message: a string cut to `max` characters
 * (with the full length said), anything else by its type. An error reply never grows with
 * what the peer sent.
 */
export function quote(value: unknown, max = MAX_QUOTE_CHARS): string {
  if (typeof value === "string") {
    return value.length <= max ? value : `${value.slice(0, max)}… (${value.length} characters)`;
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return `<${Array.isArray(value) ? "array" : typeof value}>`;
}

/**
 * Builds the `{t:"error"}` frame for any thrown value. The message is cut to 1,000
 * characters, so an error reply stays small whatever the request held.
 */
export function errorFrame(err: unknown, rid?: unknown): Message {
  const frame: Message = { t: "error" };
  if (err instanceof ProtocolError) {
    Object.assign(frame, err.details ?? {});
    frame.code = err.code;
    frame.message = err.message;
  } else if (err instanceof WireError) {
    frame.code = err.code;
    frame.message = err.message;
  } else {
    frame.code = ErrorCode.Internal;
    frame.message = err instanceof Error ? err.message : String(err);
  }
  if (typeof frame.message === "string" && frame.message.length > MAX_ERROR_MESSAGE_CHARS) {
    frame.message = quote(frame.message, MAX_ERROR_MESSAGE_CHARS);
  }
  if (rid !== undefined) frame.rid = rid;
  return frame;
}

/**
 * The smallest error frame for `err`: code, a message of at most 100 characters, and
 * `rid`; what is sent when the full error frame would not fit in a frame.
 */
export function minimalErrorFrame(err: unknown, rid?: unknown): Message {
  const full = errorFrame(err);
  const frame: Message = {
    t: "error",
    code: quote(String(full.code), 64),
    message: quote(String(full.message), 100),
  };
  if (rid !== undefined) frame.rid = rid;
  return frame;
}

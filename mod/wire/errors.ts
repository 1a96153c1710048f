import { ErrorCode, type ErrorCodeValue } from "./constants.ts";
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

/** Builds the `{t:"error"}` frame for any thrown value. */
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
  if (rid !== undefined) frame.rid = rid;
  return frame;
}

/**
 * Wire constants shared by every peerd protocol. Append-only: never renumber or reuse.
 *
 * @module
 */

/**
 * Version of the frame protocol carried in `hello` and `welcome`. v2: with a cluster
 * secret both ends prove it (the hello carries the client's nonce; docs/wire.md). A node
 * without a secret still accepts v1 hellos.
 */
export const PROTOCOL_VERSION = 2;

/** Bytes of the big-endian unsigned length that precedes every frame payload. */
export const FRAME_HEADER_BYTES = 4;

/** Default largest accepted frame payload: 16 MiB (`--max-frame`). */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/** Bytes buffered for writing on one connection before `send` reports backpressure. */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

/** How long a peer has to complete the hello (and auth) exchange. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** Bytes of the random nonce each side sends when a cluster secret is set. */
export const AUTH_NONCE_BYTES = 32;

/** Error codes carried in `{t:"error", code}` frames. */
export const ErrorCode = {
  FrameTooLarge: "frame_too_large",
  BadMsgpack: "bad_msgpack",
  NotAMap: "not_a_map",
  MissingType: "missing_type",
  UnknownType: "unknown_type",
  BadField: "bad_field",
  Unauthorized: "unauthorized",
  HelloRequired: "hello_required",
  BadVersion: "bad_version",
  UnknownCommand: "unknown_command",
  NotFound: "not_found",
  Conflict: "conflict",
  Unavailable: "unavailable",
  Timeout: "timeout",
  Internal: "internal",
  /** A client refused a server that could not prove the cluster secret. */
  Impostor: "impostor",
} as const;

/** One of the error codes in {@linkcode ErrorCode}, or a role's own code. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | string;

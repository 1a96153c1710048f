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

/** Smallest `--max-frame` a node accepts: every error reply must fit in a frame. */
export const MIN_MAX_FRAME = 1024;

/**
 * Most levels of nesting, for encoding and decoding alike, counting the root as level 1
 * (so 99 arrays around a number are fine, 100 are not), as the reference codec counts.
 * One limit for every value, whatever it holds.
 */
export const MAX_DEPTH = 100;

/**
 * Most values one frame may decode to (every array and map counts its entries plus 4 for
 * itself: an object costs more than a scalar), whatever the frame's size: a 16 MiB frame of empty maps stops here instead of
 * becoming 16 million objects.
 */
export const MAX_FRAME_ELEMENTS = 1_048_576;

/**
 * Largest frame accepted before the handshake is done (hello, auth): a peer that has not
 * said hello cannot make a node buffer a 16 MiB frame.
 */
export const HANDSHAKE_MAX_FRAME = 64 * 1024;

/** Longest string `rid` accepted on a request (numbers are always accepted). */
export const MAX_RID_LENGTH = 128;

/** Characters of a peer's value (an unknown `t`, a `cmd`) quoted in an error message. */
export const MAX_QUOTE_CHARS = 200;

/** Default most connections one node serves at once (`--max-connections`). */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Default bytes of frames that handlers still hold (a request whose reply is pending),
 * per connection: past it a request is refused with `overloaded`.
 */
export const DEFAULT_CONNECTION_PENDING_BYTES = 32 * 1024 * 1024;

/** Default bytes of frames held by pending requests over all connections of one node. */
export const DEFAULT_NODE_PENDING_BYTES = 128 * 1024 * 1024;

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
  Overloaded: "overloaded",
  TooManyConnections: "too_many_connections",
  /** A client refused a server that could not prove the cluster secret. */
  Impostor: "impostor",
} as const;

/** One of the error codes in {@linkcode ErrorCode}, or a role's own code. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | string;

/**
 * AMQP 0-9-1 constants: the protocol header, frame types, reply codes, class and method
 * ids, and the limits this server proposes in `connection.tune`. Append-only.
 *
 * @module
 */

/** The protocol header a client sends first: `AMQP` 0 0 9 1. */
export const PROTOCOL_HEADER = new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** Frame types. */
export const FrameType = {
  Method: 1,
  Header: 2,
  Body: 3,
  Heartbeat: 8,
} as const;

/** The octet that ends every frame. */
export const FRAME_END = 0xce;

/** Bytes of a frame's type, channel and size, before the payload. */
export const FRAME_HEADER_SIZE = 7;

/** Smallest frame_max a peer may ask for (the specification's frame-min-size). */
export const FRAME_MIN_SIZE = 4096;

/** frame_max this server proposes (RabbitMQ's default). */
export const DEFAULT_FRAME_MAX = 131072;

/** channel_max this server proposes (RabbitMQ's default). */
export const DEFAULT_CHANNEL_MAX = 2047;

/** Heartbeat interval this server proposes, seconds (RabbitMQ's default). */
export const DEFAULT_HEARTBEAT_S = 60;

/** Reply codes of the specification (and the names clients print). */
export const ReplyCode = {
  ReplySuccess: 200,
  ContentTooLarge: 311,
  NoRoute: 312,
  NoConsumers: 313,
  ConnectionForced: 320,
  InvalidPath: 402,
  AccessRefused: 403,
  NotFound: 404,
  ResourceLocked: 405,
  PreconditionFailed: 406,
  FrameError: 501,
  SyntaxError: 502,
  CommandInvalid: 503,
  ChannelError: 504,
  UnexpectedFrame: 505,
  ResourceError: 506,
  NotAllowed: 530,
  NotImplemented: 540,
  InternalError: 541,
} as const;

/** The name of a reply code as RabbitMQ prints it in reply texts (`NOT_FOUND - …`). */
export const REPLY_NAMES: Record<number, string> = {
  200: "OK",
  311: "CONTENT_TOO_LARGE",
  312: "NO_ROUTE",
  313: "NO_CONSUMERS",
  320: "CONNECTION_FORCED",
  402: "INVALID_PATH",
  403: "ACCESS_REFUSED",
  404: "NOT_FOUND",
  405: "RESOURCE_LOCKED",
  406: "PRECONDITION_FAILED",
  501: "FRAME_ERROR",
  502: "SYNTAX_ERROR",
  503: "COMMAND_INVALID",
  504: "CHANNEL_ERROR",
  505: "UNEXPECTED_FRAME",
  506: "RESOURCE_ERROR",
  530: "NOT_ALLOWED",
  540: "NOT_IMPLEMENTED",
  541: "INTERNAL_ERROR",
};

/** Whether a reply code is a connection exception (the others close only the channel). */
export function isHardError(code: number): boolean {
  return code === 320 || code === 402 || code >= 500;
}

/** Class ids. */
export const ClassId = {
  Connection: 10,
  Channel: 20,
  Exchange: 40,
  Queue: 50,
  Basic: 60,
  Confirm: 85,
  Tx: 90,
} as const;

/**
 * Connection negotiation, pure: what the server offers in `connection.start` and
 * `connection.tune`, and the checks of the client's `start-ok` (login: PLAIN or
 * AMQPLAIN), `tune-ok` (frame_max, channel_max, heartbeat) and `open` (vhost `/`).
 * Each check returns what was agreed or throws the `AmqpError` the specification says.
 *
 * @module
 */
import { AmqpError, AmqpReader, type FieldTable } from "./codec.ts";
import { FRAME_MIN_SIZE, ReplyCode } from "./constants.ts";

/** Checks a login; returns true to let the user in. */
export type AmqpAuthenticate = (user: string, password: string, mechanism: string) => boolean;

/** `server-properties` of `connection.start`. */
export const SERVER_PROPERTIES: FieldTable = {
  product: "peerd",
  version: "0.1.0",
  platform: "Deno",
  information: "peerd queue role, AMQP 0-9-1 listener",
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: false,
    "basic.nack": true,
    consumer_cancel_notify: true,
    "connection.blocked": true,
    consumer_priorities: false,
    authentication_failure_close: true,
    per_consumer_qos: true,
    direct_reply_to: false,
  },
};

/** The arguments of `connection.start`. */
export const START_ARGS = {
  versionMajor: 0,
  versionMinor: 9,
  serverProperties: SERVER_PROPERTIES,
  mechanisms: "PLAIN AMQPLAIN",
  locales: "en_US",
};

/** What `start-ok` agreed: who logged in, and the client capabilities the server honours. */
export interface StartOk {
  user: string;
  /** The client takes `basic.cancel` from the server. */
  cancelNotify: boolean;
  /** The client takes `connection.blocked` / `unblocked`. */
  blockedNotify: boolean;
}

/** Checks `connection.start-ok` (403 on a refused or malformed login). */
export function acceptStartOk(
  args: Record<string, unknown>,
  authenticate: AmqpAuthenticate,
): StartOk {
  const caps = (args.clientProperties as FieldTable | undefined)?.capabilities;
  const table = caps && typeof caps === "object" && !Array.isArray(caps) ? caps as FieldTable : {};
  const mech = String(args.mechanism);
  const login = parseLogin(mech, args.response as Uint8Array);
  if (!login) {
    throw new AmqpError(
      ReplyCode.AccessRefused,
      `unsupported authentication mechanism '${mech}' (PLAIN, AMQPLAIN) or malformed response`,
      10,
      11,
    );
  }
  if (!authenticate(login.user, login.password, mech)) {
    throw new AmqpError(
      ReplyCode.AccessRefused,
      `Login was refused using authentication mechanism ${mech}. For details see the peerd log.`,
      10,
      11,
    );
  }
  return {
    user: login.user,
    cancelNotify: table.consumer_cancel_notify === true,
    blockedNotify: table["connection.blocked"] === true,
  };
}

/** What `tune-ok` agreed. */
export interface Tuned {
  frameMax: number;
  channelMax: number;
  heartbeatMs: number;
}

/** Checks `connection.tune-ok` against what the server offered (530 on a frame_max out of range). */
export function acceptTuneOk(
  args: Record<string, unknown>,
  offered: { frameMax: number; channelMax: number },
): Tuned {
  const frameMax = Number(args.frameMax);
  if (frameMax !== 0 && frameMax < FRAME_MIN_SIZE) {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `frame_max=${frameMax} < ${FRAME_MIN_SIZE} min size`,
      10,
      31,
    );
  }
  if (frameMax > offered.frameMax) {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `frame_max=${frameMax} > ${offered.frameMax} max size`,
      10,
      31,
    );
  }
  const channelMax = Number(args.channelMax);
  return {
    frameMax: frameMax === 0 ? offered.frameMax : frameMax,
    channelMax: channelMax === 0 ? offered.channelMax : Math.min(channelMax, offered.channelMax),
    heartbeatMs: Number(args.heartbeat) * 1000,
  };
}

/** Checks `connection.open` (530 for any vhost but `/`). */
export function acceptOpen(args: Record<string, unknown>): void {
  const vhost = String(args.virtualHost);
  if (vhost !== "/") {
    throw new AmqpError(
      ReplyCode.NotAllowed,
      `vhost '${vhost}' not found (peerd has the one vhost '/')`,
      10,
      40,
    );
  }
}

const decoder = new TextDecoder();

/** Parses a start-ok response: PLAIN (`[authzid] NUL user NUL password`) or AMQPLAIN (a table without its size). */
export function parseLogin(
  mechanism: string,
  response: Uint8Array,
): { user: string; password: string } | undefined {
  if (mechanism === "PLAIN") {
    const parts = decoder.decode(response).split("\u0000");
    if (parts.length !== 3) return undefined;
    return { user: parts[1], password: parts[2] };
  }
  if (mechanism === "AMQPLAIN") {
    const framed = new Uint8Array(4 + response.length);
    new DataView(framed.buffer).setUint32(0, response.length);
    framed.set(response, 4);
    try {
      const t = new AmqpReader(framed).table();
      if (typeof t.LOGIN !== "string" || typeof t.PASSWORD !== "string") return undefined;
      return { user: t.LOGIN, password: t.PASSWORD };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The hello/welcome exchange that opens every connection, with the optional HMAC-SHA256
 * challenge when the cluster has a secret.
 *
 * Server: reads `{t:"hello", v, role, name}`; with a secret sends `{t:"challenge", nonce}`
 * and expects `{t:"auth", proof}` = HMAC-SHA256(secret, nonce); answers
 * `{t:"welcome", v, role, name}` or `{t:"error"}` and closes.
 *
 * @module
 */
import type { Message } from "./codec.ts";
import type { FrameConnection } from "./connection.ts";
import {
  AUTH_NONCE_BYTES,
  ErrorCode,
  HANDSHAKE_TIMEOUT_MS,
  PROTOCOL_VERSION,
} from "./constants.ts";
import { errorFrame, ProtocolError, RemoteError, WireError } from "./errors.ts";

/** Who is on the other end, as told in its hello or welcome. */
export interface PeerIdentity {
  /** The peer's role (`ctl` for control clients, `client` for applications). */
  role: string;
  /** The peer's node or client name. */
  name: string;
}

/** Options of the handshake functions. */
export interface HandshakeOptions extends PeerIdentity {
  /** The cluster secret; when set, peers must prove they know it. */
  secret?: string;
  /** How long the whole exchange may take. @default {5000} */
  timeoutMs?: number;
  /** Cancels the exchange. */
  signal?: AbortSignal;
}

const textEncoder = new TextEncoder();

/** Computes HMAC-SHA256(secret, nonce). */
export async function authProof(secret: string, nonce: Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    textEncoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, nonce as Uint8Array<ArrayBuffer>));
}

async function verifyProof(secret: string, nonce: Uint8Array, proof: unknown): Promise<boolean> {
  if (!(proof instanceof Uint8Array)) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    textEncoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  return await crypto.subtle.verify(
    "HMAC",
    key,
    proof as Uint8Array<ArrayBuffer>,
    nonce as Uint8Array<ArrayBuffer>,
  );
}

async function readWithin(conn: FrameConnection, signal: AbortSignal): Promise<Message | null> {
  if (signal.aborted) {
    throw new ProtocolError(ErrorCode.Timeout, "Cannot finish handshake: timed out");
  }
  const onAbort = () => conn.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const msg = await conn.read();
    if (msg === null && signal.aborted) {
      throw new ProtocolError(ErrorCode.Timeout, "Cannot finish handshake: timed out");
    }
    return msg;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function handshakeSignal(options: HandshakeOptions): AbortSignal {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  return options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
}

async function refuse(conn: FrameConnection, err: ProtocolError): Promise<never> {
  if (!conn.closed) {
    conn.send(errorFrame(err));
    await conn.end(500);
  }
  throw err;
}

/**
 * Runs the server side of the handshake. Resolves with the peer's identity; on failure
 * sends an error frame, closes the connection and throws.
 */
export async function acceptHandshake(
  conn: FrameConnection,
  options: HandshakeOptions,
): Promise<PeerIdentity> {
  const signal = handshakeSignal(options);
  let hello: Message | null;
  try {
    hello = await readWithin(conn, signal);
  } catch (err) {
    if (err instanceof WireError) {
      return await refuse(conn, new ProtocolError(err.code, err.message));
    }
    throw err;
  }
  if (hello === null) {
    throw new ProtocolError(ErrorCode.HelloRequired, "Cannot finish handshake: peer left");
  }
  if (hello.t !== "hello") {
    return await refuse(
      conn,
      new ProtocolError(
        ErrorCode.HelloRequired,
        `Cannot accept ${hello.t}: the first frame must be hello`,
      ),
    );
  }
  if (hello.v !== PROTOCOL_VERSION) {
    return await refuse(
      conn,
      new ProtocolError(
        ErrorCode.BadVersion,
        `Cannot speak protocol v${String(hello.v)}: this node speaks v${PROTOCOL_VERSION}`,
      ),
    );
  }
  const peer: PeerIdentity = {
    role: typeof hello.role === "string" ? hello.role : "client",
    name: typeof hello.name === "string" ? hello.name : "",
  };
  if (options.secret) {
    const nonce = crypto.getRandomValues(new Uint8Array(AUTH_NONCE_BYTES));
    conn.send({ t: "challenge", nonce });
    let answer: Message | null;
    try {
      answer = await readWithin(conn, signal);
    } catch (err) {
      if (err instanceof WireError) {
        return await refuse(conn, new ProtocolError(ErrorCode.Unauthorized, err.message));
      }
      throw err;
    }
    if (
      answer === null || answer.t !== "auth" ||
      !(await verifyProof(options.secret, nonce, answer.proof))
    ) {
      return await refuse(
        conn,
        new ProtocolError(
          ErrorCode.Unauthorized,
          "Cannot accept peer: wrong or missing cluster secret proof",
        ),
      );
    }
  }
  conn.send({ t: "welcome", v: PROTOCOL_VERSION, role: options.role, name: options.name });
  return peer;
}

/**
 * Runs the client side of the handshake. Resolves with the server's identity; throws
 * `RemoteError` when the server refuses (for example `unauthorized`).
 */
export async function offerHandshake(
  conn: FrameConnection,
  options: HandshakeOptions,
): Promise<PeerIdentity> {
  const signal = handshakeSignal(options);
  conn.send({ t: "hello", v: PROTOCOL_VERSION, role: options.role, name: options.name });
  for (let step = 0; step < 3; step++) {
    const msg = await readWithin(conn, signal);
    if (msg === null) {
      throw new ProtocolError(
        ErrorCode.Unavailable,
        "Cannot finish handshake: server closed the connection",
      );
    }
    if (msg.t === "welcome") {
      return { role: String(msg.role ?? ""), name: String(msg.name ?? "") };
    }
    if (msg.t === "error") throw new RemoteError(msg);
    if (msg.t === "challenge") {
      if (!options.secret) {
        conn.close();
        throw new ProtocolError(
          ErrorCode.Unauthorized,
          "Cannot join: the server needs a cluster secret (--secret)",
        );
      }
      if (!(msg.nonce instanceof Uint8Array)) {
        throw new ProtocolError(ErrorCode.BadField, "Cannot answer challenge: nonce is not bytes");
      }
      conn.send({ t: "auth", proof: await authProof(options.secret, msg.nonce) });
      continue;
    }
    throw new ProtocolError(ErrorCode.UnknownType, `Cannot finish handshake: unexpected ${msg.t}`);
  }
  throw new ProtocolError(ErrorCode.Unavailable, "Cannot finish handshake: too many steps");
}

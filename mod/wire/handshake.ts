/**
 * The hello/welcome exchange that opens every connection, with mutual HMAC-SHA256
 * authentication when the cluster has a secret (protocol v2).
 *
 * Without a secret: `{t:"hello", v, role, name}` → `{t:"welcome", v, role, name}`.
 *
 * With a secret both ends prove it, each against the other's fresh nonce:
 *
 * 1. client → `{t:"hello", v:2, role, name, nonce: Nc}` (32 random bytes)
 * 2. server → `{t:"challenge", nonce: Ns, role, name, proof: Ps}`
 * 3. client checks `Ps`; if it is wrong or missing the client closes at once (code
 *    `impostor`), having sent nothing but its hello. Otherwise → `{t:"auth", proof: Pc}`
 * 4. server checks `Pc` → `{t:"welcome", v:2, role, name}`, or `{t:"error",
 *    code:"unauthorized"}` and a close.
 *
 * `Ps` and `Pc` are HMAC-SHA256(secret, transcript) where the transcript
 * ({@linkcode authTranscript}) is a domain-separated, length-prefixed encoding of the
 * direction (`server` or `client` proof), both nonces, and both roles and names. A proof
 * is therefore valid for one connection and one direction only: a recorded proof does not
 * verify against a fresh nonce (replay), and a server's proof sent back as a client proof
 * does not verify either (reflection). What this does not stop — a relay that passes every
 * frame between a real client and a real server, then tampers with frames after the
 * handshake — is what TLS is for (docs/wire.md, "Security").
 *
 * A server with a secret refuses v1 hellos (v1 authenticated only the client); without a
 * secret it still accepts them.
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
  /** The cluster secret; when set, both ends must prove they know it. */
  secret?: string;
  /** How long the whole exchange may take. @default {5000} */
  timeoutMs?: number;
  /** Cancels the exchange. */
  signal?: AbortSignal;
}

/** Which side a proof comes from; part of the transcript, so proofs cannot be reflected. */
export type ProofDirection = "server" | "client";

/** The fields a proof binds. */
export interface AuthTranscript {
  /** The client's nonce (from its hello). */
  clientNonce: Uint8Array;
  /** The server's nonce (from its challenge). */
  serverNonce: Uint8Array;
  /** The client's identity from its hello. */
  client: PeerIdentity;
  /** The server's identity from its challenge. */
  server: PeerIdentity;
}

/** The oldest hello version a server without a secret still accepts. */
const OLDEST_VERSION = 1;
const DOMAIN = "peerd-auth-v2";
const textEncoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      textEncoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    if (keys.size > 16) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

/**
 * The bytes a proof signs: the domain `peerd-auth-v2`, the direction, both nonces and both
 * identities, each field preceded by its 4-byte big-endian length (so no two different
 * transcripts encode alike).
 */
export function authTranscript(direction: ProofDirection, t: AuthTranscript): Uint8Array {
  const fields = [
    textEncoder.encode(DOMAIN),
    textEncoder.encode(`${direction}-proof`),
    t.clientNonce,
    t.serverNonce,
    textEncoder.encode(t.client.role),
    textEncoder.encode(t.client.name),
    textEncoder.encode(t.server.role),
    textEncoder.encode(t.server.name),
  ];
  const size = fields.reduce((n, f) => n + 4 + f.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const f of fields) {
    view.setUint32(at, f.length);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  return out;
}

/** Computes the proof of `direction` over the transcript: HMAC-SHA256(secret, transcript). */
export async function authProof(
  secret: string,
  direction: ProofDirection,
  transcript: AuthTranscript,
): Promise<Uint8Array> {
  const data = authTranscript(direction, transcript) as Uint8Array<ArrayBuffer>;
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), data));
}

/** Checks a proof in constant time (WebCrypto verify); anything but 32 bytes fails. */
async function verifyProof(
  secret: string,
  direction: ProofDirection,
  transcript: AuthTranscript,
  proof: unknown,
): Promise<boolean> {
  if (!(proof instanceof Uint8Array) || proof.length !== 32) return false;
  const data = authTranscript(direction, transcript) as Uint8Array<ArrayBuffer>;
  return await crypto.subtle.verify(
    "HMAC",
    await hmacKey(secret),
    proof as Uint8Array<ArrayBuffer>,
    data,
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

function isNonce(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === AUTH_NONCE_BYTES;
}

function short(v: unknown): string {
  return String(v).slice(0, 40);
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
        `Cannot accept ${short(hello.t)}: the first frame must be hello`,
      ),
    );
  }
  const v = hello.v;
  const oldest = options.secret ? PROTOCOL_VERSION : OLDEST_VERSION;
  if (typeof v !== "number" || v < oldest || v > PROTOCOL_VERSION) {
    return await refuse(
      conn,
      new ProtocolError(
        ErrorCode.BadVersion,
        `Cannot speak protocol v${short(v)}: this node speaks v${PROTOCOL_VERSION}${
          options.secret ? " (mutual authentication)" : ` (and v${OLDEST_VERSION})`
        }`,
      ),
    );
  }
  const peer: PeerIdentity = {
    role: typeof hello.role === "string" ? hello.role : "client",
    name: typeof hello.name === "string" ? hello.name : "",
  };
  if (options.secret) {
    if (!isNonce(hello.nonce)) {
      return await refuse(
        conn,
        new ProtocolError(
          ErrorCode.Unauthorized,
          `Cannot accept peer: this node needs a cluster secret, and hello must carry a ${AUTH_NONCE_BYTES}-byte nonce`,
        ),
      );
    }
    const transcript: AuthTranscript = {
      clientNonce: hello.nonce,
      serverNonce: crypto.getRandomValues(new Uint8Array(AUTH_NONCE_BYTES)),
      client: peer,
      server: { role: options.role, name: options.name },
    };
    conn.send({
      t: "challenge",
      nonce: transcript.serverNonce,
      role: options.role,
      name: options.name,
      proof: await authProof(options.secret, "server", transcript),
    });
    let answer: Message | null;
    try {
      answer = await readWithin(conn, signal);
    } catch (err) {
      if (err instanceof WireError) {
        return await refuse(conn, new ProtocolError(ErrorCode.Unauthorized, err.message));
      }
      throw err;
    }
    if (answer === null) {
      throw new ProtocolError(ErrorCode.Unauthorized, "Cannot finish handshake: peer left");
    }
    if (
      answer.t !== "auth" ||
      !(await verifyProof(options.secret, "client", transcript, answer.proof))
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
 * Runs the client side of the handshake. Resolves with the server's identity. With a
 * secret, resolves only once the server has proved it; a server that cannot gets the
 * connection closed and a `ProtocolError` with code `impostor` (nothing but the hello was
 * sent to it). Throws `RemoteError` when the server refuses (for example `unauthorized`).
 */
export async function offerHandshake(
  conn: FrameConnection,
  options: HandshakeOptions,
): Promise<PeerIdentity> {
  const signal = handshakeSignal(options);
  const self: PeerIdentity = { role: options.role, name: options.name };
  const clientNonce = options.secret
    ? crypto.getRandomValues(new Uint8Array(AUTH_NONCE_BYTES))
    : undefined;
  conn.send({
    t: "hello",
    v: PROTOCOL_VERSION,
    role: self.role,
    name: self.name,
    ...(clientNonce ? { nonce: clientNonce } : {}),
  });
  const impostor = (why: string): never => {
    conn.close();
    throw new ProtocolError(
      ErrorCode.Impostor,
      `Cannot trust the server: ${why}; it cannot prove the cluster secret this end holds (an impostor, a node without --secret, or a different secret)`,
    );
  };
  let proved = false;
  for (let step = 0; step < 3; step++) {
    const msg = await readWithin(conn, signal);
    if (msg === null) {
      throw new ProtocolError(
        ErrorCode.Unavailable,
        "Cannot finish handshake: server closed the connection",
      );
    }
    if (msg.t === "welcome") {
      if (clientNonce && !proved) impostor("it answered hello with welcome, without a proof");
      return { role: String(msg.role ?? ""), name: String(msg.name ?? "") };
    }
    if (msg.t === "error") throw new RemoteError(msg);
    if (msg.t === "challenge") {
      if (!options.secret || !clientNonce) {
        conn.close();
        throw new ProtocolError(
          ErrorCode.Unauthorized,
          "Cannot join: the server needs a cluster secret (--secret)",
        );
      }
      if (proved || !isNonce(msg.nonce)) impostor("its challenge is malformed");
      const transcript: AuthTranscript = {
        clientNonce,
        serverNonce: msg.nonce as Uint8Array,
        client: self,
        server: {
          role: typeof msg.role === "string" ? msg.role : "",
          name: typeof msg.name === "string" ? msg.name : "",
        },
      };
      if (!(await verifyProof(options.secret, "server", transcript, msg.proof))) {
        impostor("its proof is wrong or missing");
      }
      proved = true;
      conn.send({ t: "auth", proof: await authProof(options.secret, "client", transcript) });
      continue;
    }
    if (clientNonce && !proved) impostor(`it answered hello with ${short(msg.t)}`);
    throw new ProtocolError(
      ErrorCode.UnknownType,
      `Cannot finish handshake: unexpected ${short(msg.t)}`,
    );
  }
  throw new ProtocolError(ErrorCode.Unavailable, "Cannot finish handshake: too many steps");
}

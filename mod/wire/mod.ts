/**
 * The wire: frame codec (4-byte big-endian length + MessagePack map with `t`), framed
 * connections with coalesced writes and backpressure, the hello/welcome handshake with
 * optional HMAC auth, a request/reply client, and a dispatching server.
 *
 * ```ts
 * const server = new FrameServer({
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   identity: { role: "echo", name: "e1" },
 *   handlers: { echo: (msg) => ({ t: "echo.ok", data: msg.data }) },
 * });
 * const client = await RpcClient.connect({ hostname: "127.0.0.1", port: server.port });
 * await client.request({ t: "echo", data: "hi" });
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export {
  fieldNames,
  type FrameMismatch,
  frameProblems,
  framesOf,
  type FrameSpec,
  type OptionalFields,
  repliesOf,
  type RequiredFields,
} from "./frame_spec.ts";
export {
  ByteBuffer,
  type CodecOptions,
  encodeValue,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameEncoder,
  FrameWriter,
  type FrameWriterOptions,
  type Message,
} from "./codec.ts";
export {
  ENCODED,
  MsgpackEncodeError,
  MsgpackEncoder,
  type MsgpackEncoderOptions,
  type PreEncoded,
} from "./msgpack_encoder.ts";
export {
  MsgpackDecodeError,
  MsgpackDecoder,
  type MsgpackDecoderOptions,
} from "./msgpack_decoder.ts";
export { ShapeCache } from "./msgpack_shapes.ts";
export {
  type ByteBudget,
  type ByteStream,
  FrameConnection,
  type FrameConnectionOptions,
} from "./connection.ts";
export {
  ConnectionClosedError,
  errorFrame,
  minimalErrorFrame,
  ProtocolError,
  quote,
  RemoteError,
  WireError,
} from "./errors.ts";
export {
  acceptHandshake,
  authProof,
  type AuthTranscript,
  authTranscript,
  type HandshakeOptions,
  offerHandshake,
  type PeerIdentity,
  type ProofDirection,
} from "./handshake.ts";
export {
  dial,
  type DialAddress,
  type DialOptions,
  dialRaw,
  type LinkSecurity,
  type RequestOptions,
  RpcClient,
} from "./client.ts";
export { connectTls, loadNodeTls, type TlsConfig, TlsListener, type TlsRefusal } from "./tls.ts";
export { type FrameHandler, FrameServer, type FrameServerOptions, PeerSession } from "./server.ts";
export * from "./fields.ts";
export { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
export {
  type Clock,
  retryConnect,
  type RetryConnectOptions,
  type RetryFailure,
  systemClock,
} from "./retry.ts";
export {
  heartbeat,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_SILENCE_MS,
  type HeartbeatOptions,
} from "./heartbeat.ts";
export {
  LinkDownError,
  type LinkRequestOptions,
  type PeerAddress,
  PeerLink,
  type PeerLinkOptions,
  PeerLinks,
  type PeerLinksOptions,
} from "./peer_link.ts";

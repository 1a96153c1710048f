/**
 * One AMQP 0-9-1 connection as a pure state machine over the queue engine: bytes and
 * `now` in ({@linkcode AmqpSession.receive}, {@linkcode AmqpSession.tick}), bytes out
 * ({@linkcode AmqpSession.takeOutput}) and engine calls made synchronously. No sockets,
 * no timers: the TCP adapter (`listener.ts`) reads, writes and ticks; the tests feed bytes.
 *
 * Each AMQP channel is one engine connection, so delivery tags, prefetch, confirm numbers
 * and unacknowledged deliveries are per channel as the specification says; the channels
 * of one AMQP connection share its exclusive queues (an engine owner).
 *
 * @module
 */
import type { Delivery, EngineConnection, QueueEngine } from "../engine.ts";
import { ProtocolError } from "../../wire/mod.ts";
import {
  AmqpError,
  AmqpFrameDecoder,
  type AmqpMethod,
  AmqpReader,
  AmqpWriter,
  decodeContentHeader,
  decodeMethod,
  type FieldTable,
  type FieldValue,
  methodName,
  shortString,
  writeContent,
  writeMethodFrame,
} from "./codec.ts";
import {
  ClassId,
  DEFAULT_CHANNEL_MAX,
  DEFAULT_FRAME_MAX,
  DEFAULT_HEARTBEAT_S,
  FRAME_END,
  FRAME_MIN_SIZE,
  FrameType,
  isHardError,
  PROTOCOL_HEADER,
  ReplyCode,
} from "./constants.ts";
import { engineProps, plainValue, rawProperties } from "./message.ts";

/** What the session needs from its transport. */
export interface AmqpTransport {
  /** New output waits in `takeOutput()`. */
  wake(): void;
  /** Bytes handed to the socket and not yet written (for backpressure). */
  pendingBytes(): number;
  /** Close the socket once the output taken so far is written. */
  end(): void;
}

/** Checks a login; returns true to let the user in. */
export type AmqpAuthenticate = (user: string, password: string, mechanism: string) => boolean;

/** Options of {@linkcode AmqpSession}. */
export interface AmqpSessionOptions {
  /** Checks logins. */
  authenticate: AmqpAuthenticate;
  /** A name for events (`user@remote`). */
  label?: string;
  /** frame_max proposed in tune. @default {131072} */
  frameMax?: number;
  /** channel_max proposed in tune. @default {2047} */
  channelMax?: number;
  /** Heartbeat proposed in tune, seconds (0 = off). @default {60} */
  heartbeat?: number;
  /** Largest message body accepted (406 beyond it). @default {16 MiB} */
  maxMessageBytes?: number;
  /** Output bytes waiting above which deliveries pause. @default {1 MiB} */
  highWaterMark?: number;
  /** How long the handshake may take, ms. @default {10000} */
  handshakeTimeoutMs?: number;
  /** `now` at creation (ms, any monotonic clock). @default {0} */
  now?: number;
  /** Events (`amqp.open`, `amqp.close`, `amqp.error`). */
  onEvent?: (ev: string, fields: Record<string, unknown>) => void;
}

type Phase = "header" | "start" | "tune" | "open" | "running" | "closing" | "closed";

interface PendingContent {
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

class Channel {
  readonly id: number;
  conn!: EngineConnection;
  state: "open" | "closing" = "open";
  flow = true;
  confirm = false;
  lastConfirmed = 0;
  pending?: PendingContent;
  /** While a consume is being handled, its first deliveries wait here (after consume-ok). */
  hold?: AmqpWriter;

  constructor(id: number) {
    this.id = id;
  }
}

const SERVER_PROPERTIES: FieldTable = {
  product: "peerd",
  version: "0.1.0",
  platform: "Deno",
  information: "peerd queue role, AMQP 0-9-1 listener",
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: false,
    "basic.nack": true,
    consumer_cancel_notify: true,
    "connection.blocked": false,
    consumer_priorities: false,
    authentication_failure_close: true,
    per_consumer_qos: true,
    direct_reply_to: false,
  },
};

const ENGINE_CODES: Record<string, number> = {
  not_found: ReplyCode.NotFound,
  resource_locked: ReplyCode.ResourceLocked,
  precondition_failed: ReplyCode.PreconditionFailed,
  unknown_delivery_tag: ReplyCode.PreconditionFailed,
  access_refused: ReplyCode.AccessRefused,
  command_invalid: ReplyCode.CommandInvalid,
  bad_field: ReplyCode.PreconditionFailed,
  store_failed: ReplyCode.InternalError,
};

const QUEUE_ARGS_REFUSED = new Set([
  "x-max-length-bytes",
  "x-max-priority",
  "x-single-active-consumer",
  "x-queue-master-locator",
  "x-queue-leader-locator",
  "x-quorum-initial-group-size",
  "x-delivery-limit",
  "x-stream-max-segment-size-bytes",
  "x-max-age",
]);

const decoder = new TextDecoder();

function asAmqpError(err: unknown, m: AmqpMethod | undefined): AmqpError {
  if (err instanceof AmqpError) {
    if (err.classId || !m) return err;
    return new AmqpError(err.code, err.message, m.classId, m.methodId);
  }
  if (err instanceof ProtocolError) {
    return new AmqpError(
      ENGINE_CODES[err.code] ?? ReplyCode.InternalError,
      err.code === "unknown_delivery_tag"
        ? `unknown delivery tag ${err.details?.deliveryTag}` // RabbitMQ's words
        : err.message,
      m?.classId ?? 0,
      m?.methodId ?? 0,
    );
  }
  return new AmqpError(
    ReplyCode.InternalError,
    err instanceof Error ? err.message : String(err),
    m?.classId ?? 0,
    m?.methodId ?? 0,
  );
}

/**
 * An AMQP 0-9-1 server connection. `receive(bytes, now)` handles everything the client
 * sent; output accumulates until the transport takes it. Protocol violations are
 * answered as the specification says: a channel exception closes the channel
 * (`channel.close`, discarding until `close-ok`), a connection exception sends
 * `connection.close` and discards everything but `close-ok`; nothing the engine
 * holds is lost (unacknowledged deliveries go back to their queues).
 */
export class AmqpSession {
  readonly #engine: QueueEngine;
  readonly #transport: AmqpTransport;
  readonly #o: Required<Omit<AmqpSessionOptions, "onEvent" | "label" | "now">>;
  readonly #onEvent: (ev: string, fields: Record<string, unknown>) => void;
  readonly #decoder: AmqpFrameDecoder;
  readonly #channels = new Map<number, Channel>();
  readonly #owner = {};
  #out = new AmqpWriter(16 * 1024);
  #spare = new AmqpWriter(16 * 1024);
  #phase: Phase = "header";
  #label: string;
  #user = "";
  #frameMax: number;
  #channelMax: number;
  #heartbeatMs = 0;
  #lastRecv: number;
  #lastSend: number;
  #deadline: number;
  #cancelNotify = false;
  #paused = false;
  #closeCode = 0;

  constructor(engine: QueueEngine, transport: AmqpTransport, options: AmqpSessionOptions) {
    this.#engine = engine;
    this.#transport = transport;
    this.#o = {
      authenticate: options.authenticate,
      frameMax: options.frameMax ?? DEFAULT_FRAME_MAX,
      channelMax: options.channelMax ?? DEFAULT_CHANNEL_MAX,
      heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT_S,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      highWaterMark: options.highWaterMark ?? 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    };
    this.#onEvent = options.onEvent ?? (() => {});
    this.#label = options.label ?? "amqp";
    this.#frameMax = this.#o.frameMax;
    this.#channelMax = this.#o.channelMax;
    // before tune-ok, frames up to the proposed frame_max are accepted
    this.#decoder = new AmqpFrameDecoder(this.#frameMax);
    const now = options.now ?? 0;
    this.#lastRecv = now;
    this.#lastSend = now;
    this.#deadline = now + this.#o.handshakeTimeoutMs;
  }

  /** Where the connection is: `header`, `start`, `tune`, `open`, `running`, `closing`, `closed`. */
  get phase(): Phase {
    return this.#phase;
  }

  /** The logged-in user (empty before start-ok). */
  get user(): string {
    return this.#user;
  }

  /** Open channels. */
  get channelCount(): number {
    return this.#channels.size;
  }

  /** The reply code of the connection exception that closed it (0 when none). */
  get closeCode(): number {
    return this.#closeCode;
  }

  /**
   * Takes the output written so far (undefined when there is none). The bytes are a view
   * that stays valid until the next call but one: write them before taking more (two
   * buffers take turns, so nothing is copied).
   */
  takeOutput(now?: number): Uint8Array | undefined {
    if (this.#out.length === 0) return undefined;
    const w = this.#out;
    this.#out = this.#spare;
    this.#out.reset();
    this.#spare = w;
    if (now !== undefined) this.#lastSend = now;
    return w.view();
  }

  /** Handles bytes from the client. */
  receive(chunk: Uint8Array, now: number): void {
    if (this.#phase === "closed") return;
    this.#lastRecv = now;
    this.#decoder.push(chunk);
    try {
      if (this.#phase === "header") {
        const header = this.#decoder.take(8);
        if (!header) return this.#detach();
        if (!header.every((b, i) => b === PROTOCOL_HEADER[i])) {
          // the specification: answer with the header we speak, then close
          this.#out.bytes(PROTOCOL_HEADER);
          this.#onEvent("amqp.error", {
            conn: this.#label,
            code: 0,
            text: "wrong protocol header",
          });
          this.#finish();
          return;
        }
        this.#send(0, 10, 10, {
          versionMajor: 0,
          versionMinor: 9,
          serverProperties: SERVER_PROPERTIES,
          mechanisms: "PLAIN AMQPLAIN",
          locales: "en_US",
        });
        this.#phase = "start";
      }
      for (;;) {
        if ((this.#phase as Phase) === "closed") return;
        let f;
        try {
          f = this.#decoder.next();
        } catch (err) {
          // the byte stream cannot be followed any more: say why, then close the socket
          this.#connectionError(asAmqpError(err, undefined), now);
          this.#finish();
          return;
        }
        if (!f) break;
        this.#frame(f.type, f.channel, f.payload, now);
      }
      this.#detach();
    } catch (err) {
      this.#connectionError(asAmqpError(err, undefined), now);
    }
  }

  #detach(): void {
    // the decoder may hold a view of the caller's read buffer: make it its own
    if (this.#decoder.buffered > 0) {
      const rest = this.#decoder.take(this.#decoder.buffered)!.slice();
      this.#decoder.push(rest);
    }
  }

  /** Heartbeats out, dead peers and stuck handshakes detected; call about once a second. */
  tick(now: number): void {
    if (this.#phase === "closed") return;
    if (this.#phase !== "running") {
      if (now > this.#deadline) {
        this.#onEvent("amqp.error", {
          conn: this.#label,
          code: 0,
          text: this.#phase === "closing" ? "no close-ok in time" : "handshake timed out",
        });
        this.#finish();
      }
      return;
    }
    if (this.#heartbeatMs <= 0) return;
    if (now - this.#lastRecv > 2 * this.#heartbeatMs) {
      this.#onEvent("amqp.error", {
        conn: this.#label,
        code: 0,
        text: `missed heartbeats for ${Math.round(now - this.#lastRecv)} ms`,
      });
      this.#finish();
      return;
    }
    if (now - this.#lastSend >= this.#heartbeatMs / 2 && this.#out.length === 0) {
      this.#out.u8(FrameType.Heartbeat);
      this.#out.u16(0);
      this.#out.u32(0);
      this.#out.u8(FRAME_END);
      this.#lastSend = now;
      this.#transport.wake();
    }
  }

  /** Whether deliveries wait for {@linkcode drained} (the output passed the high-water mark). */
  get paused(): boolean {
    return this.#paused;
  }

  /** The transport wrote what it had: deliveries paused by backpressure go on. */
  drained(): void {
    if (!this.#paused) return;
    if (this.#out.length + this.#transport.pendingBytes() >= this.#o.highWaterMark / 2) return;
    this.#paused = false;
    for (const ch of this.#channels.values()) {
      if (ch.state === "open" && ch.flow) this.#engine.resume(ch.conn);
    }
  }

  /**
   * The server is stopping: `connection.close` 320 CONNECTION_FORCED (as RabbitMQ sends, so
   * clients reconnect), unacknowledged deliveries back to their queues, then the socket closes.
   */
  shutdown(reason = "broker shutdown"): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "running") {
      this.#send(0, 10, 50, {
        replyCode: ReplyCode.ConnectionForced,
        replyText: `CONNECTION_FORCED - ${reason}`,
        classId: 0,
        methodId: 0,
      });
      this.#closeCode = ReplyCode.ConnectionForced;
      this.#onEvent("amqp.close", { conn: this.#label, code: 320, by: "server" });
    }
    this.#finish();
  }

  /** The socket is gone: every channel's unacknowledged deliveries go back to their queues. */
  transportClosed(): void {
    if (this.#phase === "closed") return;
    const wasRunning = this.#phase === "running" || this.#phase === "closing";
    this.#release();
    this.#phase = "closed";
    if (wasRunning) this.#onEvent("amqp.close", { conn: this.#label, code: this.#closeCode });
  }

  #release(): void {
    for (const ch of this.#channels.values()) this.#engine.disconnect(ch.conn);
    this.#channels.clear();
    this.#engine.releaseOwner(this.#owner);
  }

  #finish(): void {
    this.#release();
    this.#phase = "closed";
    this.#transport.wake();
    this.#transport.end();
  }

  #send(channel: number, classId: number, methodId: number, args?: Record<string, unknown>): void {
    writeMethodFrame(this.#out, channel, classId, methodId, args);
    this.#transport.wake();
  }

  #connectionError(err: AmqpError, now: number): void {
    if (this.#phase === "closing" || this.#phase === "closed") return;
    this.#closeCode = err.code;
    this.#onEvent("amqp.error", {
      conn: this.#label,
      code: err.code,
      text: err.replyText,
      method: err.classId ? methodName(err.classId, err.methodId) : undefined,
    });
    const code = err.code < 300 ? ReplyCode.InternalError : err.code;
    if (this.#phase === "header") {
      this.#finish();
      return;
    }
    this.#send(0, 10, 50, {
      replyCode: code,
      replyText: err.replyText,
      classId: err.classId,
      methodId: err.methodId,
    });
    this.#release();
    this.#phase = "closing";
    this.#deadline = now + 2_000;
  }

  #channelError(ch: Channel, err: AmqpError): void {
    this.#onEvent("amqp.error", {
      conn: this.#label,
      channel: ch.id,
      code: err.code,
      text: err.replyText,
      method: err.classId ? methodName(err.classId, err.methodId) : undefined,
    });
    this.#send(ch.id, 20, 40, {
      replyCode: err.code,
      replyText: err.replyText,
      classId: err.classId,
      methodId: err.methodId,
    });
    ch.state = "closing";
    ch.pending = undefined;
    this.#engine.disconnect(ch.conn);
  }

  #frame(type: number, channel: number, payload: Uint8Array, now: number): void {
    if (this.#phase === "closing") {
      if (type === FrameType.Method && channel === 0 && payload.length >= 4) {
        const cm = (payload[0] << 24 | payload[1] << 16 | payload[2] << 8 | payload[3]) >>> 0;
        if (cm === ((10 << 16) | 51)) this.#finish();
        else if (cm === ((10 << 16) | 50)) {
          this.#send(0, 10, 51);
          this.#finish();
        }
      }
      return;
    }
    if (type === FrameType.Heartbeat) {
      if (channel !== 0) {
        throw new AmqpError(ReplyCode.FrameError, `heartbeat frame on channel ${channel}`);
      }
      return;
    }
    if (channel === 0) {
      if (type !== FrameType.Method) {
        throw new AmqpError(ReplyCode.UnexpectedFrame, `content frame on channel 0`);
      }
      this.#connectionMethod(decodeMethod(payload), now);
      return;
    }
    if (this.#phase !== "running") {
      throw new AmqpError(
        ReplyCode.ChannelError,
        `frame on channel ${channel} before the connection is open`,
      );
    }
    const ch = this.#channels.get(channel);
    if (!ch) {
      if (type !== FrameType.Method) {
        throw new AmqpError(ReplyCode.ChannelError, `content frame on unopened channel ${channel}`);
      }
      const m = decodeMethod(payload);
      if (m.classId !== ClassId.Channel || m.methodId !== 10) {
        throw new AmqpError(
          ReplyCode.ChannelError,
          `expected 'channel.open' on channel ${channel}, got '${m.name}'`,
          m.classId,
          m.methodId,
        );
      }
      this.#openChannel(channel, m);
      return;
    }
    if (ch.state === "closing") {
      if (type !== FrameType.Method || payload.length < 4) return;
      const cm = (payload[0] << 24 | payload[1] << 16 | payload[2] << 8 | payload[3]) >>> 0;
      if (cm === ((20 << 16) | 41)) this.#channels.delete(ch.id);
      else if (cm === ((20 << 16) | 40)) {
        this.#send(ch.id, 20, 41);
        this.#channels.delete(ch.id);
      }
      return;
    }
    if (type === FrameType.Method) {
      if (ch.pending) {
        throw new AmqpError(
          ReplyCode.UnexpectedFrame,
          `expected content header for 'basic.publish' on channel ${ch.id}, got a method frame`,
        );
      }
      // the hot path: basic.publish and basic.ack without the generic decoder
      if (payload.length >= 4 && payload[0] === 0 && payload[1] === 60 && payload[2] === 0) {
        if (payload[3] === 40) return this.#publishMethod(ch, payload);
        if (payload[3] === 80 && payload.length === 13) {
          const r = new AmqpReader(payload, 4);
          const tag = r.u64();
          const multiple = (r.u8() & 1) !== 0;
          try {
            this.#engine.ack(ch.conn, tag, multiple);
          } catch (err) {
            this.#fail(ch, asAmqpError(err, { classId: 60, methodId: 80, name: "", args: {} }));
          }
          return;
        }
      }
      const m = decodeMethod(payload);
      try {
        this.#channelMethod(ch, m);
      } catch (err) {
        this.#fail(ch, asAmqpError(err, m));
      }
      return;
    }
    if (type === FrameType.Header) {
      const p = ch.pending;
      if (!p || p.props) {
        throw new AmqpError(
          ReplyCode.UnexpectedFrame,
          p
            ? `second content header on channel ${ch.id}`
            : `content header on channel ${ch.id} without a 'basic.publish'`,
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
      if (h.bodySize > this.#o.maxMessageBytes) {
        ch.pending = undefined;
        this.#fail(
          ch,
          new AmqpError(
            ReplyCode.PreconditionFailed,
            `message size ${h.bodySize} is larger than max size ${this.#o.maxMessageBytes}`,
            60,
            40,
          ),
        );
        return;
      }
      if (h.bodySize === 0) this.#publishComplete(ch, p);
      return;
    }
    // body
    const p = ch.pending;
    if (!p || !p.props) {
      throw new AmqpError(
        ReplyCode.UnexpectedFrame,
        `content body on channel ${ch.id} without a ${p ? "content header" : "'basic.publish'"}`,
      );
    }
    if (p.received + payload.length > p.bodySize) {
      throw new AmqpError(
        ReplyCode.UnexpectedFrame,
        `content body on channel ${ch.id} is longer than the ${p.bodySize} bytes its header announced`,
      );
    }
    p.parts.push(payload.slice());
    p.received += payload.length;
    if (p.received === p.bodySize) this.#publishComplete(ch, p);
  }

  #fail(ch: Channel, err: AmqpError): void {
    if (isHardError(err.code)) throw err;
    this.#channelError(ch, err);
  }

  #openChannel(id: number, _m: AmqpMethod): void {
    if (id > this.#channelMax) {
      throw new AmqpError(
        ReplyCode.ChannelError,
        `channel ${id} is above channel_max ${this.#channelMax}`,
        20,
        10,
      );
    }
    const ch = new Channel(id);
    ch.conn = this.#engine.connect(`${this.#label}#${id}`, this.#sink(ch), {
      owner: this.#owner,
    });
    this.#channels.set(id, ch);
    this.#send(id, 20, 11, { channelId: "" });
  }

  #sink(ch: Channel) {
    return {
      deliver: (d: Delivery): boolean => {
        const w = ch.hold ?? this.#out;
        this.#writeDeliver(w, ch.id, d);
        this.#transport.wake();
        const waiting = this.#out.length + (ch.hold?.length ?? 0) + this.#transport.pendingBytes();
        if (waiting < this.#o.highWaterMark) return true;
        this.#paused = true;
        return false;
      },
      returned: (r: {
        exchange: string;
        routingKey: string;
        body: Uint8Array;
        props: Record<string, unknown>;
      }) => {
        writeMethodFrame(this.#out, ch.id, 60, 50, {
          replyCode: ReplyCode.NoRoute,
          replyText: "NO_ROUTE",
          exchange: r.exchange,
          routingKey: r.routingKey,
        });
        writeContent(
          this.#out,
          ch.id,
          rawProperties(r.props, r.props.deliveryMode === 2),
          r.body,
          this.#frameMax,
        );
        this.#transport.wake();
      },
      confirmed: (seq: number) => {
        if (ch.state !== "open" || seq <= ch.lastConfirmed) return;
        const multiple = seq - ch.lastConfirmed > 1;
        ch.lastConfirmed = seq;
        this.#writeAckFrame(ch.id, 80, seq, multiple ? 1 : 0);
      },
      confirmFailed: (seq: number) => {
        if (ch.state !== "open" || seq <= ch.lastConfirmed) return;
        if (seq === ch.lastConfirmed + 1) ch.lastConfirmed = seq;
        this.#writeAckFrame(ch.id, 120, seq, 0);
      },
      cancelled: (tag: string) => {
        if (ch.state !== "open" || !this.#cancelNotify) return;
        this.#send(ch.id, 60, 30, { consumerTag: tag, noWait: true });
      },
      open: () => this.#phase === "running" && ch.state === "open" && ch.flow,
    };
  }

  #writeAckFrame(channel: number, methodId: number, tag: number, bits: number): void {
    const w = this.#out;
    w.u8(FrameType.Method);
    w.u16(channel);
    w.u32(13);
    w.u16(60);
    w.u16(methodId);
    w.u64(tag);
    w.u8(bits);
    w.u8(FRAME_END);
    this.#transport.wake();
  }

  #writeDeliver(w: AmqpWriter, channel: number, d: Delivery): void {
    w.u8(FrameType.Method);
    w.u16(channel);
    const at = w.length;
    w.u32(0);
    w.u16(60);
    w.u16(60);
    w.shortstr(d.consumerTag);
    w.u64(d.deliveryTag);
    w.u8(d.redelivered ? 1 : 0);
    w.shortstr(d.exchange);
    w.shortstr(d.routingKey);
    w.patchU32(at, w.length - at - 4);
    w.u8(FRAME_END);
    writeContent(w, channel, rawProperties(d.props, d.persistent), d.body, this.#frameMax);
  }

  #connectionMethod(m: AmqpMethod, now: number): void {
    const a = m.args;
    const expect = (name: string) => {
      if (m.name !== name) {
        throw new AmqpError(
          ReplyCode.CommandInvalid,
          `expected '${name}', got '${m.name}'`,
          m.classId,
          m.methodId,
        );
      }
    };
    switch (this.#phase) {
      case "start": {
        expect("connection.start-ok");
        const caps = (a.clientProperties as FieldTable).capabilities;
        if (caps && typeof caps === "object" && !Array.isArray(caps)) {
          this.#cancelNotify = (caps as FieldTable).consumer_cancel_notify === true;
        }
        const mech = String(a.mechanism);
        const login = parseLogin(mech, a.response as Uint8Array);
        if (!login) {
          throw new AmqpError(
            ReplyCode.AccessRefused,
            `unsupported authentication mechanism '${mech}' (PLAIN, AMQPLAIN) or malformed response`,
            10,
            11,
          );
        }
        if (!this.#o.authenticate(login.user, login.password, mech)) {
          throw new AmqpError(
            ReplyCode.AccessRefused,
            `Login was refused using authentication mechanism ${mech}. For details see the peerd log.`,
            10,
            11,
          );
        }
        this.#user = login.user;
        this.#send(0, 10, 30, {
          channelMax: this.#o.channelMax,
          frameMax: this.#o.frameMax,
          heartbeat: this.#o.heartbeat,
        });
        this.#phase = "tune";
        return;
      }
      case "tune": {
        expect("connection.tune-ok");
        const frameMax = Number(a.frameMax);
        if (frameMax !== 0 && frameMax < FRAME_MIN_SIZE) {
          throw new AmqpError(
            ReplyCode.NotAllowed,
            `frame_max=${frameMax} < ${FRAME_MIN_SIZE} min size`,
            10,
            31,
          );
        }
        if (frameMax > this.#o.frameMax) {
          throw new AmqpError(
            ReplyCode.NotAllowed,
            `frame_max=${frameMax} > ${this.#o.frameMax} max size`,
            10,
            31,
          );
        }
        this.#frameMax = frameMax === 0 ? this.#o.frameMax : frameMax;
        this.#decoder.frameMax = this.#frameMax;
        const channelMax = Number(a.channelMax);
        this.#channelMax = channelMax === 0
          ? this.#o.channelMax
          : Math.min(channelMax, this.#o.channelMax);
        this.#heartbeatMs = Number(a.heartbeat) * 1000;
        this.#phase = "open";
        return;
      }
      case "open": {
        expect("connection.open");
        const vhost = String(a.virtualHost);
        if (vhost !== "/") {
          throw new AmqpError(
            ReplyCode.NotAllowed,
            `vhost '${vhost}' not found (peerd has the one vhost '/')`,
            10,
            40,
          );
        }
        this.#send(0, 10, 41, { knownHosts: "" });
        this.#phase = "running";
        this.#lastSend = now;
        this.#onEvent("amqp.open", { conn: this.#label, user: this.#user });
        return;
      }
    }
    switch (m.name) {
      case "connection.close":
        this.#send(0, 10, 51);
        this.#onEvent("amqp.close", {
          conn: this.#label,
          code: a.replyCode,
          text: a.replyText,
          by: "client",
        });
        this.#finish();
        return;
      case "connection.close-ok":
        return;
      case "connection.blocked":
      case "connection.unblocked":
        return;
      case "connection.update-secret":
        throw new AmqpError(
          ReplyCode.NotImplemented,
          "connection.update-secret is not supported by peerd",
          10,
          70,
        );
      default:
        throw new AmqpError(
          ReplyCode.CommandInvalid,
          `'${m.name}' is not valid on channel 0 now`,
          m.classId,
          m.methodId,
        );
    }
  }

  #publishMethod(ch: Channel, payload: Uint8Array): void {
    try {
      // ticket (2), exchange, routing key, bits: read in place (the hot path)
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
      if (bits & 2) {
        throw new AmqpError(ReplyCode.NotImplemented, "immediate=true", 60, 40);
      }
      ch.pending = {
        exchange,
        key,
        mandatory: (bits & 1) !== 0,
        bodySize: 0,
        persistent: false,
        parts: [],
        received: 0,
      };
    } catch (err) {
      throw asAmqpError(err, { classId: 60, methodId: 40, name: "basic.publish", args: {} });
    }
  }

  #publishComplete(ch: Channel, p: PendingContent): void {
    ch.pending = undefined;
    let body: Uint8Array;
    if (p.parts.length === 1) body = p.parts[0];
    else if (p.parts.length === 0) body = new Uint8Array(0);
    else {
      body = new Uint8Array(p.received);
      let at = 0;
      for (const part of p.parts) {
        body.set(part, at);
        at += part.length;
      }
    }
    const m = { classId: 60, methodId: 40, name: "basic.publish", args: {} };
    try {
      this.#engine.assertPublishable(p.exchange);
      const props = p.props!;
      const persistent = p.persistent;
      let expiration: number | undefined;
      if (props.expiration !== undefined) {
        const e = String(props.expiration);
        if (!/^\d{1,15}$/.test(e)) {
          throw new AmqpError(
            ReplyCode.PreconditionFailed,
            `invalid expiration '${e.slice(0, 40)}': must be a number of milliseconds`,
            60,
            40,
          );
        }
        expiration = Number(e);
      }
      this.#engine.publish(ch.conn, p.exchange, p.key, body, {
        mandatory: p.mandatory,
        persistent,
        props,
        expiration,
      });
    } catch (err) {
      this.#fail(ch, asAmqpError(err, m));
    }
  }

  #channelMethod(ch: Channel, m: AmqpMethod): void {
    const a = m.args;
    const e = this.#engine;
    const c = ch.conn;
    const reply = (methodId: number, args?: Record<string, unknown>) => {
      if (!a.noWait) this.#send(ch.id, m.classId, methodId, args);
    };
    switch (m.name) {
      case "channel.open":
        throw new AmqpError(
          ReplyCode.ChannelError,
          `second 'channel.open' seen on channel ${ch.id}`,
          20,
          10,
        );
      case "channel.flow":
        ch.flow = a.active === true;
        this.#send(ch.id, 20, 21, { active: ch.flow });
        if (ch.flow) e.resume(c);
        return;
      case "channel.flow-ok":
        return;
      case "channel.close":
        this.#send(ch.id, 20, 41);
        e.disconnect(c);
        this.#channels.delete(ch.id);
        return;
      case "channel.close-ok":
        return;
      case "exchange.declare": {
        const name = String(a.exchange);
        const args = a.arguments as FieldTable;
        if (args["alternate-exchange"] !== undefined) {
          throw new AmqpError(
            ReplyCode.NotImplemented,
            `exchange argument 'alternate-exchange' is not supported by peerd`,
            40,
            10,
          );
        }
        if (a.passive) {
          if (name !== "" && !e.exchangeInfo(name)) {
            throw new AmqpError(ReplyCode.NotFound, `no exchange '${name}' in vhost '/'`, 40, 10);
          }
        } else if (name === "") {
          throw new AmqpError(
            ReplyCode.AccessRefused,
            `operation not permitted on the default exchange`,
            40,
            10,
          );
        } else {
          e.declareExchange(name, String(a.type), {
            durable: a.durable === true,
            autoDelete: a.autoDelete === true,
            internal: a.internal === true,
          });
        }
        reply(11);
        return;
      }
      case "exchange.delete": {
        const name = String(a.exchange);
        const info = e.exchangeInfo(name);
        if (info) {
          if (a.ifUnused && info.bindings > 0) {
            throw new AmqpError(
              ReplyCode.PreconditionFailed,
              `exchange '${name}' in vhost '/' in use`,
              40,
              20,
            );
          }
          e.deleteExchange(name);
        }
        reply(21);
        return;
      }
      case "exchange.bind":
      case "exchange.unbind":
        throw new AmqpError(
          ReplyCode.NotImplemented,
          `exchange-to-exchange bindings are not supported by peerd`,
          m.classId,
          m.methodId,
        );
      case "queue.declare": {
        const args = a.arguments as FieldTable;
        let maxLength = 0;
        let messageTtl = 0;
        let expires = 0;
        let deadLetterExchange: string | undefined;
        let deadLetterRoutingKey: string | undefined;
        const int = (k: string, v: FieldValue, min: number): number => {
          if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
            throw new AmqpError(
              ReplyCode.PreconditionFailed,
              `invalid arg '${k}': must be an integer ≥ ${min}`,
              50,
              10,
            );
          }
          return v;
        };
        const str = (k: string, v: FieldValue): string => {
          if (typeof v !== "string") {
            throw new AmqpError(
              ReplyCode.PreconditionFailed,
              `invalid arg '${k}': must be a string`,
              50,
              10,
            );
          }
          return v;
        };
        for (const [k, v] of Object.entries(args)) {
          if (QUEUE_ARGS_REFUSED.has(k)) {
            throw new AmqpError(
              ReplyCode.NotImplemented,
              `queue argument '${k}' is not supported by peerd`,
              50,
              10,
            );
          }
          if (k === "x-max-length") maxLength = int(k, v, 0);
          else if (k === "x-message-ttl") messageTtl = int(k, v, 0);
          else if (k === "x-expires") expires = int(k, v, 1);
          else if (k === "x-dead-letter-exchange") deadLetterExchange = str(k, v);
          else if (k === "x-dead-letter-routing-key") deadLetterRoutingKey = str(k, v);
          else if (k === "x-overflow" && v !== "drop-head") {
            throw new AmqpError(
              ReplyCode.NotImplemented,
              `x-overflow '${String(v)}' is not supported by peerd (only drop-head)`,
              50,
              10,
            );
          } else if (k === "x-queue-type" && v !== "classic") {
            throw new AmqpError(
              ReplyCode.NotImplemented,
              `queue type '${String(v)}' is not supported by peerd (only classic)`,
              50,
              10,
            );
          }
        }
        const info = e.declareQueue(c, String(a.queue), {
          durable: a.durable === true,
          exclusive: a.exclusive === true,
          autoDelete: a.autoDelete === true,
          maxLength,
          messageTtl,
          expires,
          deadLetterExchange,
          deadLetterRoutingKey,
          passive: a.passive === true,
        });
        reply(11, {
          queue: info.name,
          messageCount: info.messages,
          consumerCount: info.consumers,
        });
        return;
      }
      case "queue.bind":
      case "queue.unbind": {
        const exchange = String(a.exchange);
        const info = e.exchangeInfo(exchange);
        const key = info?.type === "headers"
          ? JSON.stringify(plainValue(a.arguments as FieldTable))
          : String(a.routingKey);
        if (m.name === "queue.bind") {
          e.bindQueue(c, String(a.queue), exchange, key);
          reply(21);
        } else {
          e.unbindQueue(c, String(a.queue), exchange, key);
          this.#send(ch.id, 50, 51);
        }
        return;
      }
      case "queue.purge":
        reply(31, { messageCount: e.purgeQueue(c, String(a.queue)) });
        return;
      case "queue.delete": {
        const name = String(a.queue);
        let info;
        try {
          info = e.queueInfo(c, name);
        } catch (err) {
          // deleting a queue that is not there is fine, as in RabbitMQ
          if (err instanceof ProtocolError && err.code === "not_found") {
            reply(41, { messageCount: 0 });
            return;
          }
          throw err;
        }
        if (a.ifUnused && info.consumers > 0) {
          throw new AmqpError(
            ReplyCode.PreconditionFailed,
            `queue '${name}' in vhost '/' in use`,
            50,
            40,
          );
        }
        if (a.ifEmpty && info.messages > 0) {
          throw new AmqpError(
            ReplyCode.PreconditionFailed,
            `queue '${name}' in vhost '/' is not empty`,
            50,
            40,
          );
        }
        reply(41, { messageCount: e.deleteQueue(c, name) });
        return;
      }
      case "basic.qos": {
        if (a.prefetchSize !== 0) {
          throw new AmqpError(
            ReplyCode.NotImplemented,
            `prefetch_size!=0 (${a.prefetchSize})`,
            60,
            10,
          );
        }
        e.qos(c, Number(a.prefetchCount), a.global ? { shared: true } : { existing: false });
        this.#send(ch.id, 60, 11);
        return;
      }
      case "basic.consume": {
        const queue = String(a.queue);
        const tag = String(a.consumerTag);
        if (!a.noWait) ch.hold = new AmqpWriter(256);
        let got: string;
        try {
          got = e.consume(c, queue, {
            noAck: a.noAck === true,
            exclusive: a.exclusive === true,
            tag: tag === "" ? undefined : tag,
          });
        } catch (err) {
          ch.hold = undefined;
          throw err;
        }
        const held = ch.hold;
        ch.hold = undefined;
        reply(21, { consumerTag: got });
        if (held && held.length > 0) this.#out.bytes(held.view());
        return;
      }
      case "basic.cancel": {
        const tag = String(a.consumerTag);
        try {
          e.cancel(c, tag);
        } catch (err) {
          if (!(err instanceof ProtocolError && err.code === "not_found")) throw err;
        }
        reply(31, { consumerTag: tag });
        return;
      }
      case "basic.get": {
        const queue = String(a.queue);
        const d = e.get(c, queue, { noAck: a.noAck === true });
        if (!d) {
          this.#send(ch.id, 60, 72, { clusterId: "" });
          return;
        }
        writeMethodFrame(this.#out, ch.id, 60, 71, {
          deliveryTag: d.deliveryTag,
          redelivered: d.redelivered,
          exchange: d.exchange,
          routingKey: d.routingKey,
          messageCount: e.queueInfo(c, queue).messages,
        });
        writeContent(
          this.#out,
          ch.id,
          rawProperties(d.props, d.persistent),
          d.body,
          this.#frameMax,
        );
        this.#transport.wake();
        return;
      }
      case "basic.ack":
        e.ack(c, Number(a.deliveryTag), a.multiple === true);
        return;
      case "basic.nack":
        e.nack(c, Number(a.deliveryTag), {
          multiple: a.multiple === true,
          requeue: a.requeue === true,
        });
        return;
      case "basic.reject":
        e.nack(c, Number(a.deliveryTag), { multiple: false, requeue: a.requeue === true });
        return;
      case "basic.recover":
      case "basic.recover-async":
        if (!a.requeue) {
          throw new AmqpError(ReplyCode.NotImplemented, "requeue=false", m.classId, m.methodId);
        }
        e.nack(c, 0, { multiple: true, requeue: true });
        if (m.name === "basic.recover") this.#send(ch.id, 60, 111);
        return;
      case "confirm.select":
        e.confirmSelect(c);
        ch.confirm = true;
        reply(11);
        return;
      case "tx.select":
      case "tx.commit":
      case "tx.rollback":
        throw new AmqpError(
          ReplyCode.NotImplemented,
          "transactions (tx.*) are not supported by peerd; use publisher confirms",
          m.classId,
          m.methodId,
        );
      default:
        throw new AmqpError(
          ReplyCode.CommandInvalid,
          `'${m.name}' is not a method a client sends`,
          m.classId,
          m.methodId,
        );
    }
  }
}

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

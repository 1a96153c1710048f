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
import type { Delivery, QueueEngine } from "../engine.ts";
import {
  AmqpError,
  AmqpFrameDecoder,
  type AmqpMethod,
  AmqpWriter,
  decodeMethod,
  methodName,
  writeContent,
  writeMethodFrame,
} from "./codec.ts";
import {
  ClassId,
  DEFAULT_CHANNEL_MAX,
  DEFAULT_FRAME_MAX,
  DEFAULT_HEARTBEAT_S,
  FrameType,
  isHardError,
  PROTOCOL_HEADER,
  ReplyCode,
} from "./constants.ts";
import { Channel, type ChannelHost, channelMethod } from "./channel.ts";
import {
  acceptBody,
  acceptHeader,
  assembleBody,
  expirationMs,
  type PendingContent,
  startPublish,
  tooLarge,
} from "./content.ts";
import { asAmqpError, BASIC_PUBLISH } from "./errors.ts";
import { writeAckFrame, writeDeliver, writeHeartbeat } from "./frames.ts";
import {
  acceptOpen,
  acceptStartOk,
  acceptTuneOk,
  type AmqpAuthenticate,
  START_ARGS,
} from "./handshake.ts";
import { rawProperties } from "./message.ts";

/** What the session needs from its transport. */
export interface AmqpTransport {
  /** New output waits in `takeOutput()`. */
  wake(): void;
  /** Bytes handed to the socket and not yet written (for backpressure). */
  pendingBytes(): number;
  /** Close the socket once the output taken so far is written. */
  end(): void;
  /** Reading may go on again ({@linkcode AmqpSession.readBlocked} turned false). */
  readable?(): void;
}

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
  readonly #host: ChannelHost;
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
  #blockedNotify = false;
  /** This connection has published: memory pressure blocks it. */
  #publisher = false;
  /** Blocked by memory pressure: the transport reads nothing until `readable()`. */
  #readBlocked = false;
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
    // deno-lint-ignore no-this-alias
    const session = this;
    this.#host = {
      engine,
      get frameMax() {
        return session.#frameMax;
      },
      get out() {
        return session.#out;
      },
      send: (channel, classId, methodId, args) => this.#send(channel, classId, methodId, args),
      wake: () => transport.wake(),
      closed: (ch) => this.#channels.delete(ch.id),
    };
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
        this.#send(0, 10, 10, START_ARGS);
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
    // a connection blocked by memory pressure is not read: its heartbeats wait in the socket
    if (this.#readBlocked) this.#lastRecv = now;
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
      writeHeartbeat(this.#out);
      this.#lastSend = now;
      this.#transport.wake();
    }
  }

  /**
   * Whether the transport must stop reading: the engine is under memory pressure and this
   * connection publishes (as RabbitMQ blocks publishers; consumers go on, so their acks
   * free memory). `transport.readable()` says when it may read again.
   */
  get readBlocked(): boolean {
    return this.#readBlocked;
  }

  /** Memory pressure changed: publishers are blocked (told `connection.blocked` when they take it) or let go. */
  #pressure(blocked: boolean): void {
    if (this.#phase !== "running") return;
    if (blocked === this.#readBlocked || (blocked && !this.#publisher)) return;
    this.#readBlocked = blocked;
    if (this.#blockedNotify) {
      if (blocked) this.#send(0, 10, 60, { reason: "low on memory" });
      else this.#send(0, 10, 61);
    }
    this.#onEvent(blocked ? "amqp.blocked" : "amqp.unblocked", { conn: this.#label });
    if (!blocked) this.#transport.readable?.();
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
        if (payload[3] === 40) {
          if (!this.#publisher) {
            this.#publisher = true;
            if (this.#engine.memoryBlocked) this.#pressure(true);
          }
          return this.#publishMethod(ch, payload);
        }
        if (payload[3] === 80 && payload.length === 13) {
          // delivery tag (u64; tags stay far below 2^53) and bits, read in place
          const p = payload;
          const hi = (p[4] << 24 | p[5] << 16 | p[6] << 8 | p[7]) >>> 0;
          const lo = (p[8] << 24 | p[9] << 16 | p[10] << 8 | p[11]) >>> 0;
          const tag = hi * 0x100000000 + lo;
          const multiple = (p[12] & 1) !== 0;
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
        channelMethod(this.#host, ch, m);
      } catch (err) {
        this.#fail(ch, asAmqpError(err, m));
      }
      return;
    }
    if (type === FrameType.Header) {
      const p = acceptHeader(ch.pending, ch.id, payload);
      if (p.bodySize > this.#o.maxMessageBytes) {
        ch.pending = undefined;
        this.#fail(ch, tooLarge(p, this.#o.maxMessageBytes));
        return;
      }
      if (p.bodySize === 0) this.#publishComplete(ch, p);
      return;
    }
    // body
    const p = ch.pending;
    if (acceptBody(p, ch.id, payload)) this.#publishComplete(ch, p);
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
        writeDeliver(w, ch.id, d, this.#frameMax);
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
      memoryPressure: (blocked: boolean) => this.#pressure(blocked),
    };
  }

  #writeAckFrame(channel: number, methodId: number, tag: number, bits: number): void {
    writeAckFrame(this.#out, channel, methodId, tag, bits);
    this.#transport.wake();
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
        const ok = acceptStartOk(a, this.#o.authenticate);
        this.#user = ok.user;
        this.#cancelNotify = ok.cancelNotify;
        this.#blockedNotify = ok.blockedNotify;
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
        const tuned = acceptTuneOk(a, this.#o);
        this.#frameMax = tuned.frameMax;
        this.#decoder.frameMax = tuned.frameMax;
        this.#channelMax = tuned.channelMax;
        this.#heartbeatMs = tuned.heartbeatMs;
        this.#phase = "open";
        return;
      }
      case "open": {
        expect("connection.open");
        acceptOpen(a);
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
      ch.pending = startPublish(payload);
    } catch (err) {
      throw asAmqpError(err, BASIC_PUBLISH);
    }
  }

  #publishComplete(ch: Channel, p: PendingContent): void {
    ch.pending = undefined;
    const body = assembleBody(p);
    try {
      this.#engine.assertPublishable(p.exchange);
      const props = p.props!;
      this.#engine.publish(ch.conn, p.exchange, p.key, body, {
        mandatory: p.mandatory,
        persistent: p.persistent,
        props,
        expiration: expirationMs(props),
      });
    } catch (err) {
      this.#fail(ch, asAmqpError(err, BASIC_PUBLISH));
    }
  }
}

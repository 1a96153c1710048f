/**
 * One MQTT connection's protocol logic as a pure state machine: packets and the clock in,
 * packets and MOM operations out. It knows nothing about sockets or SQLite: the gateway
 * (`gateway.ts`) feeds it decoded packets (`packet()`), the results of the operations it
 * asked for (`result()`), and the time (`tick()`), and carries out what `take()` returns.
 *
 * Semantics (MQTT 3.1.1 and 5.0 over the MOM):
 * - CONNECT opens (or resumes) the session's MOM user (`open`); nothing else is read until
 *   it is answered. SUBSCRIBE and UNSUBSCRIBE are carried out one at a time, in order, and
 *   packets after them wait, so a publication after a SUBACK sees the subscription.
 * - An incoming PUBLISH at QoS 1 or 2 is answered (PUBACK / PUBREC) only when its `publish`
 *   operation resolved, which the MOM does once the publication is on disk. QoS 2 packet
 *   identifiers are remembered (in the same commit as the publication) until PUBREL, so a
 *   resent PUBLISH is not published twice.
 * - Deliveries come from `receive` operations (one at a time) on the MOM inbox, at the
 *   highest QoS of the matching subscriptions capped by the publication's. A QoS 1 / 2
 *   delivery's packet identifier is derived from its inbox position, so a redelivery after
 *   a reconnect (DUP set) carries the original identifier. The inbox is acknowledged up to
 *   the last delivery before the oldest unfinished one; in flight are at most the client's
 *   receive maximum.
 * - A message whose expiry time passed is not delivered (unless its delivery may have started
 *   before a reconnect: a QoS 1 / 2 redelivery is completed); one that has not passed goes
 *   with the remaining interval in whole seconds, rounded up.
 * - A silent client is dropped after 1.5× its keep alive; the will is published when the
 *   connection ends without DISCONNECT (v5: after its will delay, unless the session comes
 *   back).
 *
 * @module
 */
import {
  type AckPacket,
  MQTT_5,
  MqttProtocolError,
  type Packet,
  PacketType,
  type Properties,
  type PublishPacket,
  Reason,
  type SubscribePacket,
  type UnsubscribePacket,
  type Will,
} from "./packet.ts";
import { checkFilter, checkTopicName } from "./topic.ts";
import { DeliveryWindow, PACKET_ID_SPACE } from "./delivery_window.ts";
import { type SessionSubscription, SessionSubscriptions } from "./session_subscriptions.ts";
import type {
  InboxMessage,
  MomOperation,
  OpenedSession,
  OperationResult,
  SessionConfig,
  SessionOutput,
} from "./session_types.ts";
import { checkConnect, connackProperties, openRefusalCode } from "./session_connect.ts";
import {
  type DeliveryContext,
  deliveryPacket,
  forwardedProperties,
  isUtf8,
} from "./session_delivery.ts";

export { deliveryPacketId } from "./delivery_window.ts";
export type { SessionSubscription } from "./session_subscriptions.ts";
export type {
  InboxMessage,
  MomOperation,
  OpenedSession,
  OperationResult,
  SessionConfig,
  SessionOutput,
} from "./session_types.ts";
export { forwardedProperties } from "./session_delivery.ts";

/** Session phase. */
type Phase = "connecting" | "opening" | "open" | "closed";

/** The state machine of one MQTT connection. */
export class MqttSession {
  readonly #config: SessionConfig;
  #phase: Phase = "connecting";
  #level = MQTT_5 as number;
  #clientId = "";
  #user = 0;
  #keepAliveMs = 0;
  #lastHeard: number;
  #expiry = 0;
  #will: Will | undefined;
  #willAt: number | undefined;
  #clientReceiveMax = PACKET_ID_SPACE;
  #clientMaxPacket = Infinity;
  #problemInfo = true;
  /** Packets waiting for a blocking operation (open, subscribe, unsubscribe). */
  #queue: Array<Packet | MqttProtocolError> = [];
  #blocked = false;
  #nextId = 1;
  #pending = new Map<number, (r: OperationResult, now: number) => void>();
  readonly #subs = new SessionSubscriptions();
  /** Deliveries in flight, the inbox position acknowledged and the last one handed out. */
  readonly #window = new DeliveryWindow();
  #receiving = false;
  #dupUpTo = 0;
  /** Released QoS 2 deliveries (skip when handed again). */
  readonly #released = new Set<number>();
  /** Incoming QoS 2: packet id → "pending" (publishing) or "stored". */
  readonly #received = new Map<number, "pending" | "stored">();
  /** Incoming QoS 1 / 2 publications not yet acknowledged (receive maximum). */
  #incoming = 0;
  #out: SessionOutput = { packets: [], operations: [], close: false };
  /** Deliveries sent, for status. */
  delivered = 0;
  /** Publications accepted, for status. */
  published = 0;
  /** Deliveries dropped because their message expired, for status. */
  expired = 0;

  constructor(config: SessionConfig, now: number) {
    this.#config = config;
    this.#lastHeard = now;
  }

  /** The client identifier (after CONNECT). */
  get clientId(): string {
    return this.#clientId;
  }

  /** The MOM user (after the session opened; 0 before). */
  get user(): number {
    return this.#user;
  }

  /** The protocol level the client speaks (4 or 5; 5 before CONNECT). */
  get level(): number {
    return this.#level;
  }

  /** Inbox position of the last delivery handed to the client. */
  get cursor(): number {
    return this.#window.cursor;
  }

  /** Whether the session has ended (the connection is to close). */
  get closed(): boolean {
    return this.#phase === "closed";
  }

  /** Whether the session is open (CONNACK sent). */
  get open(): boolean {
    return this.#phase === "open";
  }

  /** Returns and clears what the gateway has to do. */
  take(): SessionOutput {
    const out = this.#out;
    this.#out = { packets: [], operations: [], close: false };
    return out;
  }

  /** Handles a decoded packet from the client. */
  packet(p: Packet, now: number): SessionOutput {
    this.#lastHeard = now;
    if (this.#phase === "closed") return this.take();
    try {
      if (this.#phase === "connecting") {
        if (p.type !== PacketType.Connect) {
          throw new MqttProtocolError(
            Reason.ProtocolError,
            `Protocol error: the first packet must be CONNECT`,
          );
        }
        this.#connect(p);
      } else if (p.type === PacketType.Pingreq) {
        // answered at once, even while a subscription is being made
        this.#send({ type: PacketType.Pingresp });
      } else if (this.#blocked || this.#phase === "opening") {
        this.#queue.push(p);
      } else {
        this.#handle(p, now);
        // an acknowledgement may have opened the window
        if (this.#phase === "open") this.#pull();
      }
    } catch (err) {
      this.#fail(err);
    }
    return this.take();
  }

  /** Delivers the result of operation `id`. */
  result(id: number, r: OperationResult, now: number): SessionOutput {
    const k = this.#pending.get(id);
    if (k !== undefined) {
      this.#pending.delete(id);
      if (this.#phase !== "closed") {
        try {
          k(r, now);
          this.#drain(now);
        } catch (err) {
          this.#fail(err);
        }
      }
    }
    return this.take();
  }

  /** Checks the keep alive and the will delay. */
  tick(now: number): SessionOutput {
    if (
      this.#phase === "open" && this.#keepAliveMs > 0 &&
      now - this.#lastHeard > this.#keepAliveMs * 1.5
    ) {
      this.#disconnect(Reason.KeepAliveTimeout, "Keep alive timeout");
      this.#lost(now);
    }
    return this.take();
  }

  /** When the keep alive runs out if nothing is heard (ms, or Infinity). */
  get deadline(): number {
    return this.#phase === "open" && this.#keepAliveMs > 0
      ? this.#lastHeard + this.#keepAliveMs * 1.5
      : Infinity;
  }

  /**
   * The connection ended. `graceful`: the client sent DISCONNECT (its will is dropped unless
   * it asked for it with reason 0x04). Returns the operations that end the session (the will
   * is the gateway's to publish, after `willDelay`).
   */
  connectionLost(now: number): SessionOutput {
    this.#lost(now);
    return this.take();
  }

  /** The will to publish now that the connection ended without DISCONNECT, if any. */
  get will(): { will: Will; delayMs: number } | undefined {
    if (this.#phase !== "closed" || this.#will === undefined) return undefined;
    return { will: this.#will, delayMs: this.#willAt ?? 0 };
  }

  /**
   * A packet that could not be read: v5 gets a DISCONNECT with its reason, then the end. It
   * is handled in order: after the packets before it that wait (for CONNACK, say).
   */
  fail(err: MqttProtocolError, now: number): SessionOutput {
    if (this.#phase === "opening" || (this.#blocked && this.#phase === "open")) {
      this.#queue.push(err);
      return this.take();
    }
    this.#fail(err);
    this.#lost(now);
    return this.take();
  }

  /** Closes with a DISCONNECT (v5) carrying `code`, e.g. when the session was taken over. */
  kick(code: number, reason: string, now: number): SessionOutput {
    if (this.#phase === "open") this.#disconnect(code, reason);
    this.#lost(now);
    return this.take();
  }

  /** Status of this connection. */
  status(): Record<string, unknown> {
    return {
      client: this.#clientId,
      user: this.#user,
      level: this.#level,
      subscriptions: this.#subs.filters(),
      inflight: this.#window.inflight,
      acked: this.#window.acked,
      delivered: this.delivered,
      published: this.published,
      expired: this.expired,
    };
  }

  #lost(_now: number): void {
    if (this.#phase === "closed") return;
    const wasOpen = this.#phase === "open";
    this.#phase = "closed";
    this.#out.close = true;
    if (this.#user > 0) {
      this.#op({ op: "end", user: this.#user, after: this.#window.acked, expiry: this.#expiry });
    }
    if (!wasOpen) this.#will = undefined;
  }

  #op(o: MomOperation): void {
    this.#out.operations.push(o);
  }

  #request(
    make: (id: number) => MomOperation,
    k: (r: OperationResult, now: number) => void,
  ): void {
    const id = this.#nextId++;
    this.#pending.set(id, k);
    this.#op(make(id));
  }

  #send(p: Packet): void {
    this.#out.packets.push(p);
  }

  #fail(err: unknown): void {
    if (!(err instanceof MqttProtocolError)) throw err;
    if (this.#phase === "open") this.#disconnect(err.code, err.message);
    this.#lost(0);
  }

  /** v5: DISCONNECT with a reason; 3.1.1 has no server DISCONNECT (the connection closes). */
  #disconnect(code: number, reason: string): void {
    if (this.#level !== MQTT_5) return;
    const properties: Properties = this.#problemInfo ? { reasonString: reason } : {};
    this.#send({ type: PacketType.Disconnect, code, properties });
  }

  #drain(now: number): void {
    while (!this.#blocked && this.#phase === "open" && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      if (next instanceof MqttProtocolError) throw next;
      this.#handle(next, now);
    }
    if (this.#phase === "open") this.#pull();
  }

  #connect(p: Packet): void {
    if (p.type !== PacketType.Connect) return;
    const c = checkConnect(p);
    this.#level = c.level;
    this.#problemInfo = c.problemInfo;
    if (c.refuse) {
      this.#refuse(c.code, c.reason);
      return;
    }
    this.#clientReceiveMax = c.clientReceiveMax;
    this.#clientMaxPacket = c.clientMaxPacket;
    this.#clientId = c.clientId;
    this.#keepAliveMs = c.keepAliveMs;
    this.#expiry = c.expiry;
    this.#will = c.will;
    this.#willAt = c.willAt;
    this.#phase = "opening";
    this.#request(
      (id) => ({
        op: "open",
        id,
        clientId: c.clientId,
        clean: p.clean,
        expiry: this.#expiry,
        username: p.username,
        password: p.password,
      }),
      (r, now) => this.#opened(r, c.assigned, now),
    );
  }

  #refuse(code: number, reason: string): void {
    const properties: Properties = this.#level === MQTT_5 && this.#problemInfo
      ? { reasonString: reason }
      : {};
    this.#send({ type: PacketType.Connack, sessionPresent: false, code, properties });
    this.#will = undefined;
    this.#phase = "closed";
    this.#out.close = true;
  }

  #opened(r: OperationResult, assigned: string | undefined, now: number): void {
    if (!r.ok) {
      this.#queue = [];
      this.#refuse(openRefusalCode(r.code, this.#level), r.message);
      return;
    }
    const s = r.value as OpenedSession;
    this.#user = s.user;
    this.#phase = "open";
    for (const sub of s.subscriptions) this.#subs.set(sub);
    this.#dupUpTo = s.dupUpTo;
    for (const pid of s.received) this.#received.set(pid, "stored");
    const properties = connackProperties(this.#config, this.#level, assigned);
    this.#send({ type: PacketType.Connack, sessionPresent: s.present, code: 0, properties });
    // QoS 2 deliveries the client received: PUBREL again, never the PUBLISH
    for (const rel of s.released) {
      this.#released.add(rel.seq);
      if (rel.complete) continue;
      this.#window.resume(rel.packetId, rel.seq);
      this.#send({
        type: PacketType.Pubrel,
        packetId: rel.packetId,
        code: 0,
        properties: {},
      });
    }
    this.#lastHeard = now;
  }

  #handle(p: Packet, now: number): void {
    switch (p.type) {
      case PacketType.Connect:
        throw new MqttProtocolError(Reason.ProtocolError, "Protocol error: a second CONNECT");
      case PacketType.Publish:
        return this.#publish(p);
      case PacketType.Puback:
      case PacketType.Pubrec:
      case PacketType.Pubcomp:
        return this.#acknowledged(p);
      case PacketType.Pubrel:
        return this.#release(p);
      case PacketType.Subscribe:
        return this.#subscribe(p, now);
      case PacketType.Unsubscribe:
        return this.#unsubscribe(p);
      case PacketType.Disconnect:
        if (this.#level === MQTT_5 && p.code === Reason.DisconnectWithWill) {
          this.#lost(now);
          return;
        }
        if (
          this.#level === MQTT_5 && p.properties.sessionExpiryInterval !== undefined
        ) {
          if (this.#expiry === 0 && p.properties.sessionExpiryInterval !== 0) {
            throw new MqttProtocolError(
              Reason.ProtocolError,
              "Protocol error: a session expiry cannot be set at DISCONNECT when it was 0",
            );
          }
          this.#expiry = p.properties.sessionExpiryInterval;
        }
        this.#will = undefined;
        this.#lost(now);
        return;
      case PacketType.Auth:
        throw new MqttProtocolError(
          Reason.ProtocolError,
          "Protocol error: AUTH without an authentication method",
        );
      default:
        throw new MqttProtocolError(
          Reason.ProtocolError,
          `Protocol error: a client does not send packet type ${p.type}`,
        );
    }
  }

  #publish(p: PublishPacket): void {
    const v5 = this.#level === MQTT_5;
    if (p.properties.topicAlias !== undefined) {
      throw new MqttProtocolError(
        Reason.TopicAliasInvalid,
        "Topic alias invalid: this server's topic alias maximum is 0",
      );
    }
    if (p.properties.subscriptionIdentifiers !== undefined) {
      throw new MqttProtocolError(
        Reason.ProtocolError,
        "Protocol error: a PUBLISH from a client carries no subscription identifier",
      );
    }
    try {
      checkTopicName(p.topic);
    } catch (err) {
      // a wildcard or an empty topic: the specification closes the connection
      throw new MqttProtocolError(Reason.TopicNameInvalid, (err as Error).message);
    }
    // the receive maximum is MQTT 5's (a 3.1.1 client knows none: its packet ids bound it)
    if (p.qos > 0 && v5) {
      if (this.#incoming >= this.#config.receiveMaximum && !this.#received.has(p.packetId!)) {
        throw new MqttProtocolError(
          Reason.ReceiveMaximumExceeded,
          `Receive maximum exceeded: more than ${this.#config.receiveMaximum} in flight`,
        );
      }
    }
    if (
      v5 && p.properties.payloadFormatIndicator === 1 && !isUtf8(p.payload)
    ) {
      if (p.qos === 0) {
        throw new MqttProtocolError(
          Reason.PayloadFormatInvalid,
          "Payload format invalid: the payload is not UTF-8",
        );
      }
      this.#ack(p, Reason.PayloadFormatInvalid, "The payload is not UTF-8");
      return;
    }
    const properties = forwardedProperties(p.properties);
    if (p.qos === 0) {
      this.published++;
      this.#op({
        op: "publish",
        user: this.#user,
        topic: p.topic,
        payload: p.payload,
        qos: 0,
        retain: p.retain,
        properties,
      });
      return;
    }
    const packetId = p.packetId!;
    if (p.qos === 2) {
      const seen = this.#received.get(packetId);
      if (seen === "stored") {
        // a resend of one already published: acknowledge again, publish nothing
        this.#send({ type: PacketType.Pubrec, packetId, code: 0, properties: {} });
        return;
      }
      if (seen === "pending") return; // its PUBREC is on its way
      this.#received.set(packetId, "pending");
    }
    this.#incoming++;
    this.published++;
    this.#request(
      (id) => ({
        op: "publish",
        id,
        user: this.#user,
        topic: p.topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain,
        properties,
        received: p.qos === 2 ? packetId : undefined,
      }),
      (r) => {
        if (p.qos === 1) this.#incoming--;
        if (r.ok) {
          if (p.qos === 2) this.#received.set(packetId, "stored");
          this.#ack(p, Reason.Success, "");
        } else {
          if (p.qos === 2) {
            this.#received.delete(packetId);
            this.#incoming--;
          }
          if (!v5) {
            // 3.1.1 has no negative acknowledgement: the client resends after reconnecting
            throw new MqttProtocolError(Reason.UnspecifiedError, r.message);
          }
          this.#ack(
            p,
            r.code === "bad_topic" ? Reason.TopicNameInvalid : Reason.UnspecifiedError,
            r.message,
          );
        }
      },
    );
  }

  #ack(p: PublishPacket, code: number, reason: string): void {
    const properties: Properties = code !== 0 && this.#problemInfo && this.#level === MQTT_5
      ? { reasonString: reason }
      : {};
    this.#send({
      type: p.qos === 1 ? PacketType.Puback : PacketType.Pubrec,
      packetId: p.packetId!,
      code: this.#level === MQTT_5 ? code : 0,
      properties,
    });
  }

  #release(p: AckPacket): void {
    const known = this.#received.has(p.packetId);
    if (known) {
      this.#received.delete(p.packetId);
      this.#incoming--;
      this.#op({ op: "forget", user: this.#user, packetId: p.packetId });
    }
    this.#send({
      type: PacketType.Pubcomp,
      packetId: p.packetId,
      code: known || this.#level !== MQTT_5 ? 0 : Reason.PacketIdentifierNotFound,
      properties: {},
    });
  }

  #acknowledged(p: AckPacket): void {
    const o = this.#window.get(p.packetId);
    const expected = o === undefined
      ? undefined
      : o.state === "released"
      ? PacketType.Pubcomp
      : o.qos === 1
      ? PacketType.Puback
      : PacketType.Pubrec;
    if (o === undefined || expected !== p.type) {
      // an acknowledgement of nothing in flight: v5 says it is a protocol error for PUBREC
      // and PUBCOMP only when the id is unknown; ignoring it disturbs nothing
      return;
    }
    if (p.type === PacketType.Pubrec) {
      if (p.code >= 0x80) {
        // the client refused it: done, no PUBREL
        this.#window.finish(p.packetId, o);
        return;
      }
      this.#window.release(o);
      this.#op({ op: "released", user: this.#user, packetId: p.packetId, seq: o.seq });
      this.#send({ type: PacketType.Pubrel, packetId: p.packetId, code: 0, properties: {} });
      return;
    }
    if (p.type === PacketType.Pubcomp) {
      this.#op({ op: "completed", user: this.#user, packetId: p.packetId });
    }
    this.#window.finish(p.packetId, o);
  }

  #subscribe(p: SubscribePacket, _now: number): void {
    const v5 = this.#level === MQTT_5;
    const identifier = p.properties.subscriptionIdentifiers?.[0];
    if (identifier === 0) {
      throw new MqttProtocolError(
        Reason.ProtocolError,
        "Protocol error: subscription identifier 0",
      );
    }
    const codes: number[] = [];
    const todo = p.subscriptions.map((s, i) => ({ s, i }));
    let reason = "";
    const next = (): void => {
      const item = todo.shift();
      if (item === undefined) {
        this.#blocked = false;
        const properties: Properties = v5 && reason && this.#problemInfo
          ? { reasonString: reason }
          : {};
        this.#send({ type: PacketType.Suback, packetId: p.packetId, properties, codes });
        return;
      }
      const { s } = item;
      try {
        checkFilter(s.filter);
      } catch (err) {
        if (s.filter.startsWith("$share/") && v5) {
          codes.push(Reason.SharedSubscriptionsNotSupported);
          reason = "Shared subscriptions are not supported";
        } else {
          codes.push(v5 ? Reason.TopicFilterInvalid : 0x80);
          reason = (err as Error).message;
        }
        return next();
      }
      const sub: SessionSubscription = { ...s, identifier };
      const existing = this.#subs.get(s.filter);
      this.#request(
        (id) => ({ op: "subscribe", id, user: this.#user, subscription: sub }),
        (r) => {
          if (r.ok) {
            this.#subs.set(sub);
            codes.push(s.qos);
            const retained = s.retainHandling === 0 ||
              (s.retainHandling === 1 && existing === undefined);
            if (retained) {
              this.#request(
                (id) => ({ op: "retained", id, user: this.#user, filter: s.filter }),
                () => next(),
              );
              return;
            }
          } else {
            codes.push(v5 ? Reason.UnspecifiedError : 0x80);
            reason = r.message;
          }
          next();
        },
      );
    };
    this.#blocked = true;
    next();
  }

  #unsubscribe(p: UnsubscribePacket): void {
    const v5 = this.#level === MQTT_5;
    const codes: number[] = [];
    const todo = [...p.filters];
    const next = (): void => {
      const filter = todo.shift();
      if (filter === undefined) {
        this.#blocked = false;
        this.#send({ type: PacketType.Unsuback, packetId: p.packetId, properties: {}, codes });
        return;
      }
      if (!this.#subs.has(filter)) {
        codes.push(Reason.NoSubscriptionExisted);
        return next();
      }
      this.#request(
        (id) => ({ op: "unsubscribe", id, user: this.#user, filter }),
        (r) => {
          if (r.ok || r.code === "not_subscribed") {
            this.#subs.delete(filter);
            codes.push(r.ok ? Reason.Success : Reason.NoSubscriptionExisted);
          } else codes.push(v5 ? Reason.UnspecifiedError : 0x80);
          next();
        },
      );
    };
    this.#blocked = true;
    next();
  }

  /** Asks for more deliveries when none is being asked for and the window allows. */
  #pull(): void {
    if (this.#receiving || this.#phase !== "open") return;
    const w = this.#window;
    const window = Math.min(this.#clientReceiveMax - w.inflight, this.#config.receiveBatch);
    if (window <= 0) return;
    // packet ids come from inbox positions: never two in flight with the same one
    const oldest = w.oldest;
    if (oldest !== undefined && w.cursor - oldest >= PACKET_ID_SPACE - 1) return;
    this.#receiving = true;
    this.#request(
      (id) => ({
        op: "receive",
        id,
        user: this.#user,
        after: w.acked,
        from: w.cursor,
        max: window,
      }),
      (r, now) => {
        this.#receiving = false;
        if (!r.ok) return; // the gateway retries after a pause (daemon restarting)
        this.#deliver(r.value as InboxMessage[], now);
      },
    );
  }

  /** Sends deliveries from the inbox. */
  #deliver(messages: InboxMessage[], now: number): void {
    const w = this.#window;
    const context: DeliveryContext = {
      v5: this.#level === MQTT_5,
      user: this.#user,
      dupUpTo: this.#dupUpTo,
      maxPacket: this.#clientMaxPacket,
      now,
    };
    for (const m of messages) {
      if (!w.next(m.seq)) continue;
      if (this.#released.has(m.seq)) {
        // a QoS 2 delivery the client already has (PUBREC came before a restart)
        this.#released.delete(m.seq);
        w.settle(m.seq);
        continue;
      }
      const d = deliveryPacket(m, this.#subs, context);
      if (d === "expired") this.expired++;
      if (typeof d === "string") {
        w.settle(m.seq);
        continue;
      }
      this.delivered++;
      this.#send(d);
      if (d.qos > 0) w.sent(m.seq, d.qos as 1 | 2, d.packetId!);
      else w.settle(m.seq);
    }
    this.#pull();
  }
}

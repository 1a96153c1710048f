/**
 * The MQTT 3.1.1 / 5.0 packet codec: pure functions from bytes to packets and back, and
 * {@linkcode PacketReader}, which cuts a byte stream into packets. Everything the
 * specifications call malformed (a reserved flag set, a remaining length of five bytes, a
 * string that is not UTF-8 or holds U+0000, a property twice, bytes left over, …) throws
 * {@linkcode MqttProtocolError} with the reason code the connection is to be closed with.
 *
 * ```ts
 * const reader = new PacketReader({ maxPacketSize: 1 << 20 });
 * for (const frame of reader.push(bytes)) {
 *   const packet = decodePacket(frame, MQTT_5);
 * }
 * const bytes = encodePacket({ type: PacketType.Pingresp }, MQTT_5);
 * ```
 *
 * @module
 */
import {
  type AckPacket,
  type ConnectPacket,
  type DisconnectPacket,
  MAX_REMAINING_LENGTH,
  MQTT_5,
  MqttProtocolError,
  type Packet,
  PacketType,
  type Properties,
  type PublishPacket,
  Reason,
  type SubscribePacket,
  type Subscription,
  type UnsubscribePacket,
  type Will,
} from "./packet.ts";

/**
 * One packet cut from the stream: its type, the low nibble of byte 1, its body (a view into
 * the reader's buffer, valid until its next `push()`: decode it before).
 */
export interface RawPacket {
  type: number;
  flags: number;
  body: Uint8Array;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function malformed(message: string): never {
  throw new MqttProtocolError(Reason.MalformedPacket, `Malformed packet: ${message}`);
}

function protocolError(message: string): never {
  throw new MqttProtocolError(Reason.ProtocolError, `Protocol error: ${message}`);
}

/** Options of {@linkcode PacketReader}. */
export interface PacketReaderOptions {
  /** Largest packet (fixed header included) accepted, in bytes. @default 268435460 */
  maxPacketSize?: number;
}

/**
 * Cuts a byte stream into packets. `push()` returns the packets completed by the bytes
 * given; partial packets wait for more. A remaining length of more than four bytes is
 * malformed; a packet over `maxPacketSize` throws `PacketTooLarge` as soon as its length is
 * known (its body is never buffered).
 */
export class PacketReader {
  readonly #max: number;
  #buf = new Uint8Array(0);
  /** Unread bytes are `#buf[#start, #len)`. */
  #start = 0;
  #len = 0;
  #error: MqttProtocolError | undefined;

  constructor(options: PacketReaderOptions = {}) {
    this.#max = options.maxPacketSize ?? MAX_REMAINING_LENGTH + 5;
  }

  /** Bytes received but not yet part of a whole packet. */
  get buffered(): number {
    return this.#len - this.#start;
  }

  /**
   * Adds `chunk`; returns the whole packets now available, in order. Bad framing throws; when
   * packets came before it in the same chunk they are returned first and the error is thrown
   * by the next call (`push(new Uint8Array(0))` to get it).
   */
  push(chunk: Uint8Array): RawPacket[] {
    if (this.#error) throw this.#error;
    const out: RawPacket[] = [];
    try {
      this.#cut(chunk, out);
    } catch (err) {
      if (out.length === 0 || !(err instanceof MqttProtocolError)) throw err;
      this.#error = err;
    }
    return out;
  }

  /** The framing error found after the packets last returned, if any. */
  get error(): MqttProtocolError | undefined {
    return this.#error;
  }

  #cut(chunk: Uint8Array, out: RawPacket[]): void {
    this.#append(chunk);
    let at = this.#start;
    const buf = this.#buf;
    while (this.#len - at >= 2) {
      let length = 0;
      let mult = 1;
      let i = at + 1;
      let complete = false;
      for (let n = 0; n < 4; n++, i++) {
        if (i >= this.#len) break;
        const b = buf[i];
        length += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
        if (n === 3) malformed("the remaining length is longer than four bytes");
      }
      if (!complete) break;
      const total = i - at + length;
      if (total > this.#max) {
        throw new MqttProtocolError(
          Reason.PacketTooLarge,
          `Packet too large: ${total} bytes is over the maximum of ${this.#max}`,
        );
      }
      if (this.#len - at < total) break;
      out.push({ type: buf[at] >> 4, flags: buf[at] & 0x0f, body: buf.subarray(i, at + total) });
      at += total;
    }
    this.#start = at;
  }

  #append(chunk: Uint8Array): void {
    // the bodies returned last time live before #start: compacting now is safe
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#len);
      this.#len -= this.#start;
      this.#start = 0;
    }
    if (this.#len + chunk.length > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + chunk.length, 4096));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
  }
}

/** The last topic name decoded (see `BodyReader.topic()`), and the longest one kept. */
let lastTopic = { bytes: new Uint8Array(0), text: "" };
const TOPIC_MEMO_MAX = 256;

/** Reads the fields of one packet body, in order. */
class BodyReader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}

  get left(): number {
    return this.bytes.length - this.at;
  }

  #need(n: number, what: string): void {
    if (this.left < n) malformed(`${what} runs past the end of the packet`);
  }

  byte(what: string): number {
    this.#need(1, what);
    return this.bytes[this.at++];
  }

  u16(what: string): number {
    this.#need(2, what);
    const v = (this.bytes[this.at] << 8) | this.bytes[this.at + 1];
    this.at += 2;
    return v;
  }

  u32(what: string): number {
    this.#need(4, what);
    const b = this.bytes;
    const v = ((b[this.at] << 24) >>> 0) + (b[this.at + 1] << 16) + (b[this.at + 2] << 8) +
      b[this.at + 3];
    this.at += 4;
    return v;
  }

  varint(what: string): number {
    let value = 0;
    let mult = 1;
    for (let n = 0; n < 4; n++) {
      const b = this.byte(what);
      value += (b & 0x7f) * mult;
      if ((b & 0x80) === 0) return value;
      mult *= 128;
    }
    malformed(`${what} is a variable byte integer longer than four bytes`);
  }

  binary(what: string): Uint8Array {
    const n = this.u16(what);
    this.#need(n, what);
    const v = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return v;
  }

  string(what: string): string {
    const n = this.u16(what);
    this.#need(n, what);
    const raw = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      malformed(`${what} is not well-formed UTF-8`);
    }
    if (s.includes("\u0000")) malformed(`${what} contains U+0000`);
    return s;
  }

  /**
   * A PUBLISH's topic name: as `string()`, but the same bytes as the last topic read give the
   * same string without decoding again (a publisher repeats a few topics).
   */
  topic(what: string): string {
    const b = this.bytes;
    const at = this.at;
    const n = this.left >= 2 ? (b[at] << 8) | b[at + 1] : -1;
    const last = lastTopic.bytes;
    if (n === last.length && n > 0 && this.left >= 2 + n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (b[at + 2 + i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.at += 2 + n;
        return lastTopic.text;
      }
    }
    const text = this.string(what);
    if (n <= TOPIC_MEMO_MAX) lastTopic = { bytes: b.slice(at + 2, at + 2 + n), text };
    return text;
  }

  rest(): Uint8Array {
    const v = this.bytes.slice(this.at);
    this.at = this.bytes.length;
    return v;
  }
}

type PropKind = "byte" | "u16" | "u32" | "varint" | "string" | "binary" | "pair";

/** Property identifiers: name and kind. */
const PROPERTIES: Record<number, [keyof Properties, PropKind]> = {
  0x01: ["payloadFormatIndicator", "byte"],
  0x02: ["messageExpiryInterval", "u32"],
  0x03: ["contentType", "string"],
  0x08: ["responseTopic", "string"],
  0x09: ["correlationData", "binary"],
  0x0b: ["subscriptionIdentifiers", "varint"],
  0x11: ["sessionExpiryInterval", "u32"],
  0x12: ["assignedClientIdentifier", "string"],
  0x13: ["serverKeepAlive", "u16"],
  0x15: ["authenticationMethod", "string"],
  0x16: ["authenticationData", "binary"],
  0x17: ["requestProblemInformation", "byte"],
  0x18: ["willDelayInterval", "u32"],
  0x19: ["requestResponseInformation", "byte"],
  0x1a: ["responseInformation", "string"],
  0x1c: ["serverReference", "string"],
  0x1f: ["reasonString", "string"],
  0x21: ["receiveMaximum", "u16"],
  0x22: ["topicAliasMaximum", "u16"],
  0x23: ["topicAlias", "u16"],
  0x24: ["maximumQos", "byte"],
  0x25: ["retainAvailable", "byte"],
  0x26: ["userProperties", "pair"],
  0x27: ["maximumPacketSize", "u32"],
  0x28: ["wildcardSubscriptionAvailable", "byte"],
  0x29: ["subscriptionIdentifierAvailable", "byte"],
  0x2a: ["sharedSubscriptionAvailable", "byte"],
};

const PROPERTY_IDS = new Map<keyof Properties, number>(
  Object.entries(PROPERTIES).map(([id, [name]]) => [name, Number(id)]),
);

/** Reads a property block (5.0): its length, then identifier/value pairs. */
function readProperties(r: BodyReader): Properties {
  const length = r.varint("the property length");
  if (length > r.left) malformed("the property length runs past the end of the packet");
  const end = r.at + length;
  const props: Properties = {};
  const p = props as Record<string, unknown>;
  while (r.at < end) {
    const id = r.varint("a property identifier");
    const spec = PROPERTIES[id];
    if (!spec) malformed(`unknown property identifier 0x${id.toString(16)}`);
    const [name, kind] = spec;
    let value: unknown;
    switch (kind) {
      case "byte":
        value = r.byte(name);
        break;
      case "u16":
        value = r.u16(name);
        break;
      case "u32":
        value = r.u32(name);
        break;
      case "varint":
        value = r.varint(name);
        break;
      case "string":
        value = r.string(name);
        break;
      case "binary":
        value = r.binary(name);
        break;
      case "pair":
        value = [r.string(name), r.string(name)];
        break;
    }
    if (name === "userProperties" || name === "subscriptionIdentifiers") {
      ((p[name] ??= []) as unknown[]).push(value);
    } else {
      if (p[name] !== undefined) protocolError(`property ${name} appears twice`);
      p[name] = value;
    }
  }
  if (r.at !== end) malformed("a property runs past the property length");
  return props;
}

/** Decodes a property block (its length first) that fills `bytes`. */
export function decodeProperties(bytes: Uint8Array): Properties {
  const r = new BodyReader(bytes);
  const props = readProperties(r);
  if (r.left !== 0) malformed("bytes after the properties");
  return props;
}

/** Decodes a 3.1.1 / 5.0 packet of protocol level `level` (use 5 before CONNECT is known). */
export function decodePacket(raw: RawPacket, level: number): Packet {
  const r = new BodyReader(raw.body);
  const v5 = level === MQTT_5;
  const flags = raw.flags;
  const fixedFlags = (expected: number, name: string) => {
    if (flags !== expected) malformed(`${name} has reserved flags 0x${flags.toString(16)}`);
  };
  const done = (packet: Packet): Packet => {
    if (r.left !== 0) malformed(`${r.left} bytes are left over at the end of the packet`);
    return packet;
  };
  switch (raw.type) {
    case PacketType.Connect:
      fixedFlags(0, "CONNECT");
      return done(decodeConnect(r));
    case PacketType.Connack: {
      fixedFlags(0, "CONNACK");
      const ack = r.byte("the acknowledge flags");
      if (ack & 0xfe) malformed("CONNACK has reserved acknowledge flags set");
      const code = r.byte("the return code");
      const properties = v5 ? readProperties(r) : {};
      return done({ type: PacketType.Connack, sessionPresent: ack === 1, code, properties });
    }
    case PacketType.Publish: {
      const qos = (flags >> 1) & 3;
      if (qos === 3) malformed("PUBLISH has QoS 3");
      const dup = (flags & 8) !== 0;
      if (qos === 0 && dup) malformed("PUBLISH at QoS 0 has DUP set");
      const topic = r.topic("the topic name");
      let packetId: number | undefined;
      if (qos > 0) {
        packetId = r.u16("the packet identifier");
        if (packetId === 0) malformed("packet identifier 0");
      }
      const properties = v5 ? readProperties(r) : {};
      return {
        type: PacketType.Publish,
        dup,
        qos: qos as 0 | 1 | 2,
        retain: (flags & 1) !== 0,
        topic,
        packetId,
        properties,
        payload: r.rest(),
      } as PublishPacket;
    }
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp: {
      fixedFlags(raw.type === PacketType.Pubrel ? 2 : 0, packetName(raw.type));
      const packetId = r.u16("the packet identifier");
      if (packetId === 0) malformed("packet identifier 0");
      let code: number = Reason.Success;
      let properties: Properties = {};
      if (v5 && r.left > 0) {
        code = r.byte("the reason code");
        if (r.left > 0) properties = readProperties(r);
      }
      return done({ type: raw.type, packetId, code, properties } as AckPacket);
    }
    case PacketType.Subscribe:
      fixedFlags(2, "SUBSCRIBE");
      return done(decodeSubscribe(r, v5));
    case PacketType.Suback: {
      fixedFlags(0, "SUBACK");
      const packetId = r.u16("the packet identifier");
      const properties = v5 ? readProperties(r) : {};
      const codes = [...r.rest()];
      return { type: PacketType.Suback, packetId, properties, codes };
    }
    case PacketType.Unsubscribe: {
      fixedFlags(2, "UNSUBSCRIBE");
      const packetId = r.u16("the packet identifier");
      if (packetId === 0) malformed("packet identifier 0");
      const properties = v5 ? readProperties(r) : {};
      const filters: string[] = [];
      while (r.left > 0) filters.push(r.string("a topic filter"));
      if (filters.length === 0) protocolError("UNSUBSCRIBE without a topic filter");
      return { type: PacketType.Unsubscribe, packetId, properties, filters } as UnsubscribePacket;
    }
    case PacketType.Unsuback: {
      fixedFlags(0, "UNSUBACK");
      const packetId = r.u16("the packet identifier");
      const properties = v5 ? readProperties(r) : {};
      return { type: PacketType.Unsuback, packetId, properties, codes: v5 ? [...r.rest()] : [] };
    }
    case PacketType.Pingreq:
    case PacketType.Pingresp:
      fixedFlags(0, packetName(raw.type));
      return done({ type: raw.type });
    case PacketType.Disconnect: {
      fixedFlags(0, "DISCONNECT");
      let code: number = Reason.Success;
      let properties: Properties = {};
      if (v5 && r.left > 0) {
        code = r.byte("the reason code");
        if (r.left > 0) properties = readProperties(r);
      }
      return done({ type: PacketType.Disconnect, code, properties } as DisconnectPacket);
    }
    case PacketType.Auth: {
      if (!v5) malformed("AUTH is an MQTT 5 packet");
      fixedFlags(0, "AUTH");
      let code: number = Reason.Success;
      let properties: Properties = {};
      if (r.left > 0) {
        code = r.byte("the reason code");
        if (r.left > 0) properties = readProperties(r);
      }
      return done({ type: PacketType.Auth, code, properties });
    }
    default:
      malformed(`packet type ${raw.type} is reserved`);
  }
}

function decodeConnect(r: BodyReader): ConnectPacket {
  const protocolName = r.string("the protocol name");
  const level = r.byte("the protocol level");
  const packet: ConnectPacket = {
    type: PacketType.Connect,
    protocolName,
    level,
    clean: false,
    keepAlive: 0,
    clientId: "",
    properties: {},
  };
  // the caller answers a wrong name or level (CONNACK with the right code) before reading on
  if (protocolName !== "MQTT" || (level !== 4 && level !== 5)) {
    r.rest();
    return packet;
  }
  const v5 = level === MQTT_5;
  const flags = r.byte("the connect flags");
  if (flags & 1) malformed("the reserved connect flag is set");
  packet.clean = (flags & 2) !== 0;
  const willFlag = (flags & 4) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (!willFlag && (willQos !== 0 || willRetain)) {
    malformed("will QoS or will retain set without the will flag");
  }
  if (willQos === 3) malformed("will QoS 3");
  if (!v5 && hasPassword && !hasUsername) malformed("a password flag without a user name flag");
  packet.keepAlive = r.u16("the keep alive");
  if (v5) packet.properties = readProperties(r);
  packet.clientId = r.string("the client identifier");
  if (willFlag) {
    const properties = v5 ? readProperties(r) : {};
    const topic = r.string("the will topic");
    const payload = r.binary("the will payload");
    packet.will = {
      topic,
      payload,
      qos: willQos as Will["qos"],
      retain: willRetain,
      properties,
    };
  }
  if (hasUsername) packet.username = r.string("the user name");
  if (hasPassword) packet.password = r.binary("the password");
  return packet;
}

function decodeSubscribe(r: BodyReader, v5: boolean): SubscribePacket {
  const packetId = r.u16("the packet identifier");
  if (packetId === 0) malformed("packet identifier 0");
  const properties = v5 ? readProperties(r) : {};
  const subscriptions: Subscription[] = [];
  while (r.left > 0) {
    const filter = r.string("a topic filter");
    const options = r.byte("the subscription options");
    const qos = options & 3;
    if (qos === 3) malformed(`subscription to "${filter}" asks for QoS 3`);
    if (v5 ? options & 0xc0 : options & 0xfc) {
      malformed(`subscription to "${filter}" has reserved option bits set`);
    }
    const retainHandling = (options >> 4) & 3;
    if (retainHandling === 3) malformed(`subscription to "${filter}" has retain handling 3`);
    subscriptions.push({
      filter,
      qos: qos as Subscription["qos"],
      noLocal: v5 && (options & 4) !== 0,
      retainAsPublished: v5 && (options & 8) !== 0,
      retainHandling: retainHandling as Subscription["retainHandling"],
    });
  }
  if (subscriptions.length === 0) protocolError("SUBSCRIBE without a topic filter");
  return { type: PacketType.Subscribe, packetId, properties, subscriptions };
}

/** The name of a packet type as the specifications write it. */
export function packetName(type: number): string {
  return [
    "RESERVED",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
  ][type] ?? `type ${type}`;
}

/** Builds packet bodies. */
class BodyWriter {
  #parts: Uint8Array[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  bytes(b: Uint8Array): this {
    this.#parts.push(b);
    this.#size += b.length;
    return this;
  }

  byte(v: number): this {
    return this.bytes(Uint8Array.of(v & 0xff));
  }

  u16(v: number): this {
    return this.bytes(Uint8Array.of((v >> 8) & 0xff, v & 0xff));
  }

  u32(v: number): this {
    return this.bytes(
      Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff),
    );
  }

  varint(v: number): this {
    return this.bytes(encodeVarint(v));
  }

  binary(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  string(s: string): this {
    return this.binary(encoder.encode(s));
  }

  concat(): Uint8Array {
    if (this.#parts.length === 1) return this.#parts[0];
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Encodes a variable byte integer (0 … 268,435,455). */
export function encodeVarint(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > MAX_REMAINING_LENGTH) {
    throw new RangeError(`Cannot encode ${value} as a variable byte integer`);
  }
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return Uint8Array.from(out);
}

/** Encodes a property block (5.0). */
export function encodeProperties(props: Properties): Uint8Array {
  const w = new BodyWriter();
  for (const [name, value] of Object.entries(props) as Array<[keyof Properties, unknown]>) {
    if (value === undefined) continue;
    const id = PROPERTY_IDS.get(name);
    if (id === undefined) throw new RangeError(`Cannot encode property ${name}`);
    const kind = PROPERTIES[id][1];
    const values = name === "userProperties" || name === "subscriptionIdentifiers"
      ? value as unknown[]
      : [value];
    for (const v of values) {
      w.varint(id);
      switch (kind) {
        case "byte":
          w.byte(v as number);
          break;
        case "u16":
          w.u16(v as number);
          break;
        case "u32":
          w.u32(v as number);
          break;
        case "varint":
          w.varint(v as number);
          break;
        case "string":
          w.string(v as string);
          break;
        case "binary":
          w.binary(v as Uint8Array);
          break;
        case "pair": {
          const [k, val] = v as [string, string];
          w.string(k).string(val);
          break;
        }
      }
    }
  }
  const body = w.concat();
  const out = new Uint8Array(encodeVarint(body.length).length + body.length);
  const len = encodeVarint(body.length);
  out.set(len);
  out.set(body, len.length);
  return out;
}

function frame(first: number, body: Uint8Array): Uint8Array {
  const len = encodeVarint(body.length);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = first;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

/** Encodes `packet` for protocol level `level` (properties and reason codes only in 5.0). */
export function encodePacket(packet: Packet, level: number): Uint8Array {
  const v5 = level === MQTT_5;
  const w = new BodyWriter();
  const props = (p: Properties) => {
    if (v5) w.bytes(encodeProperties(p));
  };
  switch (packet.type) {
    case PacketType.Connect: {
      const p = packet;
      let flags = p.clean ? 2 : 0;
      if (p.will) flags |= 4 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
      if (p.password) flags |= 0x40;
      if (p.username !== undefined) flags |= 0x80;
      w.string(p.protocolName).byte(p.level).byte(flags).u16(p.keepAlive);
      props(p.properties);
      w.string(p.clientId);
      if (p.will) {
        props(p.will.properties);
        w.string(p.will.topic).binary(p.will.payload);
      }
      if (p.username !== undefined) w.string(p.username);
      if (p.password) w.binary(p.password);
      return frame(0x10, w.concat());
    }
    case PacketType.Connack:
      w.byte(packet.sessionPresent ? 1 : 0).byte(packet.code);
      props(packet.properties);
      return frame(0x20, w.concat());
    case PacketType.Publish:
      return encodePublish(packet, v5);
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp: {
      w.u16(packet.packetId);
      const hasProps = v5 && Object.keys(packet.properties).length > 0;
      if (v5 && (packet.code !== 0 || hasProps)) w.byte(packet.code);
      if (hasProps) props(packet.properties);
      return frame((packet.type << 4) | (packet.type === PacketType.Pubrel ? 2 : 0), w.concat());
    }
    case PacketType.Subscribe: {
      w.u16(packet.packetId);
      props(packet.properties);
      for (const s of packet.subscriptions) {
        w.string(s.filter).byte(
          s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | (s.retainHandling << 4),
        );
      }
      return frame(0x82, w.concat());
    }
    case PacketType.Suback:
      w.u16(packet.packetId);
      props(packet.properties);
      w.bytes(Uint8Array.from(packet.codes));
      return frame(0x90, w.concat());
    case PacketType.Unsubscribe:
      w.u16(packet.packetId);
      props(packet.properties);
      for (const f of packet.filters) w.string(f);
      return frame(0xa2, w.concat());
    case PacketType.Unsuback:
      w.u16(packet.packetId);
      if (v5) {
        props(packet.properties);
        w.bytes(Uint8Array.from(packet.codes));
      }
      return frame(0xb0, w.concat());
    case PacketType.Pingreq:
    case PacketType.Pingresp:
      return frame(packet.type << 4, new Uint8Array(0));
    case PacketType.Disconnect:
    case PacketType.Auth: {
      const hasProps = Object.keys(packet.properties).length > 0;
      if (v5 && (packet.code !== 0 || hasProps)) {
        w.byte(packet.code);
        if (hasProps) props(packet.properties);
      }
      return frame(packet.type << 4, w.concat());
    }
  }
}

/** The encoded size of a PUBLISH without building it (for the client's maximum packet size). */
export function publishSize(topic: string, payload: number, qos: number, props: number): number {
  const body = 2 + encoder.encode(topic).length + (qos > 0 ? 2 : 0) + props + payload;
  return 1 + encodeVarint(Math.min(body, MAX_REMAINING_LENGTH)).length + body;
}

/** Encoded topic names, reused (deliveries repeat a few topics). */
const topicBytes = new Map<string, Uint8Array>();
const TOPIC_CACHE_MAX = 4096;
const NO_PROPERTIES = Uint8Array.of(0);

/** PUBLISH, the hot path: one allocation, the topic's bytes cached. */
function encodePublish(p: PublishPacket, v5: boolean): Uint8Array {
  const topic = topicOf(p.topic);
  const props = publishProperties(p, v5);
  const out = new Uint8Array(publishLength(p, topic, props));
  writePublish(p, topic, props, out, 0);
  return out;
}

function topicOf(name: string): Uint8Array {
  let topic = topicBytes.get(name);
  if (topic === undefined) {
    topic = encoder.encode(name);
    if (topicBytes.size >= TOPIC_CACHE_MAX) topicBytes.clear();
    topicBytes.set(name, topic);
  }
  return topic;
}

function publishProperties(p: PublishPacket, v5: boolean): Uint8Array | undefined {
  if (!v5) return undefined;
  return isEmptyObject(p.properties) ? NO_PROPERTIES : encodeProperties(p.properties);
}

function isEmptyObject(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function publishBody(p: PublishPacket, topic: Uint8Array, props: Uint8Array | undefined): number {
  return 2 + topic.length + (p.qos > 0 ? 2 : 0) + (props?.length ?? 0) + p.payload.length;
}

function publishLength(p: PublishPacket, topic: Uint8Array, props: Uint8Array | undefined): number {
  const body = publishBody(p, topic, props);
  return 1 + (body < 128 ? 1 : body < 16_384 ? 2 : body < 2_097_152 ? 3 : 4) + body;
}

/** Writes PUBLISH `p` into `out` at `at`; returns the position after it. */
function writePublish(
  p: PublishPacket,
  topic: Uint8Array,
  props: Uint8Array | undefined,
  out: Uint8Array,
  at: number,
): number {
  out[at++] = 0x30 | (p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  let n = publishBody(p, topic, props);
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out[at++] = b;
  } while (n > 0);
  out[at++] = topic.length >> 8;
  out[at++] = topic.length & 0xff;
  out.set(topic, at);
  at += topic.length;
  if (p.qos > 0) {
    const id = p.packetId ?? 0;
    out[at++] = id >> 8;
    out[at++] = id & 0xff;
  }
  if (props) {
    out.set(props, at);
    at += props.length;
  }
  out.set(p.payload, at);
  return at + p.payload.length;
}

/** Whether `p` is a PUBACK, PUBREC, PUBREL or PUBCOMP of 4 bytes (no reason code, no properties). */
function isShortAck(p: Packet, v5: boolean): p is AckPacket {
  return (p.type === PacketType.Puback || p.type === PacketType.Pubrec ||
    p.type === PacketType.Pubrel || p.type === PacketType.Pubcomp) &&
    (!v5 || (p.code === 0 && isEmptyObject(p.properties)));
}

/**
 * Encodes `packets` for protocol level `level` into one buffer, as `encodePacket` would each
 * of them, one after the other (a session step's packets: one allocation for its PUBLISHes
 * and acknowledgements, the common case).
 */
export function encodePackets(packets: readonly Packet[], level: number): Uint8Array {
  const v5 = level === MQTT_5;
  const n = packets.length;
  // per packet: the encoded topic and properties of a PUBLISH, or another packet's bytes
  const parts: Array<Uint8Array | undefined> = new Array(n);
  const props: Array<Uint8Array | undefined> = new Array(n);
  let size = 0;
  for (let i = 0; i < n; i++) {
    const p = packets[i];
    if (p.type === PacketType.Publish) {
      const topic = topicOf(p.topic);
      const pr = publishProperties(p, v5);
      parts[i] = topic;
      props[i] = pr;
      size += publishLength(p, topic, pr);
    } else if (isShortAck(p, v5)) {
      size += 4;
    } else {
      const bytes = encodePacket(p, level);
      parts[i] = bytes;
      size += bytes.length;
    }
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const p = packets[i];
    if (p.type === PacketType.Publish) {
      at = writePublish(p, parts[i]!, props[i], out, at);
    } else if (parts[i] === undefined) {
      const a = p as AckPacket;
      out[at] = (a.type << 4) | (a.type === PacketType.Pubrel ? 2 : 0);
      out[at + 1] = 2;
      out[at + 2] = a.packetId >> 8;
      out[at + 3] = a.packetId & 0xff;
      at += 4;
    } else {
      out.set(parts[i]!, at);
      at += parts[i]!.length;
    }
  }
  return out;
}

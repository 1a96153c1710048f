/**
 * The AMQP 0-9-1 frame codec, pure (no sockets): a growable {@linkcode AmqpWriter},
 * a bounds-checked {@linkcode AmqpReader}, field tables (RabbitMQ's type letters), the
 * method argument lists of every class this server speaks, content-header properties,
 * and an incremental {@linkcode AmqpFrameDecoder} that checks the frame-end octet and
 * frame_max. Malformed input throws {@linkcode AmqpError} with the reply code the
 * specification prescribes (501 FRAME_ERROR, 502 SYNTAX_ERROR, 503 COMMAND_INVALID).
 *
 * @module
 */
import { FRAME_END, FRAME_HEADER_SIZE, FrameType, REPLY_NAMES, ReplyCode } from "./constants.ts";

/** An AMQP exception: a reply code, the text sent to the peer, and the method that caused it. */
export class AmqpError extends Error {
  /** The reply code (`ReplyCode`). */
  readonly code: number;
  /** Class id of the method that failed (0 when none). */
  readonly classId: number;
  /** Method id of the method that failed (0 when none). */
  readonly methodId: number;

  constructor(code: number, message: string, classId = 0, methodId = 0) {
    super(message);
    this.name = "AmqpError";
    this.code = code;
    this.classId = classId;
    this.methodId = methodId;
  }

  /** The reply text as RabbitMQ shapes it: `NAME - message`. */
  get replyText(): string {
    return `${REPLY_NAMES[this.code] ?? "ERROR"} - ${this.message}`.slice(0, 255);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A decimal field value (`D`): `value / 10^scale`. */
export interface AmqpDecimal {
  scale: number;
  value: number;
}

/** A timestamp field value (`T`), seconds since the epoch, kept distinct from a number. */
export class AmqpTimestamp {
  constructor(readonly seconds: number) {}
}

/** A field-table value as decoded. */
export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | null
  | AmqpTimestamp
  | AmqpDecimal
  | FieldValue[]
  | FieldTable;

/** A field table. */
export interface FieldTable {
  [key: string]: FieldValue;
}

/** Appends AMQP primitives to a growable buffer. */
export class AmqpWriter {
  #buf: Uint8Array;
  #view: DataView;
  /** Bytes written. */
  length = 0;

  constructor(capacity = 4096) {
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
  }

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.#room(1);
    this.#buf[this.length++] = v;
  }

  u16(v: number): void {
    this.#room(2);
    this.#view.setUint16(this.length, v);
    this.length += 2;
  }

  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.length, v);
    this.length += 4;
  }

  i8(v: number): void {
    this.#room(1);
    this.#view.setInt8(this.length, v);
    this.length += 1;
  }

  i16(v: number): void {
    this.#room(2);
    this.#view.setInt16(this.length, v);
    this.length += 2;
  }

  i32(v: number): void {
    this.#room(4);
    this.#view.setInt32(this.length, v);
    this.length += 4;
  }

  /** An unsigned 64-bit number (a JS number up to 2^53, or a bigint). */
  u64(v: number | bigint): void {
    this.#room(8);
    if (typeof v === "bigint") this.#view.setBigUint64(this.length, v);
    else {
      this.#view.setUint32(this.length, Math.floor(v / 0x100000000));
      this.#view.setUint32(this.length + 4, v >>> 0);
    }
    this.length += 8;
  }

  i64(v: number | bigint): void {
    this.#room(8);
    this.#view.setBigInt64(this.length, typeof v === "bigint" ? v : BigInt(v));
    this.length += 8;
  }

  f32(v: number): void {
    this.#room(4);
    this.#view.setFloat32(this.length, v);
    this.length += 4;
  }

  f64(v: number): void {
    this.#room(8);
    this.#view.setFloat64(this.length, v);
    this.length += 8;
  }

  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }

  /** A short string (one length octet, at most 255 UTF-8 bytes). */
  shortstr(s: string): void {
    // ASCII fast path: most names are
    let ascii = s.length <= 255;
    for (let i = 0; ascii && i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    if (ascii) {
      this.#room(1 + s.length);
      this.#buf[this.length++] = s.length;
      for (let i = 0; i < s.length; i++) this.#buf[this.length++] = s.charCodeAt(i);
      return;
    }
    const b = encoder.encode(s);
    if (b.length > 255) {
      throw new AmqpError(ReplyCode.SyntaxError, `short string longer than 255 bytes`);
    }
    this.u8(b.length);
    this.bytes(b);
  }

  /** A long string (four length octets). */
  longstr(s: string | Uint8Array): void {
    const b = typeof s === "string" ? encoder.encode(s) : s;
    this.u32(b.length);
    this.bytes(b);
  }

  /** A field table. */
  table(t: FieldTable | undefined): void {
    const at = this.length;
    this.u32(0);
    if (t) {
      for (const [k, v] of Object.entries(t)) {
        if (v === undefined) continue;
        this.shortstr(k);
        this.fieldValue(v);
      }
    }
    this.#view.setUint32(at, this.length - at - 4);
  }

  /** One typed field value, its type chosen from the JS value. */
  fieldValue(v: FieldValue): void {
    if (v === null || v === undefined) this.u8(0x56); // V
    else if (typeof v === "boolean") {
      this.u8(0x74); // t
      this.u8(v ? 1 : 0);
    } else if (typeof v === "number") {
      if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
        this.u8(0x49); // I
        this.i32(v);
      } else if (Number.isSafeInteger(v)) {
        this.u8(0x6c); // l
        this.i64(v);
      } else {
        this.u8(0x64); // d
        this.f64(v);
      }
    } else if (typeof v === "bigint") {
      this.u8(0x6c);
      this.i64(v);
    } else if (typeof v === "string") {
      this.u8(0x53); // S
      this.longstr(v);
    } else if (v instanceof Uint8Array) {
      this.u8(0x78); // x
      this.longstr(v);
    } else if (v instanceof AmqpTimestamp) {
      this.u8(0x54); // T
      this.u64(v.seconds);
    } else if (v instanceof Date) {
      this.u8(0x54);
      this.u64(Math.floor(v.getTime() / 1000));
    } else if (Array.isArray(v)) {
      this.u8(0x41); // A
      const at = this.length;
      this.u32(0);
      for (const x of v) this.fieldValue(x);
      this.#view.setUint32(at, this.length - at - 4);
    } else if (isDecimal(v)) {
      this.u8(0x44); // D
      this.u8(v.scale);
      this.i32(v.value);
    } else {
      this.u8(0x46); // F
      this.table(v as FieldTable);
    }
  }

  /**
   * Room for `n` more bytes, for a hot path that lays out a frame by hand: returns the
   * buffer to fill from `length` on (the caller advances `length` by what it wrote, at
   * most `n`). The buffer is only valid until the next write.
   */
  claim(n: number): Uint8Array {
    this.#room(n);
    return this.#buf;
  }

  /** Overwrites a u32 at `at` (for sizes known after the fact). */
  patchU32(at: number, v: number): void {
    this.#view.setUint32(at, v);
  }

  /** A copy of the bytes written. */
  toBytes(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }

  /** The bytes written, without copying (valid until the next write or reset). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }

  /** Forgets what was written (keeps the buffer). */
  reset(): void {
    this.length = 0;
  }
}

function isDecimal(v: unknown): v is AmqpDecimal {
  if (typeof v !== "object" || v === null) return false;
  const keys = Object.keys(v);
  return keys.length === 2 && "scale" in v && "value" in v &&
    typeof (v as AmqpDecimal).scale === "number" && typeof (v as AmqpDecimal).value === "number";
}

/** Reads AMQP primitives from one frame payload; running past its end is a 502 SYNTAX_ERROR. */
export class AmqpReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  /** Read position. */
  pos: number;
  readonly #end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.#end = end;
  }

  /** Bytes left. */
  get remaining(): number {
    return this.#end - this.pos;
  }

  #need(n: number): number {
    if (this.pos + n > this.#end) {
      throw new AmqpError(ReplyCode.SyntaxError, `truncated arguments (needed ${n} more bytes)`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.#buf[this.#need(1)];
  }

  u16(): number {
    return this.#view.getUint16(this.#need(2));
  }

  u32(): number {
    return this.#view.getUint32(this.#need(4));
  }

  i8(): number {
    return this.#view.getInt8(this.#need(1));
  }

  i16(): number {
    return this.#view.getInt16(this.#need(2));
  }

  i32(): number {
    return this.#view.getInt32(this.#need(4));
  }

  /** An unsigned 64-bit value as a number (exact up to 2^53). */
  u64(): number {
    const at = this.#need(8);
    return this.#view.getUint32(at) * 0x100000000 + this.#view.getUint32(at + 4);
  }

  i64(): number | bigint {
    const v = this.#view.getBigInt64(this.#need(8));
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }

  bytes(n: number): Uint8Array {
    const at = this.#need(n);
    return this.#buf.subarray(at, at + n);
  }

  shortstr(): string {
    const n = this.u8();
    const at = this.#need(n);
    return shortString(this.#buf, at, n);
  }

  longstrBytes(): Uint8Array {
    return this.bytes(this.u32());
  }

  longstr(): string {
    return utf8(this.longstrBytes());
  }

  table(): FieldTable {
    const size = this.u32();
    const end = this.#need(size) + size;
    const sub = new AmqpReader(this.#buf, end - size, end);
    const out: FieldTable = {};
    while (sub.remaining > 0) {
      const key = sub.shortstr();
      out[key] = sub.fieldValue();
    }
    return out;
  }

  fieldValue(): FieldValue {
    const type = this.u8();
    switch (type) {
      case 0x74: // t
        return this.u8() !== 0;
      case 0x62: // b
        return this.i8();
      case 0x42: // B
        return this.u8();
      case 0x73: // s (RabbitMQ: int16)
        return this.i16();
      case 0x55: // U
        return this.i16();
      case 0x75: // u
        return this.u16();
      case 0x49: // I
        return this.i32();
      case 0x69: // i
        return this.u32();
      case 0x6c: // l
      case 0x4c: // L
        return this.i64();
      case 0x66: // f
        return this.#view.getFloat32(this.#need(4));
      case 0x64: // d
        return this.#view.getFloat64(this.#need(8));
      case 0x44: { // D
        const scale = this.u8();
        return { scale, value: this.i32() };
      }
      case 0x53: { // S
        const b = this.longstrBytes();
        try {
          return decoder.decode(b);
        } catch {
          return b.slice();
        }
      }
      case 0x78: // x
        return this.longstrBytes().slice();
      case 0x41: { // A
        const size = this.u32();
        const end = this.#need(size) + size;
        const sub = new AmqpReader(this.#buf, end - size, end);
        const out: FieldValue[] = [];
        while (sub.remaining > 0) out.push(sub.fieldValue());
        return out;
      }
      case 0x54: // T
        return new AmqpTimestamp(this.u64());
      case 0x46: // F
        return this.table();
      case 0x56: // V
        return null;
      default:
        throw new AmqpError(
          ReplyCode.SyntaxError,
          `unknown field-table value type 0x${type.toString(16)}`,
        );
    }
  }
}

// The last short string of each length, reused when the bytes match: exchange names,
// routing keys and consumer tags repeat from one message to the next.
const lastShort: string[] = new Array(256).fill("");
const lastShortBytes: Uint8Array[] = Array.from({ length: 256 }, () => new Uint8Array(0));

/** Decodes `n` bytes at `at` as a short string (cached per length when they repeat). */
export function shortString(buf: Uint8Array, at: number, n: number): string {
  const prev = lastShortBytes[n];
  if (prev.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (prev[i] !== buf[at + i]) {
        same = false;
        break;
      }
    }
    if (same) return lastShort[n];
  }
  let s = "";
  for (let i = at; i < at + n; i++) {
    const c = buf[i];
    if (c > 0x7f) {
      s = utf8(buf.subarray(at, at + n));
      break;
    }
    s += String.fromCharCode(c);
  }
  lastShortBytes[n] = buf.slice(at, at + n);
  lastShort[n] = s;
  return s;
}

function utf8(b: Uint8Array): string {
  try {
    return decoder.decode(b);
  } catch {
    throw new AmqpError(ReplyCode.SyntaxError, "string is not valid UTF-8");
  }
}

/** Argument types of method fields. */
type ArgType = "octet" | "short" | "long" | "longlong" | "shortstr" | "longstr" | "bit" | "table";

interface MethodSpec {
  name: string;
  args: Array<[string, ArgType]>;
}

const S: ArgType = "shortstr";
const CLOSE_ARGS: Array<[string, ArgType]> = [
  ["replyCode", "short"],
  ["replyText", S],
  ["classId", "short"],
  ["methodId", "short"],
];

/** Every method this codec reads or writes, by `classId << 16 | methodId`. */
const METHODS = new Map<number, MethodSpec>();
function def(c: number, m: number, name: string, args: Array<[string, ArgType]> = []): void {
  METHODS.set((c << 16) | m, { name, args });
}
def(10, 10, "connection.start", [
  ["versionMajor", "octet"],
  ["versionMinor", "octet"],
  ["serverProperties", "table"],
  ["mechanisms", "longstr"],
  ["locales", "longstr"],
]);
def(10, 11, "connection.start-ok", [
  ["clientProperties", "table"],
  ["mechanism", S],
  ["response", "longstr"],
  ["locale", S],
]);
def(10, 20, "connection.secure", [["challenge", "longstr"]]);
def(10, 21, "connection.secure-ok", [["response", "longstr"]]);
def(10, 30, "connection.tune", [["channelMax", "short"], ["frameMax", "long"], [
  "heartbeat",
  "short",
]]);
def(10, 31, "connection.tune-ok", [["channelMax", "short"], ["frameMax", "long"], [
  "heartbeat",
  "short",
]]);
def(10, 40, "connection.open", [["virtualHost", S], ["capabilities", S], ["insist", "bit"]]);
def(10, 41, "connection.open-ok", [["knownHosts", S]]);
def(10, 50, "connection.close", CLOSE_ARGS);
def(10, 51, "connection.close-ok");
def(10, 60, "connection.blocked", [["reason", S]]);
def(10, 61, "connection.unblocked");
def(10, 70, "connection.update-secret", [["newSecret", "longstr"], ["reason", S]]);
def(10, 71, "connection.update-secret-ok");
def(20, 10, "channel.open", [["outOfBand", S]]);
def(20, 11, "channel.open-ok", [["channelId", "longstr"]]);
def(20, 20, "channel.flow", [["active", "bit"]]);
def(20, 21, "channel.flow-ok", [["active", "bit"]]);
def(20, 40, "channel.close", CLOSE_ARGS);
def(20, 41, "channel.close-ok");
def(40, 10, "exchange.declare", [
  ["ticket", "short"],
  ["exchange", S],
  ["type", S],
  ["passive", "bit"],
  ["durable", "bit"],
  ["autoDelete", "bit"],
  ["internal", "bit"],
  ["noWait", "bit"],
  ["arguments", "table"],
]);
def(40, 11, "exchange.declare-ok");
def(40, 20, "exchange.delete", [["ticket", "short"], ["exchange", S], ["ifUnused", "bit"], [
  "noWait",
  "bit",
]]);
def(40, 21, "exchange.delete-ok");
def(40, 30, "exchange.bind", [
  ["ticket", "short"],
  ["destination", S],
  ["source", S],
  ["routingKey", S],
  ["noWait", "bit"],
  ["arguments", "table"],
]);
def(40, 31, "exchange.bind-ok");
def(40, 40, "exchange.unbind", [
  ["ticket", "short"],
  ["destination", S],
  ["source", S],
  ["routingKey", S],
  ["noWait", "bit"],
  ["arguments", "table"],
]);
def(40, 51, "exchange.unbind-ok");
def(50, 10, "queue.declare", [
  ["ticket", "short"],
  ["queue", S],
  ["passive", "bit"],
  ["durable", "bit"],
  ["exclusive", "bit"],
  ["autoDelete", "bit"],
  ["noWait", "bit"],
  ["arguments", "table"],
]);
def(50, 11, "queue.declare-ok", [["queue", S], ["messageCount", "long"], [
  "consumerCount",
  "long",
]]);
def(50, 20, "queue.bind", [
  ["ticket", "short"],
  ["queue", S],
  ["exchange", S],
  ["routingKey", S],
  ["noWait", "bit"],
  ["arguments", "table"],
]);
def(50, 21, "queue.bind-ok");
def(50, 30, "queue.purge", [["ticket", "short"], ["queue", S], ["noWait", "bit"]]);
def(50, 31, "queue.purge-ok", [["messageCount", "long"]]);
def(50, 40, "queue.delete", [
  ["ticket", "short"],
  ["queue", S],
  ["ifUnused", "bit"],
  ["ifEmpty", "bit"],
  ["noWait", "bit"],
]);
def(50, 41, "queue.delete-ok", [["messageCount", "long"]]);
def(50, 50, "queue.unbind", [
  ["ticket", "short"],
  ["queue", S],
  ["exchange", S],
  ["routingKey", S],
  ["arguments", "table"],
]);
def(50, 51, "queue.unbind-ok");
def(60, 10, "basic.qos", [["prefetchSize", "long"], ["prefetchCount", "short"], [
  "global",
  "bit",
]]);
def(60, 11, "basic.qos-ok");
def(60, 20, "basic.consume", [
  ["ticket", "short"],
  ["queue", S],
  ["consumerTag", S],
  ["noLocal", "bit"],
  ["noAck", "bit"],
  ["exclusive", "bit"],
  ["noWait", "bit"],
  ["arguments", "table"],
]);
def(60, 21, "basic.consume-ok", [["consumerTag", S]]);
def(60, 30, "basic.cancel", [["consumerTag", S], ["noWait", "bit"]]);
def(60, 31, "basic.cancel-ok", [["consumerTag", S]]);
def(60, 40, "basic.publish", [
  ["ticket", "short"],
  ["exchange", S],
  ["routingKey", S],
  ["mandatory", "bit"],
  ["immediate", "bit"],
]);
def(60, 50, "basic.return", [["replyCode", "short"], ["replyText", S], ["exchange", S], [
  "routingKey",
  S,
]]);
def(60, 60, "basic.deliver", [
  ["consumerTag", S],
  ["deliveryTag", "longlong"],
  ["redelivered", "bit"],
  ["exchange", S],
  ["routingKey", S],
]);
def(60, 70, "basic.get", [["ticket", "short"], ["queue", S], ["noAck", "bit"]]);
def(60, 71, "basic.get-ok", [
  ["deliveryTag", "longlong"],
  ["redelivered", "bit"],
  ["exchange", S],
  ["routingKey", S],
  ["messageCount", "long"],
]);
def(60, 72, "basic.get-empty", [["clusterId", S]]);
def(60, 80, "basic.ack", [["deliveryTag", "longlong"], ["multiple", "bit"]]);
def(60, 90, "basic.reject", [["deliveryTag", "longlong"], ["requeue", "bit"]]);
def(60, 100, "basic.recover-async", [["requeue", "bit"]]);
def(60, 110, "basic.recover", [["requeue", "bit"]]);
def(60, 111, "basic.recover-ok");
def(60, 120, "basic.nack", [["deliveryTag", "longlong"], ["multiple", "bit"], [
  "requeue",
  "bit",
]]);
def(85, 10, "confirm.select", [["noWait", "bit"]]);
def(85, 11, "confirm.select-ok");
def(90, 10, "tx.select");
def(90, 11, "tx.select-ok");
def(90, 20, "tx.commit");
def(90, 21, "tx.commit-ok");
def(90, 30, "tx.rollback");
def(90, 31, "tx.rollback-ok");

/** A decoded method: its ids, its name (`queue.declare`), and its arguments by name. */
export interface AmqpMethod {
  classId: number;
  methodId: number;
  name: string;
  // deno-lint-ignore no-explicit-any
  args: Record<string, any>;
}

/** The name of a method (`basic.publish`), or `class.method` numbers when unknown. */
export function methodName(classId: number, methodId: number): string {
  return METHODS.get((classId << 16) | methodId)?.name ?? `${classId}.${methodId}`;
}

/** Decodes a method frame's payload; an unknown method is 540 NOT_IMPLEMENTED, bad arguments 502. */
export function decodeMethod(payload: Uint8Array): AmqpMethod {
  const r = new AmqpReader(payload);
  const classId = r.u16();
  const methodId = r.u16();
  const spec = METHODS.get((classId << 16) | methodId);
  if (!spec) {
    throw new AmqpError(
      ReplyCode.NotImplemented,
      `unknown method ${classId}.${methodId}`,
      classId,
      methodId,
    );
  }
  const args: Record<string, unknown> = {};
  let bits = 0;
  let bitPos = 8;
  try {
    for (const [name, type] of spec.args) {
      if (type === "bit") {
        if (bitPos === 8) {
          bits = r.u8();
          bitPos = 0;
        }
        args[name] = (bits & (1 << bitPos++)) !== 0;
        continue;
      }
      bitPos = 8;
      switch (type) {
        case "octet":
          args[name] = r.u8();
          break;
        case "short":
          args[name] = r.u16();
          break;
        case "long":
          args[name] = r.u32();
          break;
        case "longlong":
          args[name] = r.u64();
          break;
        case "shortstr":
          args[name] = r.shortstr();
          break;
        case "longstr":
          args[name] = r.longstrBytes();
          break;
        case "table":
          args[name] = r.table();
          break;
      }
    }
  } catch (err) {
    if (err instanceof AmqpError) {
      throw new AmqpError(err.code, `${spec.name}: ${err.message}`, classId, methodId);
    }
    throw err;
  }
  return { classId, methodId, name: spec.name, args };
}

/** Writes one method frame (type, channel, size, class, method, arguments, frame end). */
export function writeMethodFrame(
  w: AmqpWriter,
  channel: number,
  classId: number,
  methodId: number,
  args: Record<string, unknown> = {},
): void {
  const spec = METHODS.get((classId << 16) | methodId);
  if (!spec) throw new Error(`Cannot encode method ${classId}.${methodId}: unknown`);
  w.u8(FrameType.Method);
  w.u16(channel);
  const sizeAt = w.length;
  w.u32(0);
  w.u16(classId);
  w.u16(methodId);
  let bits = 0;
  let bitPos = -1;
  const flushBits = () => {
    if (bitPos >= 0) w.u8(bits);
    bits = 0;
    bitPos = -1;
  };
  for (const [name, type] of spec.args) {
    const v = args[name];
    if (type === "bit") {
      if (bitPos === 7) flushBits();
      bitPos++;
      if (v) bits |= 1 << bitPos;
      continue;
    }
    flushBits();
    switch (type) {
      case "octet":
        w.u8(Number(v ?? 0));
        break;
      case "short":
        w.u16(Number(v ?? 0));
        break;
      case "long":
        w.u32(Number(v ?? 0));
        break;
      case "longlong":
        w.u64(Number(v ?? 0));
        break;
      case "shortstr":
        w.shortstr(String(v ?? ""));
        break;
      case "longstr":
        w.longstr((v ?? "") as string | Uint8Array);
        break;
      case "table":
        w.table(v as FieldTable | undefined);
        break;
    }
  }
  flushBits();
  w.patchU32(sizeAt, w.length - sizeAt - 4);
  w.u8(FRAME_END);
}

/** Encodes one method frame on its own. */
export function encodeMethodFrame(
  channel: number,
  classId: number,
  methodId: number,
  args: Record<string, unknown> = {},
): Uint8Array {
  const w = new AmqpWriter(256);
  writeMethodFrame(w, channel, classId, methodId, args);
  return w.toBytes();
}

/** The basic class's content properties, by the names amqplib uses. */
export interface BasicProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: FieldTable;
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
  clusterId?: string;
}

/** Property names in flag order (bit 15 first). */
const PROPERTY_ORDER: Array<[keyof BasicProperties, "shortstr" | "table" | "octet" | "longlong"]> =
  [
    ["contentType", "shortstr"],
    ["contentEncoding", "shortstr"],
    ["headers", "table"],
    ["deliveryMode", "octet"],
    ["priority", "octet"],
    ["correlationId", "shortstr"],
    ["replyTo", "shortstr"],
    ["expiration", "shortstr"],
    ["messageId", "shortstr"],
    ["timestamp", "longlong"],
    ["type", "shortstr"],
    ["userId", "shortstr"],
    ["appId", "shortstr"],
    ["clusterId", "shortstr"],
  ];

/** Decodes a property flags word and list (`raw` starts at the flags). */
export function decodeProperties(raw: Uint8Array): BasicProperties {
  const r = new AmqpReader(raw);
  const flags = r.u16();
  if (flags & 1) {
    throw new AmqpError(ReplyCode.SyntaxError, "property flags continuation is not used by basic");
  }
  const out: BasicProperties = {};
  for (let i = 0; i < PROPERTY_ORDER.length; i++) {
    if (!(flags & (1 << (15 - i)))) continue;
    const [name, type] = PROPERTY_ORDER[i];
    const o = out as Record<string, unknown>;
    if (type === "shortstr") o[name] = r.shortstr();
    else if (type === "table") o[name] = r.table();
    else if (type === "octet") o[name] = r.u8();
    else o[name] = r.u64();
  }
  return out;
}

/** Writes a property flags word and list. */
export function writeProperties(w: AmqpWriter, p: BasicProperties): void {
  let flags = 0;
  for (let i = 0; i < PROPERTY_ORDER.length; i++) {
    if (p[PROPERTY_ORDER[i][0]] !== undefined) flags |= 1 << (15 - i);
  }
  w.u16(flags);
  for (const [name, type] of PROPERTY_ORDER) {
    const v = p[name];
    if (v === undefined) continue;
    if (type === "shortstr") w.shortstr(String(v));
    else if (type === "table") w.table(v as FieldTable);
    else if (type === "octet") w.u8(Number(v));
    else w.u64(Number(v));
  }
}

/** Encodes properties to the raw form kept with a message (flags and list). */
export function encodeProperties(p: BasicProperties): Uint8Array {
  const w = new AmqpWriter(64);
  writeProperties(w, p);
  return w.toBytes();
}

/** A content header frame's payload: class, body size, raw properties (flags onward). */
export interface ContentHeader {
  classId: number;
  bodySize: number;
  /** Property flags and list, as received (kept intact end to end). */
  rawProperties: Uint8Array;
}

/** Decodes a content header payload (the properties stay raw; decode them with decodeProperties). */
export function decodeContentHeader(payload: Uint8Array): ContentHeader {
  if (payload.length < 14) throw new AmqpError(ReplyCode.SyntaxError, "content header too short");
  const p = payload;
  const classId = (p[0] << 8) | p[1];
  // weight (2 bytes), then the 64-bit body size
  const hi = ((p[4] << 24) >>> 0) + (p[5] << 16) + (p[6] << 8) + p[7];
  const lo = ((p[8] << 24) >>> 0) + (p[9] << 16) + (p[10] << 8) + p[11];
  return { classId, bodySize: hi * 0x100000000 + lo, rawProperties: payload.subarray(12) };
}

/**
 * Writes a whole message: its content header frame (with `rawProperties` as they are) and
 * body frames of at most `frameMax - 8` bytes each.
 */
export function writeContent(
  w: AmqpWriter,
  channel: number,
  rawProperties: Uint8Array,
  body: Uint8Array,
  frameMax: number,
): void {
  w.u8(FrameType.Header);
  w.u16(channel);
  w.u32(12 + rawProperties.length);
  w.u16(60);
  w.u16(0);
  w.u64(body.length);
  w.bytes(rawProperties);
  w.u8(FRAME_END);
  const chunk = frameMax - FRAME_HEADER_SIZE - 1;
  for (let at = 0; at < body.length; at += chunk) {
    const part = body.subarray(at, Math.min(body.length, at + chunk));
    w.u8(FrameType.Body);
    w.u16(channel);
    w.u32(part.length);
    w.bytes(part);
    w.u8(FRAME_END);
  }
}

/** One frame as read: its type, channel and payload (a view into the decoder's buffer). */
export interface AmqpFrame {
  type: number;
  channel: number;
  payload: Uint8Array;
}

/**
 * Splits a byte stream into frames. `push(chunk)` then `next()` until it returns
 * undefined; a frame is only returned when it is complete. A frame whose size exceeds
 * `frameMax`, an unknown frame type, or a wrong frame-end octet throws 501 FRAME_ERROR
 * (the stream cannot be resynchronised after that).
 */
export class AmqpFrameDecoder {
  #buf: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  /** Largest whole frame accepted (header, payload and end octet). */
  frameMax: number;

  constructor(frameMax: number) {
    this.frameMax = frameMax;
  }

  /** Bytes buffered but not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Adds bytes read from the socket. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#start === this.#end) {
      // nothing pending: read straight from the chunk (no copy)
      this.#buf = chunk;
      this.#start = 0;
      this.#end = chunk.length;
      return;
    }
    const pending = this.#end - this.#start;
    const next = new Uint8Array(pending + chunk.length);
    next.set(this.#buf.subarray(this.#start, this.#end));
    next.set(chunk, pending);
    this.#buf = next;
    this.#start = 0;
    this.#end = next.length;
  }

  /** Takes `n` raw bytes when available (the protocol header before any frame). */
  take(n: number): Uint8Array | undefined {
    if (this.#end - this.#start < n) return undefined;
    const out = this.#buf.subarray(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): AmqpFrame | undefined {
    const avail = this.#end - this.#start;
    if (avail < FRAME_HEADER_SIZE) return undefined;
    const b = this.#buf;
    const s = this.#start;
    const type = b[s];
    if (
      type !== FrameType.Method && type !== FrameType.Header && type !== FrameType.Body &&
      type !== FrameType.Heartbeat
    ) {
      throw new AmqpError(ReplyCode.FrameError, `unknown frame type ${type}`);
    }
    const channel = (b[s + 1] << 8) | b[s + 2];
    const size = ((b[s + 3] << 24) >>> 0) + (b[s + 4] << 16) + (b[s + 5] << 8) + b[s + 6];
    if (size + FRAME_HEADER_SIZE + 1 > this.frameMax) {
      throw new AmqpError(
        ReplyCode.FrameError,
        `frame of ${size + FRAME_HEADER_SIZE + 1} bytes is larger than frame_max ${this.frameMax}`,
      );
    }
    if (avail < FRAME_HEADER_SIZE + size + 1) return undefined;
    const endAt = s + FRAME_HEADER_SIZE + size;
    if (b[endAt] !== FRAME_END) {
      throw new AmqpError(
        ReplyCode.FrameError,
        `frame end octet is 0x${b[endAt].toString(16)}, not 0xce`,
      );
    }
    this.#start = endAt + 1;
    return { type, channel, payload: b.subarray(s + FRAME_HEADER_SIZE, endAt) };
  }
}

/**
 * A fast MessagePack encoder and decoder for the frame payloads peerd sends: nil, booleans,
 * integers, floats, strings, binary, arrays and maps (plain objects, `Map`). It writes
 * straight into the output buffer and decodes without per-call setup, which matters at
 * millions of frames a second. Anything else (extension types such as timestamps) is
 * handed to `@msgpack/msgpack`, the reference codec, so the wire format is exactly
 * MessagePack either way.
 *
 * @module
 */
import { Decoder as ReferenceDecoder, Encoder as ReferenceEncoder } from "@msgpack/msgpack";

/** Thrown by the fast encoder/decoder for input it does not handle. */
class Unsupported extends Error {}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/**
 * An object (a class instance: plain objects are written key by key) with a method under
 * this key is written as the MessagePack bytes that method returns: a value encoded once
 * and copied into every frame that carries it (a message delivered to many receivers).
 * Symbol keys are not fields, so decoding gives back the object's own string keys as usual.
 */
export const ENCODED: unique symbol = Symbol.for("peerd.wire.encoded");

/** An object written as bytes encoded beforehand (see {@linkcode ENCODED}). */
export interface PreEncoded {
  /** The MessagePack encoding of the object. */
  [ENCODED](): Uint8Array;
}

/**
 * Encodes values into a growable buffer. `encode()` returns a view of the internal buffer,
 * valid until the next call.
 */
export class FastEncoder {
  #buf = new Uint8Array(64 * 1024);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #reference = new ReferenceEncoder({ ignoreUndefined: true });

  /** Encodes `value`; the result is valid until the next call. */
  encode(value: unknown): Uint8Array {
    this.#pos = 0;
    try {
      this.#write(value, 0);
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      return this.#reference.encodeSharedRef(value);
    }
    return this.#buf.subarray(0, this.#pos);
  }

  /** Bytes appended with `appendFrame`/`appendRaw` and not yet taken. */
  get length(): number {
    return this.#pos;
  }

  /**
   * Appends a frame (4-byte big-endian length, then the MessagePack of `value`) to the
   * pending bytes. Returns the payload length; when it exceeds `maxPayload` nothing is
   * appended and a RangeError is thrown.
   */
  appendFrame(value: unknown, maxPayload = Infinity): number {
    const start = this.#pos;
    this.#ensure(4);
    this.#pos += 4;
    try {
      this.#write(value, 0);
    } catch (err) {
      this.#pos = start;
      if (!(err instanceof Unsupported)) throw err;
      const bytes = this.#reference.encode(value);
      if (bytes.length > maxPayload) throw new RangeError(`payload of ${bytes.length} bytes`);
      this.#ensure(4 + bytes.length);
      this.#view.setUint32(this.#pos, bytes.length);
      this.#buf.set(bytes, this.#pos + 4);
      this.#pos += 4 + bytes.length;
      return bytes.length;
    }
    const length = this.#pos - start - 4;
    if (length > maxPayload) {
      this.#pos = start;
      throw new RangeError(`payload of ${length} bytes`);
    }
    this.#view.setUint32(start, length);
    return length;
  }

  /** Appends bytes as they are (pre-encoded frames). */
  appendRaw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /**
   * Returns the pending bytes and continues on another buffer, so the returned view stays
   * valid while it is written. Give it back with `recycle()` once written, and the two
   * buffers alternate instead of a new one being allocated for every write.
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#pos);
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare && spare.length >= 64 * 1024) {
      this.#buf = spare;
    } else {
      this.#buf = new Uint8Array(Math.max(64 * 1024, Math.min(this.#buf.length, 1024 * 1024)));
    }
    this.#view = new DataView(this.#buf.buffer);
    this.#pos = 0;
    return out;
  }

  /** Hands back a view returned by `take()` after it has been written. */
  recycle(taken: Uint8Array): void {
    if (
      taken.byteOffset === 0 && taken.buffer.byteLength <= 4 * 1024 * 1024 &&
      taken.buffer !== this.#buf.buffer
    ) {
      this.#spare = new Uint8Array(taken.buffer as ArrayBuffer) as Uint8Array<ArrayBuffer>;
    }
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let capacity = this.#buf.length * 2;
    while (capacity < need) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #write(value: unknown, depth: number): void {
    if (depth > 100) throw new Unsupported();
    switch (typeof value) {
      case "string":
        return this.#writeString(value);
      case "number":
        return this.#writeNumber(value);
      case "boolean":
        this.#ensure(1);
        this.#buf[this.#pos++] = value ? 0xc3 : 0xc2;
        return;
      case "undefined":
        this.#ensure(1);
        this.#buf[this.#pos++] = 0xc0;
        return;
      case "bigint":
        return this.#writeBigInt(value);
      case "object":
        if (value === null) {
          this.#ensure(1);
          this.#buf[this.#pos++] = 0xc0;
          return;
        }
        return this.#writeObjectValue(value, depth);
      default:
        throw new Unsupported();
    }
  }

  #writeNumber(n: number): void {
    this.#ensure(9);
    const b = this.#buf;
    if (Number.isSafeInteger(n)) {
      if (n >= 0) {
        if (n < 0x80) b[this.#pos++] = n;
        else if (n < 0x100) {
          b[this.#pos++] = 0xcc;
          b[this.#pos++] = n;
        } else if (n < 0x10000) {
          b[this.#pos++] = 0xcd;
          this.#view.setUint16(this.#pos, n);
          this.#pos += 2;
        } else if (n < 0x100000000) {
          b[this.#pos++] = 0xce;
          this.#view.setUint32(this.#pos, n);
          this.#pos += 4;
        } else {
          b[this.#pos++] = 0xcf;
          this.#view.setBigUint64(this.#pos, BigInt(n));
          this.#pos += 8;
        }
      } else {
        if (n >= -0x20) b[this.#pos++] = n & 0xff;
        else if (n >= -0x80) {
          b[this.#pos++] = 0xd0;
          this.#view.setInt8(this.#pos++, n);
        } else if (n >= -0x8000) {
          b[this.#pos++] = 0xd1;
          this.#view.setInt16(this.#pos, n);
          this.#pos += 2;
        } else if (n >= -0x80000000) {
          b[this.#pos++] = 0xd2;
          this.#view.setInt32(this.#pos, n);
          this.#pos += 4;
        } else {
          b[this.#pos++] = 0xd3;
          this.#view.setBigInt64(this.#pos, BigInt(n));
          this.#pos += 8;
        }
      }
      return;
    }
    b[this.#pos++] = 0xcb;
    this.#view.setFloat64(this.#pos, n);
    this.#pos += 8;
  }

  #writeBigInt(n: bigint): void {
    this.#ensure(9);
    if (n >= 0n && n <= 0xffffffffffffffffn) {
      this.#buf[this.#pos++] = 0xcf;
      this.#view.setBigUint64(this.#pos, n);
    } else if (n < 0n && n >= -0x8000000000000000n) {
      this.#buf[this.#pos++] = 0xd3;
      this.#view.setBigInt64(this.#pos, n);
    } else {
      throw new Unsupported();
    }
    this.#pos += 8;
  }

  #writeString(s: string): void {
    const len = s.length;
    if (len < 32) {
      // short strings: ASCII fast path, encoded in place after a fixstr header
      this.#ensure(1 + len * 3 + 4);
      const b = this.#buf;
      const start = this.#pos;
      let p = start + 1;
      let ascii = true;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        b[p++] = c;
      }
      if (ascii) {
        b[start] = 0xa0 | len;
        this.#pos = p;
        return;
      }
    }
    // general case: UTF-8 length is at most 3 × UTF-16 length; write after a 5-byte gap
    const max = len * 3;
    this.#ensure(5 + max);
    const headerBytes = max < 32 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    const start = this.#pos;
    const { written } = utf8Encoder.encodeInto(s, this.#buf.subarray(start + headerBytes));
    const needHeader = written < 32 ? 1 : written < 0x100 ? 2 : written < 0x10000 ? 3 : 5;
    if (needHeader !== headerBytes) {
      this.#buf.copyWithin(start + needHeader, start + headerBytes, start + headerBytes + written);
    }
    const b = this.#buf;
    if (needHeader === 1) b[start] = 0xa0 | written;
    else if (needHeader === 2) {
      b[start] = 0xd9;
      b[start + 1] = written;
    } else if (needHeader === 3) {
      b[start] = 0xda;
      this.#view.setUint16(start + 1, written);
    } else {
      b[start] = 0xdb;
      this.#view.setUint32(start + 1, written);
    }
    this.#pos = start + needHeader + written;
  }

  #writeBinary(bytes: Uint8Array): void {
    const len = bytes.length;
    this.#ensure(5 + len);
    const b = this.#buf;
    if (len < 0x100) {
      b[this.#pos++] = 0xc4;
      b[this.#pos++] = len;
    } else if (len < 0x10000) {
      b[this.#pos++] = 0xc5;
      this.#view.setUint16(this.#pos, len);
      this.#pos += 2;
    } else {
      b[this.#pos++] = 0xc6;
      this.#view.setUint32(this.#pos, len);
      this.#pos += 4;
    }
    if (len < 64) {
      for (let i = 0; i < len; i++) b[this.#pos + i] = bytes[i];
    } else {
      b.set(bytes, this.#pos);
    }
    this.#pos += len;
  }

  #writeArray(items: unknown[], depth: number): void {
    this.#writeLength(items.length, 0x90, 0xdc, 0xdd);
    for (let i = 0; i < items.length; i++) this.#write(items[i], depth + 1);
  }

  #writeObjectValue(value: object, depth: number): void {
    if (value instanceof Uint8Array) return this.#writeBinary(value);
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      return this.#writeObject(value as Record<string, unknown>, depth, true);
    }
    if (Array.isArray(value)) return this.#writeArray(value, depth);
    const encoded = (value as Partial<PreEncoded>)[ENCODED];
    if (encoded !== undefined) return this.appendRaw(encoded.call(value));
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) {
      throw new Unsupported();
    }
    if (value instanceof Map) return this.#writeMapEntries([...value.entries()], depth);
    return this.#writeObject(value as Record<string, unknown>, depth, false);
  }

  /** Writes `obj`'s own enumerable keys; `plain`: its prototype is Object.prototype or null. */
  #writeObject(obj: Record<string, unknown>, depth: number, plain: boolean): void {
    // one pass (for-in over own enumerable keys is the engine's fastest walk): reserve a
    // one-byte fixmap header and widen it afterwards in the rare map of 16+ keys
    this.#ensure(1);
    const headerAt = this.#pos++;
    let count = 0;
    // for-in also walks inherited enumerable keys: only plain objects (nobody adds
    // enumerable keys to Object.prototype) skip the own-key check
    for (const key in obj) {
      if (!plain && !Object.hasOwn(obj, key)) continue;
      const v = obj[key];
      if (v === undefined) continue;
      this.#writeString(key);
      // the common value types without the general dispatch
      if (typeof v === "string") this.#writeString(v);
      else if (typeof v === "number" && (v >>> 0) === v && v < 0x80) {
        this.#ensure(1);
        this.#buf[this.#pos++] = v;
      } else if (v instanceof Uint8Array) this.#writeBinary(v);
      else this.#write(v, depth + 1);
      count++;
    }
    if (count < 16) {
      this.#buf[headerAt] = 0x80 | count;
      return;
    }
    const extra = count < 0x10000 ? 2 : 4;
    this.#ensure(extra);
    const b = this.#buf;
    b.copyWithin(headerAt + 1 + extra, headerAt + 1, this.#pos);
    this.#pos += extra;
    if (extra === 2) {
      b[headerAt] = 0xde;
      this.#view.setUint16(headerAt + 1, count);
    } else {
      b[headerAt] = 0xdf;
      this.#view.setUint32(headerAt + 1, count);
    }
  }

  #writeMapEntries(entries: Array<[unknown, unknown]>, depth: number): void {
    const kept = entries.filter(([, v]) => v !== undefined);
    this.#writeLength(kept.length, 0x80, 0xde, 0xdf);
    for (const [k, v] of kept) {
      this.#write(k, depth + 1);
      this.#write(v, depth + 1);
    }
  }

  #writeLength(n: number, fix: number, c16: number, c32: number): void {
    this.#ensure(5);
    if (n < 16) this.#buf[this.#pos++] = fix | n;
    else if (n < 0x10000) {
      this.#buf[this.#pos++] = c16;
      this.#view.setUint16(this.#pos, n);
      this.#pos += 2;
    } else {
      this.#buf[this.#pos++] = c32;
      this.#view.setUint32(this.#pos, n);
      this.#pos += 4;
    }
  }
}

/** The one-character ASCII strings, by code: one-letter keys (`t`) are in every frame. */
const ASCII_CHARS: string[] = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c));

/** Thrown for bytes that are not valid MessagePack. */
export class MsgpackDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MsgpackDecodeError";
  }
}

const KEY_CACHE_SIZE = 4096;
/** Strings shorter than this (bytes) are built in place and remembered by length. */
const SHORT_STRING_MAX = 32;
const KEY_CACHE_MAX_LEN = 16;

/**
 * Decodes one MessagePack value from a byte range. Binary values are views of the input
 * (no copy: allocating small typed arrays costs far more than decoding), so the caller must
 * not reuse the input's memory; copy a binary field (`slice()`) before keeping it long if
 * it should not pin the read buffer. Map keys must be strings or numbers (numbers become
 * property names); short keys are interned.
 */
export class FastDecoder {
  #bytes: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  #view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  #viewBuffer: ArrayBufferLike = new ArrayBuffer(0);
  /** The last input array and its byteOffset: frames of one read come from the same array. */
  #lastInput: Uint8Array | undefined;
  #lastOffset = 0;
  #pos = 0;
  #end = 0;
  #keyCache: Array<string | undefined> = new Array(KEY_CACHE_SIZE);
  /** The last ASCII string decoded of each short byte length (see `#readString`). */
  #lastByLength: Array<string | undefined> = new Array(SHORT_STRING_MAX);
  #codes: number[] = [];
  #reference = new ReferenceDecoder();
  #valueDepth = 0;

  /** Decodes exactly one value spanning all of `bytes`. */
  decode(bytes: Uint8Array): unknown {
    return this.decodeRange(bytes, 0, bytes.length);
  }

  /** Decodes exactly one value spanning `bytes[start..end)` (no subarray needed). */
  decodeRange(bytes: Uint8Array, start: number, end: number): unknown {
    if (bytes !== this.#lastInput) {
      // typed array getters (buffer, byteOffset) cost; look them up once per input array
      const buffer = bytes.buffer;
      if (buffer !== this.#viewBuffer) {
        this.#view = new DataView(buffer);
        this.#bytes = new Uint8Array(buffer);
        this.#viewBuffer = buffer;
      }
      this.#lastInput = bytes;
      this.#lastOffset = bytes.byteOffset;
    }
    this.#pos = this.#lastOffset + start;
    this.#end = this.#lastOffset + end;
    let value: unknown;
    try {
      value = this.#read(0);
    } catch (err) {
      if (err instanceof Unsupported) return this.#reference.decode(bytes.subarray(start, end));
      if (err instanceof MsgpackDecodeError) throw err;
      throw new MsgpackDecodeError(err instanceof Error ? err.message : String(err));
    }
    if (this.#pos !== this.#end) {
      throw new MsgpackDecodeError(`Extra ${this.#end - this.#pos} bytes after the value`);
    }
    return value;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#end) throw new MsgpackDecodeError("Insufficient data");
  }

  #read(depth: number): unknown {
    if (depth > 100) throw new MsgpackDecodeError("Nesting deeper than 100");
    this.#need(1);
    const b = this.#bytes;
    const v = this.#view;
    const c = b[this.#pos++];
    if (c < 0x80) return c;
    if (c < 0x90) return this.#readMap(c & 0x0f, depth);
    if (c < 0xa0) return this.#readArray(c & 0x0f, depth);
    if (c < 0xc0) {
      const n = c & 0x1f;
      if (n > KEY_CACHE_MAX_LEN) return this.#readString(n);
      this.#pos--;
      return this.#readKey(); // short strings are interned like keys
    }
    if (c >= 0xe0) return c - 0x100;
    let n: number;
    switch (c) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        this.#need(1);
        return this.#readBinary(b[this.#pos++]);
      case 0xc5:
        this.#need(2);
        n = v.getUint16(this.#pos);
        this.#pos += 2;
        return this.#readBinary(n);
      case 0xc6:
        this.#need(4);
        n = v.getUint32(this.#pos);
        this.#pos += 4;
        return this.#readBinary(n);
      case 0xca:
        this.#need(4);
        n = v.getFloat32(this.#pos);
        this.#pos += 4;
        return n;
      case 0xcb:
        this.#need(8);
        n = v.getFloat64(this.#pos);
        this.#pos += 8;
        return n;
      case 0xcc:
        this.#need(1);
        return b[this.#pos++];
      case 0xcd:
        this.#need(2);
        n = v.getUint16(this.#pos);
        this.#pos += 2;
        return n;
      case 0xce:
        this.#need(4);
        n = v.getUint32(this.#pos);
        this.#pos += 4;
        return n;
      case 0xcf: {
        this.#need(8);
        const hi = v.getUint32(this.#pos);
        const lo = v.getUint32(this.#pos + 4);
        this.#pos += 8;
        return hi * 0x100000000 + lo;
      }
      case 0xd0:
        this.#need(1);
        return v.getInt8(this.#pos++);
      case 0xd1:
        this.#need(2);
        n = v.getInt16(this.#pos);
        this.#pos += 2;
        return n;
      case 0xd2:
        this.#need(4);
        n = v.getInt32(this.#pos);
        this.#pos += 4;
        return n;
      case 0xd3: {
        this.#need(8);
        const hi = v.getInt32(this.#pos);
        const lo = v.getUint32(this.#pos + 4);
        this.#pos += 8;
        return hi * 0x100000000 + lo;
      }
      case 0xd9:
        this.#need(1);
        return this.#readString(b[this.#pos++]);
      case 0xda:
        this.#need(2);
        n = v.getUint16(this.#pos);
        this.#pos += 2;
        return this.#readString(n);
      case 0xdb:
        this.#need(4);
        n = v.getUint32(this.#pos);
        this.#pos += 4;
        return this.#readString(n);
      case 0xdc:
        this.#need(2);
        n = v.getUint16(this.#pos);
        this.#pos += 2;
        return this.#readArray(n, depth);
      case 0xdd:
        this.#need(4);
        n = v.getUint32(this.#pos);
        this.#pos += 4;
        return this.#readArray(n, depth);
      case 0xde:
        this.#need(2);
        n = v.getUint16(this.#pos);
        this.#pos += 2;
        return this.#readMap(n, depth);
      case 0xdf:
        this.#need(4);
        n = v.getUint32(this.#pos);
        this.#pos += 4;
        return this.#readMap(n, depth);
      case 0xc1:
        throw new MsgpackDecodeError("Unused byte 0xc1");
      default:
        // ext and fixext (0xc7-0xc9, 0xd4-0xd8): the reference decoder handles them
        throw new Unsupported();
    }
  }

  #readBinary(n: number): Uint8Array {
    this.#need(n);
    const start = this.#pos;
    this.#pos += n;
    return new Uint8Array(this.#viewBuffer, start, n); // a view, cheaper than subarray()
  }

  #readString(n: number): string {
    this.#need(n);
    const b = this.#bytes;
    const start = this.#pos;
    this.#pos += n;
    if (n < SHORT_STRING_MAX) {
      // the same short string again (a topic in every message of a batch): compared from its
      // end, since strings that differ (ids, counters) mostly differ there
      const last = this.#lastByLength[n];
      if (last !== undefined) {
        let i = n - 1;
        while (i >= 0 && last.charCodeAt(i) === b[start + i]) i--;
        if (i < 0) return last;
      }
      // one string from the codes (concatenating char by char made a string per char)
      const codes = this.#codes;
      codes.length = n;
      for (let i = 0; i < n; i++) {
        const c = b[start + i];
        if (c >= 0x80) return utf8Decoder.decode(b.subarray(start, start + n));
        codes[i] = c;
      }
      const s = String.fromCharCode.apply(null, codes);
      this.#lastByLength[n] = s;
      return s;
    }
    return utf8Decoder.decode(b.subarray(start, start + n));
  }

  #readKey(): string {
    this.#need(1);
    const b = this.#bytes;
    const c = b[this.#pos];
    if (c >= 0xa0 && c < 0xc0) {
      const n = c & 0x1f;
      if (n === 1 && this.#pos + 1 < this.#end && b[this.#pos + 1] < 0x80) {
        this.#pos += 2;
        return ASCII_CHARS[b[this.#pos - 1]];
      }
      if (n <= KEY_CACHE_MAX_LEN) {
        this.#pos++;
        this.#need(n);
        const start = this.#pos;
        let h = n;
        for (let i = start; i < start + n; i++) h = (h * 31 + b[i]) | 0;
        const slot = (h >>> 0) % KEY_CACHE_SIZE;
        const cached = this.#keyCache[slot];
        if (cached !== undefined && cached.length === n) {
          let same = true;
          for (let i = 0; i < n; i++) {
            if (cached.charCodeAt(i) !== b[start + i]) {
              same = false;
              break;
            }
          }
          if (same) {
            this.#pos += n;
            return cached;
          }
        }
        const value = this.#readString(n);
        // only ASCII strings are cached (their UTF-16 length equals their byte length), so the
        // comparison above can work on char codes and a miss allocates nothing but the string
        if (value.length === n) this.#keyCache[slot] = value;
        return value;
      }
    }
    const key = this.#read(1);
    if (typeof key === "string") return key;
    if (typeof key === "number") return String(key);
    throw new MsgpackDecodeError("The type of key must be string or number but " + typeof key);
  }

  #readArray(n: number, depth: number): unknown[] {
    if (n > this.#end - this.#pos) throw new MsgpackDecodeError("Insufficient data");
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#read(depth + 1);
    return out;
  }

  #readMap(n: number, depth: number): Record<string, unknown> {
    if (n * 2 > this.#end - this.#pos) throw new MsgpackDecodeError("Insufficient data");
    if (n === 0 || n > SHAPE_MAX_KEYS) return this.#readMapByKey(n, depth, false);
    // Try the key layouts seen before with n keys, most recent first: a layout's reader is
    // one object literal that reads each value after checking its key, so the object gets
    // its final layout at once (see compileShape). A different key rewinds and tries on.
    const list = shapesByCount[n];
    const start = this.#pos;
    const outer = this.#valueDepth;
    this.#valueDepth = depth + 1;
    try {
      for (let s = 0; s < list.length; s++) {
        try {
          const out = list[s].read(this.#nextValue);
          if (s > 0) list.unshift(list.splice(s, 1)[0]);
          return out;
        } catch (err) {
          if (err !== SHAPE_MISS) throw err;
          this.#pos = start;
        }
      }
    } finally {
      this.#valueDepth = outer;
    }
    return this.#readMapByKey(n, depth, true);
  }

  /** Reads the next key, which must be `expected`, and its value (for shape readers). */
  #nextValue = (expected: string): unknown => {
    if (this.#readKey() !== expected) throw SHAPE_MISS;
    return this.#read(this.#valueDepth);
  };

  #readMapByKey(n: number, depth: number, learn: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = this.#readKey();
      if (key === "__proto__") throw new MsgpackDecodeError("The key __proto__ is not allowed");
      out[key] = this.#read(depth + 1);
      keys.push(key);
    }
    if (learn) learnShape(keys);
    return out;
  }
}

/** Maps with at most this many keys are read through a shape. */
const SHAPE_MAX_KEYS = 16;
/** Layouts tried per key count, most recently used first. */
const SHAPES_PER_COUNT = 4;
/** Readers compiled in all (per process); past it, new layouts are read key by key. */
const MAX_COMPILED_SHAPES = 256;
/** Thrown by a shape reader when a key differs from its layout. */
const SHAPE_MISS = Symbol("shape miss");

/** A map key layout and its reader. */
interface Shape {
  read(next: (key: string) => unknown): Record<string, unknown>;
}

/** The layouts tried first, by key count; shared by every decoder of the process. */
const shapesByCount: Shape[][] = Array.from({ length: SHAPE_MAX_KEYS + 1 }, () => []);
/** Every compiled reader, by the JSON of its keys. */
const compiledShapes = new Map<string, Shape>();

/** Puts the reader of `keys` first among the layouts of its key count (compiling it once). */
function learnShape(keys: string[]): void {
  const id = JSON.stringify(keys);
  let shape = compiledShapes.get(id);
  if (shape === undefined) {
    if (compiledShapes.size >= MAX_COMPILED_SHAPES || new Set(keys).size !== keys.length) return;
    shape = compileShape(keys);
    compiledShapes.set(id, shape);
  }
  const list = shapesByCount[keys.length];
  list.unshift(shape);
  if (list.length > SHAPES_PER_COUNT) list.pop();
}

/**
 * Compiles the reader of one key layout: `return {"t": next("t"), "d": next("d")}`. The
 * object literal creates the object with its final layout at once instead of adding keys
 * one at a time through a keyed store (measured: 75 → ~55 ns per 100-byte frame).
 * Property names are JSON string literals, which are valid JS string literals; the
 * layout never holds `__proto__` (refused before a layout is learned) or a key twice.
 */
function compileShape(keys: string[]): Shape {
  const body = keys.map((key) => {
    const name = JSON.stringify(key);
    return `${name}: next(${name})`;
  }).join(", ");
  return { read: new Function("next", `return { ${body} };`) as Shape["read"] };
}

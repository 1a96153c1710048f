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
        if (value instanceof Uint8Array) return this.#writeBinary(value);
        if (Array.isArray(value)) return this.#writeArray(value, depth);
        if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) {
          throw new Unsupported();
        }
        if (value instanceof Map) return this.#writeMapEntries([...value.entries()], depth);
        return this.#writeObject(value as Record<string, unknown>, depth);
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

  #writeObject(obj: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(obj);
    let count = 0;
    for (let i = 0; i < keys.length; i++) if (obj[keys[i]] !== undefined) count++;
    this.#writeLength(count, 0x80, 0xde, 0xdf);
    for (let i = 0; i < keys.length; i++) {
      const v = obj[keys[i]];
      if (v === undefined) continue;
      this.#writeString(keys[i]);
      this.#write(v, depth + 1);
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

/** Thrown for bytes that are not valid MessagePack. */
export class MsgpackDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MsgpackDecodeError";
  }
}

const KEY_CACHE_SIZE = 4096;
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
  #viewBuffer: ArrayBufferLike | undefined;
  #pos = 0;
  #end = 0;
  #keyCache: Array<string | undefined> = new Array(KEY_CACHE_SIZE);
  #reference = new ReferenceDecoder();

  /** Decodes exactly one value spanning all of `bytes`. */
  decode(bytes: Uint8Array): unknown {
    return this.decodeRange(bytes, 0, bytes.length);
  }

  /** Decodes exactly one value spanning `bytes[start..end)` (no subarray needed). */
  decodeRange(bytes: Uint8Array, start: number, end: number): unknown {
    if (bytes.buffer !== this.#viewBuffer) {
      this.#view = new DataView(bytes.buffer);
      this.#bytes = new Uint8Array(bytes.buffer);
      this.#viewBuffer = bytes.buffer;
    }
    this.#pos = bytes.byteOffset + start;
    this.#end = bytes.byteOffset + end;
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
    return this.#bytes.subarray(start, start + n);
  }

  #readString(n: number): string {
    this.#need(n);
    const b = this.#bytes;
    const start = this.#pos;
    this.#pos += n;
    if (n < 24) {
      let s = "";
      for (let i = start; i < start + n; i++) {
        const c = b[i];
        if (c >= 0x80) return utf8Decoder.decode(b.subarray(start, start + n));
        s += String.fromCharCode(c);
      }
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
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.#readKey();
      if (key === "__proto__") throw new MsgpackDecodeError("The key __proto__ is not allowed");
      out[key] = this.#read(depth + 1);
    }
    return out;
  }
}

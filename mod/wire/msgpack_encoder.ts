/**
 * The MessagePack encoder for the values peerd sends: nil, booleans, integers, floats,
 * strings, binary (any typed array), arrays, plain objects and class instances (own
 * enumerable keys), `Date` (the timestamp extension) and `ExtData`. It writes straight into
 * a growable buffer, which is what makes millions of frames a second possible.
 *
 * It encodes exactly what the reference codec (`@msgpack/msgpack`, `ignoreUndefined`)
 * encodes, byte for byte, and refuses with {@linkcode MsgpackEncodeError} what the
 * reference refuses or would silently lose: `bigint` (the reference refuses it), `Map` and
 * `ArrayBuffer` (the reference writes them as an empty map), functions and symbols, and
 * nesting deeper than {@linkcode MAX_DEPTH}. There is no fallback to another encoder.
 *
 * Framing is not here: `codec.ts` adds the length header using {@linkcode MsgpackEncoder.reserve}.
 *
 * @module
 */
import { ExtData } from "@msgpack/msgpack";
import { MAX_DEPTH } from "./constants.ts";

/** Thrown for a value the encoder does not write (see the module doc). */
export class MsgpackEncodeError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "MsgpackEncodeError";
  }
}

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

/** Bytes a fresh encoder starts with (it doubles as needed). */
const DEFAULT_INITIAL_BYTES = 64 * 1024;
/** Largest buffer `take()` keeps the size of for the next round. */
const MAX_KEPT_BYTES = 1024 * 1024;

/** Options of {@linkcode MsgpackEncoder}. */
export interface MsgpackEncoderOptions {
  /** Bytes of the first buffer (small for an idle connection). @default {65536} */
  initialBytes?: number;
}

/**
 * Encodes values into a growable buffer. `encode()` returns a view of the internal buffer,
 * valid until the next call; `append()` adds a value after the bytes already held, so a
 * caller can queue many values (frames) and `take()` them at once.
 *
 * A failed `append()` (a `MsgpackEncodeError`) may leave partial bytes: the caller rewinds
 * with `truncate(lengthBefore)`.
 */
export class MsgpackEncoder {
  #initial: number;
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  #spare: Uint8Array<ArrayBuffer> | undefined;

  constructor(options: MsgpackEncoderOptions = {}) {
    this.#initial = options.initialBytes ?? DEFAULT_INITIAL_BYTES;
    this.#buf = new Uint8Array(this.#initial);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Encodes `value` alone; the result is a view valid until the next call. */
  encode(value: unknown): Uint8Array {
    this.#pos = 0;
    this.#write(value, 0);
    return this.#buf.subarray(0, this.#pos);
  }

  /** Bytes held (appended and not yet taken). */
  get length(): number {
    return this.#pos;
  }

  /** Bytes of the buffer currently allocated (for memory accounting). */
  get capacity(): number {
    return this.#buf.length + (this.#spare?.length ?? 0);
  }

  /** Appends the MessagePack of `value` after the bytes held. */
  append(value: unknown): void {
    this.#write(value, 0);
  }

  /** Appends `n` bytes left for the caller to fill with `setUint32`; returns their offset. */
  reserve(n: number): number {
    this.#ensure(n);
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  /** Writes a big-endian u32 at `offset` of the held bytes. */
  setUint32(offset: number, value: number): void {
    this.#view.setUint32(offset, value);
  }

  /** Drops the held bytes after the first `length` (undoes a failed append). */
  truncate(length: number): void {
    if (length < this.#pos) this.#pos = length;
  }

  /** Appends bytes as they are (pre-encoded frames). */
  appendRaw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /**
   * Returns the held bytes and continues on another buffer, so the returned view stays
   * valid while it is written. Give it back with `recycle()` once written, and the two
   * buffers alternate instead of a new one being allocated for every write.
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#pos);
    // the next buffer is sized for writes like this one (not the largest ever), so a
    // connection that once sent a burst does not keep its buffers afterwards
    let want = this.#initial;
    while (want < this.#pos && want < MAX_KEPT_BYTES) want *= 2;
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare && spare.length >= want && spare.length <= 4 * want) {
      this.#buf = spare;
    } else {
      this.#buf = new Uint8Array(want);
    }
    this.#view = new DataView(this.#buf.buffer);
    this.#pos = 0;
    return out;
  }

  /** Hands back a view returned by `take()` after it has been written. */
  recycle(taken: Uint8Array): void {
    if (
      taken.byteOffset === 0 && taken.buffer.byteLength <= 4 * MAX_KEPT_BYTES &&
      taken.buffer !== this.#buf.buffer
    ) {
      this.#spare = new Uint8Array(taken.buffer as ArrayBuffer) as Uint8Array<ArrayBuffer>;
    }
  }

  /**
   * Gives back memory while nothing is held: drops the spare buffer and shrinks the
   * buffer to its initial size (an idle connection keeps little).
   */
  trim(): void {
    this.#spare = undefined;
    if (this.#pos === 0 && this.#buf.length > this.#initial) {
      this.#buf = new Uint8Array(this.#initial);
      this.#view = new DataView(this.#buf.buffer);
    }
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let capacity = Math.max(this.#buf.length * 2, 1024);
    while (capacity < need) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #write(value: unknown, depth: number): void {
    if (depth >= MAX_DEPTH) {
      throw new MsgpackEncodeError(`Cannot encode: nesting deeper than ${MAX_DEPTH} levels`);
    }
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
      case "object":
        if (value === null) {
          this.#ensure(1);
          this.#buf[this.#pos++] = 0xc0;
          return;
        }
        return this.#writeObjectValue(value, depth);
      case "bigint":
        throw new MsgpackEncodeError(
          "Cannot encode a bigint: convert it to a number (the reference codec refuses it too)",
        );
      default:
        throw new MsgpackEncodeError(`Cannot encode a ${typeof value}`);
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
          this.#view.setUint32(this.#pos, Math.floor(n / 0x100000000));
          this.#view.setUint32(this.#pos + 4, n >>> 0);
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
    if (value instanceof Date) return this.#writeTimestamp(value);
    if (value instanceof ExtData) return this.#writeExt(value);
    if (ArrayBuffer.isView(value)) {
      return this.#writeBinary(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    }
    if (value instanceof Map || value instanceof Set) {
      throw new MsgpackEncodeError(
        `Cannot encode a ${value.constructor.name}: use a plain object or an array`,
      );
    }
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
      throw new MsgpackEncodeError("Cannot encode an ArrayBuffer: wrap it in a Uint8Array");
    }
    return this.#writeObject(value as Record<string, unknown>, depth, false);
  }

  /** Writes `obj`'s own enumerable keys; `plain`: its prototype is Object.prototype or null. */
  #writeObject(obj: Record<string, unknown>, depth: number, plain: boolean): void {
    // one pass (for-in over own enumerable keys is the engine's fastest walk): reserve a
    // one-byte fixmap header and widen it afterwards in the rare map of 16+ keys
    this.#ensure(1);
    const headerAt = this.#pos++;
    let count = 0;
    // at the last level every value goes through #write, which refuses what is too deep
    const last = depth + 1 >= MAX_DEPTH;
    // for-in also walks inherited enumerable keys: only plain objects (nobody adds
    // enumerable keys to Object.prototype) skip the own-key check
    for (const key in obj) {
      if (!plain && !Object.hasOwn(obj, key)) continue;
      const v = obj[key];
      if (v === undefined) continue;
      this.#writeString(key);
      // the common value types without the general dispatch
      if (last) this.#write(v, depth + 1);
      else if (typeof v === "string") this.#writeString(v);
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

  /** A `Date` as the timestamp extension (type -1), as the reference writes it. */
  #writeTimestamp(date: Date): void {
    const msec = date.getTime();
    if (Number.isNaN(msec)) throw new MsgpackEncodeError("Cannot encode an invalid Date");
    const secFloor = Math.floor(msec / 1e3);
    const nsecRaw = (msec - secFloor * 1e3) * 1e6;
    const carry = Math.floor(nsecRaw / 1e9);
    const sec = secFloor + carry;
    const nsec = nsecRaw - carry * 1e9;
    this.#ensure(15);
    const b = this.#buf;
    const v = this.#view;
    if (sec >= 0 && nsec >= 0 && sec <= 0x400000000 - 1) {
      if (nsec === 0 && sec <= 0xffffffff) {
        b[this.#pos++] = 0xd6;
        b[this.#pos++] = 0xff;
        v.setUint32(this.#pos, sec);
        this.#pos += 4;
      } else {
        b[this.#pos++] = 0xd7;
        b[this.#pos++] = 0xff;
        v.setUint32(this.#pos, (nsec << 2) | ((sec / 0x100000000) & 0x3));
        v.setUint32(this.#pos + 4, sec & 0xffffffff);
        this.#pos += 8;
      }
    } else {
      b[this.#pos++] = 0xc7;
      b[this.#pos++] = 12;
      b[this.#pos++] = 0xff;
      v.setUint32(this.#pos, nsec);
      v.setBigInt64(this.#pos + 4, BigInt(sec));
      this.#pos += 12;
    }
  }

  #writeExt(ext: ExtData): void {
    if (typeof ext.data === "function") {
      throw new MsgpackEncodeError("Cannot encode an ExtData whose data is a function");
    }
    const data = ext.data;
    const size = data.length;
    this.#ensure(6 + size);
    const b = this.#buf;
    const fixed = size === 1
      ? 0xd4
      : size === 2
      ? 0xd5
      : size === 4
      ? 0xd6
      : size === 8
      ? 0xd7
      : size === 16
      ? 0xd8
      : 0;
    if (fixed !== 0) b[this.#pos++] = fixed;
    else if (size < 0x100) {
      b[this.#pos++] = 0xc7;
      b[this.#pos++] = size;
    } else if (size < 0x10000) {
      b[this.#pos++] = 0xc8;
      this.#view.setUint16(this.#pos, size);
      this.#pos += 2;
    } else {
      b[this.#pos++] = 0xc9;
      this.#view.setUint32(this.#pos, size);
      this.#pos += 4;
    }
    this.#view.setInt8(this.#pos++, ext.type);
    b.set(data, this.#pos);
    this.#pos += size;
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

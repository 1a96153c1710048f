/**
 * The MessagePack decoder for frame payloads: everything the reference codec
 * (`@msgpack/msgpack`) decodes with its defaults, to the same values (64-bit integers as
 * numbers, the timestamp extension as `Date`, other extensions as `ExtData`), with no
 * fallback to another decoder. It decodes without per-call setup and interns short
 * strings, which matters at millions of frames a second.
 *
 * Hostile input costs at most a constant times its bytes: every byte is read once (maps
 * are matched against known key layouts after their keys and values are read, never by
 * decoding again), a container's count is checked against the bytes left before anything
 * is allocated for it (each entry needs at least one byte), nesting stops at
 * {@linkcode MAX_DEPTH}, and one input decodes to at most `maxElements` values.
 *
 * @module
 */
import { ExtData } from "@msgpack/msgpack";
import { MAX_DEPTH, MAX_FRAME_ELEMENTS } from "./constants.ts";
import { KEY_MISS, SHAPE_MAX_KEYS, type ShapeCache, TRY_NEXT } from "./msgpack_shapes.ts";

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** The one-character ASCII strings, by code: one-letter keys (`t`) are in every frame. */
const ASCII_CHARS: string[] = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c));

/** Thrown for bytes that are not valid MessagePack, or past a limit. */
export class MsgpackDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MsgpackDecodeError";
  }
}

/** Slots of the short-key cache (small: every connection has one). */
const KEY_CACHE_SIZE = 512;
/**
 * What an array or map costs of the element budget besides its entries: an object is
 * dearer than a scalar, so a frame of empty containers stops 4× sooner.
 */
const CONTAINER_COST = 4;
/** Strings shorter than this (bytes) are built in place and remembered by length. */
const SHORT_STRING_MAX = 32;
const KEY_CACHE_MAX_LEN = 16;

/** Options of {@linkcode MsgpackDecoder}. */
export interface MsgpackDecoderOptions {
  /**
   * Key layouts to build maps with (per connection, given once the peer is trusted);
   * without one, maps are built key by key.
   */
  shapes?: ShapeCache;
  /** Most values one input may decode to. @default {MAX_FRAME_ELEMENTS} */
  maxElements?: number;
}

/**
 * Decodes one MessagePack value from a byte range. Binary values are views of the input
 * (no copy: allocating small typed arrays costs far more than decoding), so the caller must
 * not reuse the input's memory; copy a binary field (`slice()`) before keeping it long if
 * it should not pin the read buffer. Map keys must be strings or numbers (numbers become
 * property names); `__proto__` is refused; short keys are interned.
 */
export class MsgpackDecoder {
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
  #shapes: ShapeCache | undefined;
  #maxElements: number;
  /** Values the current input may still decode to. */
  #budget = 0;
  /** The depth of the values the current layout reader reads. */
  #valueDepth = 0;
  /** The key that made a layout reader miss. */
  #missedKey: string | undefined;

  constructor(options: MsgpackDecoderOptions = {}) {
    this.#shapes = options.shapes;
    this.#maxElements = options.maxElements ?? MAX_FRAME_ELEMENTS;
  }

  /** The key layouts maps are built with; set once the peer is trusted. */
  get shapes(): ShapeCache | undefined {
    return this.#shapes;
  }

  set shapes(cache: ShapeCache | undefined) {
    this.#shapes = cache;
  }

  /** Values the last input decoded to (arrays and maps count their entries plus 4). */
  get elements(): number {
    return this.#maxElements - this.#budget;
  }

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
    this.#budget = this.#maxElements - 1;
    let value: unknown;
    try {
      value = this.#read(0);
    } catch (err) {
      this.#missedKey = undefined;
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

  #overBudget(): never {
    throw new MsgpackDecodeError(`More than ${this.#maxElements} values in one input`);
  }

  #read(depth: number): unknown {
    if (depth >= MAX_DEPTH) {
      throw new MsgpackDecodeError(`Nesting deeper than ${MAX_DEPTH} levels`);
    }
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
      return this.#readKey(depth); // short strings are interned like keys
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
      default:
        // ext and fixext (0xc7-0xc9, 0xd4-0xd8), out of the hot switch; 0xc1 is refused
        return this.#readExtCode(c);
    }
  }

  #readExtCode(c: number): unknown {
    const b = this.#bytes;
    const v = this.#view;
    let n: number;
    switch (c) {
      case 0xd4:
        return this.#readExt(1);
      case 0xd5:
        return this.#readExt(2);
      case 0xd6:
        return this.#readExt(4);
      case 0xd7:
        return this.#readExt(8);
      case 0xd8:
        return this.#readExt(16);
      case 0xc7:
        this.#need(1);
        return this.#readExt(b[this.#pos++]);
      case 0xc8:
        this.#need(2);
        n = v.getUint16(this.#pos);
        this.#pos += 2;
        return this.#readExt(n);
      case 0xc9:
        this.#need(4);
        n = v.getUint32(this.#pos);
        this.#pos += 4;
        return this.#readExt(n);
      default:
        throw new MsgpackDecodeError("Unused byte 0xc1");
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

  #readKey(depth: number): string {
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
    // anything else must be a string or a number: checked before reading, so a key is never
    // a container (whose nesting would escape the depth limit)
    if ((c >= 0x80 && c < 0xa0) || c === 0xdc || c === 0xdd || c === 0xde || c === 0xdf) {
      throw new MsgpackDecodeError("The type of key must be string or number but object");
    }
    const key = this.#read(depth + 1);
    if (typeof key === "string") return key;
    if (typeof key === "number") return String(key);
    throw new MsgpackDecodeError(
      "The type of key must be string or number but " + (key === null ? "null" : typeof key),
    );
  }

  #readExt(size: number): unknown {
    this.#need(1 + size);
    const type = this.#view.getInt8(this.#pos);
    const start = this.#pos + 1;
    this.#pos = start + size;
    const data = new Uint8Array(this.#viewBuffer, start, size);
    if (type !== -1) return new ExtData(type, data);
    // the timestamp extension, as the reference decodes it
    const v = this.#view;
    let sec: number;
    let nsec: number;
    if (size === 4) {
      sec = v.getUint32(start);
      nsec = 0;
    } else if (size === 8) {
      const high = v.getUint32(start);
      sec = (high & 0x3) * 0x100000000 + v.getUint32(start + 4);
      nsec = high >>> 2;
    } else if (size === 12) {
      nsec = v.getUint32(start);
      sec = v.getInt32(start + 4) * 0x100000000 + v.getUint32(start + 8);
    } else {
      throw new MsgpackDecodeError(
        `Unrecognized data size for timestamp (expected 4, 8, or 12): ${size}`,
      );
    }
    return new Date(sec * 1e3 + nsec / 1e6);
  }

  #readArray(n: number, depth: number): unknown[] {
    // each element needs a byte, and takes from the input's budget, before allocating
    if (n > this.#end - this.#pos) throw new MsgpackDecodeError("Insufficient data");
    if ((this.#budget -= n + CONTAINER_COST) < 0) this.#overBudget();
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#read(depth + 1);
    return out;
  }

  /**
   * Reads a map of `n` pairs through the known layouts of `n` keys, most recent first. A
   * layout's reader is one object literal that reads each key, checks it, and reads its
   * value (so the object gets its final layout at once). A key that differs before any
   * value was read rewinds that one key and tries the next layout; one that differs later
   * hands the pairs read so far to `#onMiss`, which finishes the map key by key. Either way
   * every value is decoded exactly once.
   */
  #readMap(n: number, depth: number): Record<string, unknown> {
    // each pair needs two bytes, and takes from the input's budget, before anything is read
    if (n > (this.#end - this.#pos) / 2) throw new MsgpackDecodeError("Insufficient data");
    if ((this.#budget -= n + CONTAINER_COST) < 0) this.#overBudget();
    const shapes = this.#shapes;
    if (shapes === undefined || n === 0 || n > SHAPE_MAX_KEYS) {
      return this.#readMapByKey(n, depth, undefined);
    }
    const list = shapes.layouts(n);
    const start = this.#pos;
    const outerDepth = this.#valueDepth;
    this.#valueDepth = depth + 1;
    for (let s = 0; s < list.length; s++) {
      const out = list[s].read(this.#nextValue, this.#onMiss);
      if (out !== TRY_NEXT) {
        this.#valueDepth = outerDepth;
        if (s > 0) shapes.promote(n, s);
        return out;
      }
      this.#pos = start; // only the first key was read: try the next layout
    }
    this.#valueDepth = outerDepth;
    return this.#readMapByKey(n, depth, shapes);
  }

  /**
   * Reads the next key and, if it is `expected`, its value; otherwise returns `KEY_MISS`
   * (keeping the key read) for the layout reader to give up.
   */
  #nextValue = (expected: string): unknown => {
    const key = this.#readKey(this.#valueDepth);
    if (key !== expected) {
      this.#missedKey = key;
      return KEY_MISS;
    }
    return this.#read(this.#valueDepth);
  };

  /**
   * A layout reader met another key after reading `pairs` (key, value, …) of a map of `n`:
   * finishes the map key by key from there (the missed key is already read) and learns its
   * layout. With no pairs read, asks for the next layout instead.
   */
  #onMiss = (n: number, ...pairs: unknown[]): Record<string, unknown> | typeof TRY_NEXT => {
    if (pairs.length === 0) return TRY_NEXT;
    const depth = this.#valueDepth - 1;
    const out: Record<string, unknown> = {};
    const keys: string[] = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const key = pairs[i] as string;
      out[key] = pairs[i + 1];
      keys.push(key);
    }
    let key = this.#missedKey;
    this.#missedKey = undefined;
    for (let i = keys.length; i < n; i++) {
      if (key === undefined) key = this.#readKey(depth);
      if (key === "__proto__") throw new MsgpackDecodeError("The key __proto__ is not allowed");
      out[key] = this.#read(depth + 1);
      keys.push(key);
      key = undefined;
    }
    this.#shapes?.learn(keys);
    return out;
  };

  #readMapByKey(
    n: number,
    depth: number,
    shapes: ShapeCache | undefined,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const keys: string[] | undefined = shapes ? [] : undefined;
    for (let i = 0; i < n; i++) {
      const key = this.#readKey(depth);
      if (key === "__proto__") throw new MsgpackDecodeError("The key __proto__ is not allowed");
      out[key] = this.#read(depth + 1);
      keys?.push(key);
    }
    if (shapes) shapes.learn(keys!);
    return out;
  }
}

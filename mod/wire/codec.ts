/**
 * The frame codec: a 4-byte big-endian payload length, then a MessagePack map with a
 * string field `t`. Pure functions and classes over bytes, no I/O, so it can be tested
 * byte by byte.
 *
 * @module
 */
import {
  DEFAULT_MAX_FRAME,
  ErrorCode,
  FRAME_HEADER_BYTES,
  MAX_FRAME_ELEMENTS,
} from "./constants.ts";
import { WireError } from "./errors.ts";
import { MsgpackDecoder } from "./msgpack_decoder.ts";
import { MsgpackEncoder } from "./msgpack_encoder.ts";
import { ShapeCache } from "./msgpack_shapes.ts";

const valueEncoder = new MsgpackEncoder();

/** The MessagePack encoding of `value`, in a new array (for `PreEncoded` objects). */
export function encodeValue(value: unknown): Uint8Array {
  return valueEncoder.encode(value).slice();
}

function tooLarge(msg: Message, length: number, maxFrame: number): WireError {
  return new WireError(
    ErrorCode.FrameTooLarge,
    `Cannot send ${
      String(msg.t).slice(0, 64)
    }: frame of ${length} bytes exceeds the limit of ${maxFrame}`,
  );
}

/** A decoded frame: a MessagePack map whose `t` names the message type. */
export interface Message {
  /** The message type. */
  t: string;
  [field: string]: unknown;
}

/** Options shared by {@linkcode FrameEncoder} and {@linkcode FrameDecoder}. */
export interface CodecOptions {
  /** Largest payload in bytes. @default {16 MiB} */
  maxFrame?: number;
}

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions extends CodecOptions {
  /** Most values one frame may decode to. @default {MAX_FRAME_ELEMENTS} */
  maxElements?: number;
}

/**
 * Encodes messages into frames. One instance reuses its MessagePack scratch buffer, so
 * encoding a frame costs one copy into the destination.
 */
export class FrameEncoder {
  #encoder = new MsgpackEncoder();
  #maxFrame: number;

  constructor(options: CodecOptions = {}) {
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  }

  /** Returns a fresh array holding the length header and the payload of `msg`. */
  encode(msg: Message): Uint8Array {
    const payload = this.#payload(msg);
    const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
    new DataView(out.buffer).setUint32(0, payload.length);
    out.set(payload, FRAME_HEADER_BYTES);
    return out;
  }

  /** Appends the frame of `msg` to `out`. */
  encodeInto(msg: Message, out: ByteBuffer): void {
    const payload = this.#payload(msg);
    out.appendFrame(payload);
  }

  #payload(msg: Message): Uint8Array {
    const payload = this.#encoder.encode(msg);
    if (payload.length > this.#maxFrame) throw tooLarge(msg, payload.length, this.#maxFrame);
    return payload;
  }
}

/** Options of {@linkcode FrameWriter}. */
export interface FrameWriterOptions extends CodecOptions {
  /** Bytes of the first buffer. @default {4096} */
  initialBytes?: number;
}

/**
 * The outgoing frames of one connection, encoded in place one after another into one
 * buffer: `append()` many, then `take()` them for one write. A frame over the limit throws
 * {@linkcode WireError} (`frame_too_large`) and leaves nothing behind.
 */
export class FrameWriter {
  #encoder: MsgpackEncoder;
  #maxFrame: number;

  constructor(options: FrameWriterOptions = {}) {
    this.#encoder = new MsgpackEncoder({ initialBytes: options.initialBytes ?? 4096 });
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  }

  /** Bytes held (frames appended and not yet taken). */
  get length(): number {
    return this.#encoder.length;
  }

  /** Appends the frame of `msg`; returns its payload length. */
  append(msg: Message): number {
    const enc = this.#encoder;
    const start = enc.length;
    const header = enc.reserve(FRAME_HEADER_BYTES);
    try {
      enc.append(msg);
    } catch (err) {
      enc.truncate(start);
      throw err;
    }
    const length = enc.length - header - FRAME_HEADER_BYTES;
    if (length > this.#maxFrame) {
      enc.truncate(start);
      throw tooLarge(msg, length, this.#maxFrame);
    }
    enc.setUint32(header, length);
    return length;
  }

  /** Appends whole frames (header included) as they are. */
  appendRaw(frameBytes: Uint8Array): void {
    this.#encoder.appendRaw(frameBytes);
  }

  /** The held bytes, for one write; the writer continues on another buffer. */
  take(): Uint8Array {
    return this.#encoder.take();
  }

  /** Hands back the bytes of `take()` once written, to be reused. */
  recycle(taken: Uint8Array): void {
    this.#encoder.recycle(taken);
  }

  /** Gives back buffer memory while nothing is held. */
  trim(): void {
    this.#encoder.trim();
  }
}

/** A growable byte buffer that frames are appended to; `take()` hands the bytes out. */
export class ByteBuffer {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initialCapacity = 64 * 1024) {
    this.#buf = new Uint8Array(initialCapacity);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes currently held. */
  get length(): number {
    return this.#len;
  }

  /** Appends a length header and `payload`. */
  appendFrame(payload: Uint8Array): void {
    this.#reserve(FRAME_HEADER_BYTES + payload.length);
    this.#view.setUint32(this.#len, payload.length);
    this.#buf.set(payload, this.#len + FRAME_HEADER_BYTES);
    this.#len += FRAME_HEADER_BYTES + payload.length;
  }

  /** Appends raw bytes. */
  append(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /**
   * Returns the held bytes and starts over on a new backing array, so the returned view
   * stays valid while it is being written.
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#len);
    const capacity = Math.max(64 * 1024, Math.min(this.#buf.length, 1024 * 1024));
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
    this.#len = 0;
    return out;
  }

  #reserve(extra: number): void {
    const need = this.#len + extra;
    if (need <= this.#buf.length) return;
    let capacity = this.#buf.length * 2;
    while (capacity < need) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
}

/**
 * Incremental frame decoder. `push()` chunks as they arrive (a chunk may hold half a frame
 * or many frames), then call `next()` until it returns `undefined`.
 *
 * `next()` throws {@linkcode WireError}: with `fatal` set when the length header exceeds the
 * limit (checked before any buffer is allocated for the payload; the stream cannot be
 * resynchronised), and without it for an undecodable payload, a payload that is not a
 * map, or a missing `t` (that frame is skipped; the next one decodes normally).
 *
 * Bytes pushed are never written to again by the decoder, and decoded binary fields are
 * views of them: the caller must not reuse a pushed chunk's memory.
 */
export class FrameDecoder {
  #decoder: MsgpackDecoder;
  #maxFrame: number;
  #lastBytes = 0;
  #buf: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  /** Whether `#buf` is our own array with free room after `#end`. */
  #owned = false;
  #failed: WireError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.#maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#decoder = new MsgpackDecoder({ maxElements: options.maxElements ?? MAX_FRAME_ELEMENTS });
  }

  /**
   * From now on, build maps through the key layouts this decoder learns (a faster path
   * for repeated frames). Call it once the peer has been accepted (after the handshake):
   * the layouts are this decoder's alone, and nobody can fill them before hello.
   */
  learnShapes(): void {
    this.#decoder.shapes ??= new ShapeCache();
  }

  /** Largest payload accepted from now on (a frame partly received is checked again). */
  set maxFrame(bytes: number) {
    this.#maxFrame = bytes;
  }

  /** Whether map layouts are being learned (see `learnShapes`). */
  get learnsShapes(): boolean {
    return this.#decoder.shapes !== undefined;
  }

  /**
   * What the last frame returned by `next()` holds in memory, estimated: its payload bytes
   * plus 32 bytes a decoded value (what a pending request is charged).
   */
  get lastFrameCost(): number {
    return this.#lastBytes + 32 * this.#decoder.elements;
  }

  /** Bytes received but not yet decoded. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * The declared payload length of the frame being received, when its header is here, its
   * payload not all yet and the length within the limit; 0 otherwise.
   */
  get partialFrameLength(): number {
    const pending = this.#end - this.#start;
    if (pending < FRAME_HEADER_BYTES) return 0;
    const b = this.#buf;
    const s = this.#start;
    const length = ((b[s] << 24) >>> 0) + (b[s + 1] << 16) + (b[s + 2] << 8) + b[s + 3];
    // a length over the limit is refused by next(), not waited for
    return length <= this.#maxFrame && pending < FRAME_HEADER_BYTES + length ? length : 0;
  }

  /** Whether undecoded bytes still live in a chunk the caller pushed. */
  get holdsInput(): boolean {
    return !this.#owned && this.#end > this.#start;
  }

  /**
   * Copies the undecoded bytes (part of a frame, in a chunk the caller pushed) to the start
   * of `target` and continues from there, so that the caller can read the rest of the
   * frame into `target` right after them. `target` must be fresh memory, at least
   * `buffered` long. Returns the number of bytes moved.
   */
  relocate(target: Uint8Array): number {
    const pending = this.#end - this.#start;
    if (pending > target.length) throw new RangeError("relocate: target too small");
    target.set(this.#buf.subarray(this.#start, this.#end));
    this.#buf = target.subarray(0, pending);
    this.#start = 0;
    this.#end = pending;
    this.#owned = false;
    return pending;
  }

  /** Adds received bytes. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#start === this.#end) {
      this.#buf = chunk;
      this.#start = 0;
      this.#end = chunk.length;
      this.#owned = false;
      return;
    }
    const pending = this.#end - this.#start;
    if (
      !this.#owned && chunk.buffer === this.#buf.buffer &&
      chunk.byteOffset === this.#buf.byteOffset + this.#end
    ) {
      // the chunk continues the pushed bytes in the same memory (a connection reading into
      // the rest of its slab): extend the view instead of copying a split frame
      this.#buf = new Uint8Array(chunk.buffer, this.#buf.byteOffset, this.#end + chunk.length);
      this.#end += chunk.length;
      return;
    }
    if (this.#owned && this.#end + chunk.length <= this.#buf.length) {
      this.#buf.set(chunk, this.#end);
      this.#end += chunk.length;
      return;
    }
    const capacity = Math.max(pending + chunk.length, this.#wantedCapacity(pending));
    const next = new Uint8Array(capacity);
    next.set(this.#buf.subarray(this.#start, this.#end));
    next.set(chunk, pending);
    this.#buf = next;
    this.#start = 0;
    this.#end = pending + chunk.length;
    this.#owned = true;
  }

  /** Decodes the next complete frame, or returns `undefined` when more bytes are needed. */
  next(): Message | undefined {
    if (this.#failed) throw this.#failed;
    const available = this.#end - this.#start;
    if (available < FRAME_HEADER_BYTES) return undefined;
    const b = this.#buf;
    const s = this.#start;
    const length = ((b[s] << 24) >>> 0) + (b[s + 1] << 16) + (b[s + 2] << 8) + b[s + 3];
    if (length > this.#maxFrame) {
      this.#failed = new WireError(
        ErrorCode.FrameTooLarge,
        `Cannot accept frame: ${length} bytes exceeds the limit of ${this.#maxFrame}`,
        { fatal: true },
      );
      throw this.#failed;
    }
    if (available < FRAME_HEADER_BYTES + length) return undefined;
    const payloadStart = s + FRAME_HEADER_BYTES;
    this.#start = payloadStart + length;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      this.#buf = new Uint8Array(0);
      this.#owned = false;
    }
    return this.#decodePayload(b, payloadStart, payloadStart + length);
  }

  #decodePayload(b: Uint8Array, start: number, end: number): Message {
    if (end === start) {
      throw new WireError(ErrorCode.BadMsgpack, "Cannot decode frame: empty payload");
    }
    this.#lastBytes = end - start;
    let value: unknown;
    try {
      value = this.#decoder.decodeRange(b, start, end);
    } catch (cause) {
      throw new WireError(
        ErrorCode.BadMsgpack,
        `Cannot decode frame: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
    }
    // the first byte says whether the value is a map (a plain object) or something else
    const first = b[start];
    if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) {
      throw new WireError(
        ErrorCode.NotAMap,
        "Cannot accept frame: payload is not a MessagePack map",
      );
    }
    const t = (value as Record<string, unknown>).t;
    if (typeof t !== "string" || t.length === 0) {
      throw new WireError(ErrorCode.MissingType, "Cannot accept frame: missing string field t");
    }
    return value as Message;
  }

  /** Room for the whole frame that starts the pending bytes, when its header is known. */
  #wantedCapacity(pending: number): number {
    if (pending < FRAME_HEADER_BYTES) return 64 * 1024;
    const b = this.#buf;
    const s = this.#start;
    const length = ((b[s] << 24) >>> 0) + (b[s + 1] << 16) + (b[s + 2] << 8) + b[s + 3];
    if (length > this.#maxFrame) return 64 * 1024;
    return Math.max(64 * 1024, FRAME_HEADER_BYTES + length);
  }
}

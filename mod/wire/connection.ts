/**
 * A framed connection over any byte stream (`Deno.Conn`): frames out are coalesced into
 * one write per tick with one write in flight; frames in are decoded incrementally.
 *
 * @module
 */
import { FrameDecoder, FrameWriter, type Message } from "./codec.ts";
import { DEFAULT_HIGH_WATER_MARK, DEFAULT_MAX_FRAME, ErrorCode } from "./constants.ts";
import { ConnectionClosedError, WireError } from "./errors.ts";

/** Bytes shared by many connections (a node's budget): `used` may not pass `limit`. */
export interface ByteBudget {
  /** Bytes taken now. */
  used: number;
  /** Most bytes that may be taken. */
  readonly limit: number;
}

/** Frames at least this large are charged to the incoming budget while they arrive. */
const CHARGED_FRAME_BYTES = 64 * 1024;

/** The part of `Deno.Conn` a {@linkcode FrameConnection} uses. */
export interface ByteStream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Options of {@linkcode FrameConnection}. */
export interface FrameConnectionOptions {
  /** Largest frame payload accepted or sent. @default {16 MiB} */
  maxFrame?: number;
  /** Buffered outgoing bytes above which `send` returns false. @default {1 MiB} */
  highWaterMark?: number;
  /**
   * A budget (the node's) that a frame of 64 KiB or more takes its declared length from
   * while it arrives; when it does not fit, reading fails with a fatal `overloaded`
   * `WireError` (the peer cannot make the node buffer more than the budget).
   */
  incomingBudget?: ByteBudget;
}

/** Largest read buffer: a busy connection reads into slabs of this size. */
const READ_SLAB_BYTES = 256 * 1024;
/** Read buffer of a quiet connection (and of a new one). */
const READ_SLAB_SMALL = 16 * 1024;
/** A slab with less room than this (a quarter of its size) is replaced before a read. */
const SLAB_MIN_ROOM_SHARE = 4;

/**
 * A connection that carries frames.
 *
 * Sending: `send()` encodes at once and queues; everything queued in one tick goes out in
 * one write on the next microtask, with at most one write in flight. `send()` returns
 * false once more than `highWaterMark` bytes wait; `drained()` resolves when they have
 * gone below it again, so a producer can await it (backpressure, not unbounded memory).
 *
 * Receiving: `read()` returns the next message, `null` at end of stream, or throws a
 * `WireError` for a bad frame (non-fatal ones can be followed by more reads).
 *
 * `close()` is safe to call twice; queued frames are dropped. `end()` flushes first.
 */
export class FrameConnection implements AsyncDisposable {
  readonly #stream: ByteStream;
  readonly #maxFrame: number;
  readonly #decoder: FrameDecoder;
  readonly #highWater: number;
  /** Pending outgoing frames, encoded in place. */
  #out: FrameWriter;
  #inFlight = 0;
  #writing = false;
  #scheduled = false;
  /** The read buffer (decoded binary fields are views of it, so it is never reused). */
  #slab: Uint8Array = new Uint8Array(0);
  #slabPos = 0;
  /** Bytes of the next slab: big once a read fills its room, small again after small reads. */
  #slabSize = READ_SLAB_SMALL;
  #eof = false;
  #closed = false;
  #drainWaiters: Array<() => void> = [];
  #flushWaiters: Array<() => void> = [];
  #closeWaiters: Array<() => void> = [];
  #closeError: unknown;
  #incomingBudget: ByteBudget | undefined;
  /** Bytes of the incoming budget taken by the frame being received. */
  #reserved = 0;
  #refused: WireError | undefined;

  /** Free-form per-connection state for the owner (peer name, session, …). */
  readonly data: Record<string, unknown> = {};

  constructor(stream: ByteStream, options: FrameConnectionOptions = {}) {
    this.#stream = stream;
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#maxFrame = maxFrame;
    this.#decoder = new FrameDecoder({ maxFrame });
    this.#out = new FrameWriter({ maxFrame });
    this.#incomingBudget = options.incomingBudget;
    this.#highWater = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  }

  /** Whether `close()` was called or the stream failed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Starts building maps through learned key layouts (see `FrameDecoder.learnShapes`); the
   * server and `dial` call it once the handshake is done.
   */
  learnShapes(): void {
    this.#decoder.learnShapes();
  }

  /**
   * Largest frame payload accepted from the peer from now on, at most the connection's
   * `maxFrame` (the handshake reads with a smaller limit, then restores it).
   */
  limitIncoming(bytes: number): void {
    this.#decoder.maxFrame = Math.min(bytes, this.#maxFrame);
  }

  /** The estimated memory of the last frame `read()` returned (see `FrameDecoder`). */
  get lastFrameCost(): number {
    return this.#decoder.lastFrameCost;
  }

  /** Bytes of buffers this connection holds now (read slab, write buffers, partial frame). */
  get bufferedBytes(): number {
    return this.#slab.length + this.#decoder.buffered + this.#out.length + this.#inFlight;
  }

  /** Bytes queued or being written. */
  get pendingBytes(): number {
    return this.#out.length + this.#inFlight;
  }

  /**
   * Queues `msg`. Returns false when the queue is above the high-water mark (the frame is
   * still queued). Throws `ConnectionClosedError` on a closed connection and `WireError`
   * for a frame over the limit. `urgent`: on an idle connection, write it now rather than
   * with the rest of this turn's frames (what a waiting peer needs at once, at low load).
   */
  send(msg: Message, urgent = false): boolean {
    if (this.#closed) {
      throw new ConnectionClosedError(
        `Cannot send ${String(msg.t).slice(0, 64)}: connection closed`,
      );
    }
    this.#out.append(msg);
    if (urgent && !this.#writing && !this.#scheduled) void this.#writeLoop();
    else this.#schedule();
    return this.pendingBytes < this.#highWater;
  }

  /** Queues pre-encoded frame bytes (header included). */
  sendRaw(frameBytes: Uint8Array): boolean {
    if (this.#closed) throw new ConnectionClosedError("Cannot send: connection closed");
    this.#out.appendRaw(frameBytes);
    this.#schedule();
    return this.pendingBytes < this.#highWater;
  }

  /** Queues `msg` and waits while the queue is above the high-water mark. */
  async write(msg: Message): Promise<void> {
    if (!this.send(msg)) await this.drained();
  }

  /** Resolves when queued bytes are below the high-water mark (or the connection closed). */
  drained(): Promise<void> {
    if (this.#closed || this.pendingBytes < this.#highWater) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Resolves when everything queued so far has been handed to the stream. */
  flush(): Promise<void> {
    if (this.#closed || this.pendingBytes === 0) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  /** Resolves when the connection closes. */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#closeWaiters.push(resolve));
  }

  /**
   * Returns the next message if a whole one is already buffered, without waiting
   * (hot loops: `conn.readBuffered() ?? await conn.read()`). Throws like `read()`.
   */
  readBuffered(): Message | undefined {
    if (this.#refused) throw this.#refused;
    const msg = this.#decoder.next();
    if (msg !== undefined && this.#reserved > 0) this.#releaseIncoming();
    return msg;
  }

  /** Reads the next message; `null` at end of stream or after `close()`. */
  async read(): Promise<Message | null> {
    if (this.#refused) throw this.#refused;
    for (;;) {
      const msg = this.#decoder.next();
      if (msg !== undefined) {
        if (this.#reserved > 0) this.#releaseIncoming();
        return msg;
      }
      if (this.#eof || this.#closed) return null;
      const idle = this.#decoder.buffered === 0;
      if (
        this.#slab.length - this.#slabPos < Math.max(1, this.#slab.length / SLAB_MIN_ROOM_SHARE) ||
        // waiting between frames with a big slab that reads no longer fill: wait on a
        // small one, so a quiet connection holds little
        (idle && this.#slab.length > this.#slabSize)
      ) {
        this.#slab = new Uint8Array(this.#slabSize);
        this.#slabPos = 0;
        // a frame cut by the end of the old slab: move its head to the new one, so the
        // rest is read right after it (no copy of whole reads to join them)
        if (this.#decoder.holdsInput && this.#decoder.buffered <= this.#slabSize / 4) {
          this.#slabPos = this.#decoder.relocate(this.#slab);
        }
      }
      const room = this.#slab.subarray(this.#slabPos);
      let n: number | null;
      try {
        n = await this.#stream.read(room);
      } catch (err) {
        if (!this.#closed) this.#fail(err);
        return null;
      }
      if (n === null) {
        this.#eof = true;
        continue;
      }
      // a read that filled its room: more is coming, read in big slabs from now on; one
      // that used less than half a small slab: small ones again
      if (n === room.length) this.#slabSize = READ_SLAB_BYTES;
      else if (n < READ_SLAB_SMALL / 2) this.#slabSize = READ_SLAB_SMALL;
      this.#decoder.push(this.#slab.subarray(this.#slabPos, this.#slabPos + n));
      this.#slabPos += n;
      if (this.#incomingBudget && this.#reserved === 0) this.#reserveIncoming();
    }
  }

  /** Takes a big frame's declared length from the incoming budget as it starts arriving. */
  #reserveIncoming(): void {
    const budget = this.#incomingBudget!;
    const length = this.#decoder.partialFrameLength;
    if (length < CHARGED_FRAME_BYTES) return;
    if (budget.used + length > budget.limit) {
      this.#refused = new WireError(
        ErrorCode.Overloaded,
        `Cannot receive a frame of ${length} bytes now: this node holds ${budget.used} of its ${budget.limit} bytes for frames and requests; retry later`,
        { fatal: true },
      );
      throw this.#refused;
    }
    budget.used += length;
    this.#reserved = length;
  }

  #releaseIncoming(): void {
    if (this.#incomingBudget) this.#incomingBudget.used -= this.#reserved;
    this.#reserved = 0;
  }

  /** Iterates messages until end of stream; bad frames throw out of the loop. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message> {
    for (;;) {
      const msg = await this.read();
      if (msg === null) return;
      yield msg;
    }
  }

  /** Flushes queued frames (bounded by `timeoutMs`), then closes. */
  async end(timeoutMs = 2_000): Promise<void> {
    if (this.#closed) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.flush(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
    } finally {
      clearTimeout(timer);
      this.close();
    }
  }

  /** Closes the stream at once. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#releaseIncoming();
    this.#slab = new Uint8Array(0);
    this.#out.trim();
    try {
      this.#stream.close();
    } catch {
      // already closed by the peer or the runtime
    }
    this.#wake();
    for (const resolve of this.#closeWaiters.splice(0)) resolve();
  }

  /** The error that closed the connection, if any. */
  get closeError(): unknown {
    return this.#closeError;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.end();
  }

  #schedule(): void {
    if (this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      void this.#writeLoop();
    });
  }

  async #writeLoop(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#out.length > 0 && !this.#closed) {
        const bytes = this.#out.take();
        this.#inFlight = bytes.length;
        let off = 0;
        while (off < bytes.length) {
          off += await this.#stream.write(off === 0 ? bytes : bytes.subarray(off));
        }
        this.#inFlight = 0;
        this.#out.recycle(bytes);
        if (this.#out.length < this.#highWater) {
          for (const resolve of this.#drainWaiters.splice(0)) resolve();
        }
      }
    } catch (err) {
      this.#inFlight = 0;
      this.#fail(err);
    } finally {
      this.#writing = false;
      this.#wake();
    }
  }

  #wake(): void {
    if (this.#closed || this.pendingBytes < this.#highWater) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
    if (this.#closed || this.pendingBytes === 0) {
      for (const resolve of this.#flushWaiters.splice(0)) resolve();
    }
  }

  #fail(err: unknown): void {
    this.#closeError ??= err;
    this.close();
  }
}

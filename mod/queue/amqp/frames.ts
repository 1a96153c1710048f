/**
 * The frames the server writes on its hot paths, laid out by hand: `basic.deliver` with
 * its content, `basic.ack` / `basic.nack` confirms, and the heartbeat. Each claims its
 * room in the writer once and stores the octets directly (no per-field bounds checks).
 *
 * @module
 */
import type { Delivery } from "../engine.ts";
import { type AmqpWriter, writeContent } from "./codec.ts";
import { FRAME_END, FRAME_HEADER_SIZE, FrameType } from "./constants.ts";
import { rawProperties } from "./message.ts";

/** Stores `v` (< 2^32) big-endian at `at`; returns the next offset. */
function putU32(b: Uint8Array, at: number, v: number): number {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
  return at + 4;
}

/** Stores `v` (a safe integer ≥ 0) as an unsigned 64-bit big-endian number at `at`. */
function putU64(b: Uint8Array, at: number, v: number): number {
  return putU32(b, putU32(b, at, Math.floor(v / 0x100000000)), v >>> 0);
}

/**
 * Stores `s` as a short string at `at` when it is ASCII (the caller checked the length is
 * at most 255); returns the next offset, or -1 when `s` has a non-ASCII character.
 */
function putAsciiShort(b: Uint8Array, at: number, s: string): number {
  const n = s.length;
  b[at++] = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return -1;
    b[at++] = c;
  }
  return at;
}

/** A 13-byte-argument basic method (`basic.ack` 80, `basic.nack` 120): delivery tag and bits. */
export function writeAckFrame(
  w: AmqpWriter,
  channel: number,
  methodId: number,
  tag: number,
  bits: number,
): void {
  const b = w.claim(21);
  let at = w.length;
  b[at] = FrameType.Method;
  b[at + 1] = channel >>> 8;
  b[at + 2] = channel;
  at = putU32(b, at + 3, 13);
  b[at] = 0;
  b[at + 1] = 60;
  b[at + 2] = methodId >>> 8;
  b[at + 3] = methodId;
  at = putU64(b, at + 4, tag);
  b[at] = bits;
  b[at + 1] = FRAME_END;
  w.length = at + 2;
}

/**
 * `basic.deliver` of `d` on `channel`, then its content header and body frames. A body
 * that fits one frame with ASCII names (the usual case) is laid out in one claimed run of
 * bytes; anything else takes the general writer, byte for byte the same output.
 */
export function writeDeliver(
  w: AmqpWriter,
  channel: number,
  d: Delivery,
  frameMax: number,
): void {
  const props = rawProperties(d.props, d.persistent);
  const body = d.body;
  const tag = d.consumerTag;
  const ex = d.exchange;
  const rk = d.routingKey;
  if (
    body.length <= frameMax - FRAME_HEADER_SIZE - 1 && tag.length <= 255 &&
    ex.length <= 255 && rk.length <= 255
  ) {
    // method: class+method (4), tag, delivery tag (8), redelivered (1), exchange, routing key
    const methodSize = 4 + 1 + tag.length + 8 + 1 + 1 + ex.length + 1 + rk.length;
    const total = FRAME_HEADER_SIZE + methodSize + 1 +
      FRAME_HEADER_SIZE + 12 + props.length + 1 +
      (body.length > 0 ? FRAME_HEADER_SIZE + body.length + 1 : 0);
    const b = w.claim(total);
    const start = w.length;
    b[start] = FrameType.Method;
    b[start + 1] = channel >>> 8;
    b[start + 2] = channel;
    let at = putU32(b, start + 3, methodSize);
    b[at] = 0;
    b[at + 1] = 60;
    b[at + 2] = 0;
    b[at + 3] = 60;
    at = putAsciiShort(b, at + 4, tag);
    if (at >= 0) {
      at = putU64(b, at, d.deliveryTag);
      b[at++] = d.redelivered ? 1 : 0;
      at = putAsciiShort(b, at, ex);
    }
    if (at >= 0) at = putAsciiShort(b, at, rk);
    if (at >= 0) {
      b[at++] = FRAME_END;
      // content header: class 60, weight 0, body size, properties
      b[at] = FrameType.Header;
      b[at + 1] = channel >>> 8;
      b[at + 2] = channel;
      at = putU32(b, at + 3, 12 + props.length);
      b[at] = 0;
      b[at + 1] = 60;
      b[at + 2] = 0;
      b[at + 3] = 0;
      at = putU64(b, at + 4, body.length);
      b.set(props, at);
      at += props.length;
      b[at++] = FRAME_END;
      if (body.length > 0) {
        b[at] = FrameType.Body;
        b[at + 1] = channel >>> 8;
        b[at + 2] = channel;
        at = putU32(b, at + 3, body.length);
        b.set(body, at);
        at += body.length;
        b[at++] = FRAME_END;
      }
      w.length = at;
      return;
    }
    // a non-ASCII name: nothing was committed (length unchanged); the general path below
  }
  w.u8(FrameType.Method);
  w.u16(channel);
  const at = w.length;
  w.u32(0);
  w.u16(60);
  w.u16(60);
  w.shortstr(tag);
  w.u64(d.deliveryTag);
  w.u8(d.redelivered ? 1 : 0);
  w.shortstr(ex);
  w.shortstr(rk);
  w.patchU32(at, w.length - at - 4);
  w.u8(FRAME_END);
  writeContent(w, channel, props, body, frameMax);
}

/** A heartbeat frame. */
export function writeHeartbeat(w: AmqpWriter): void {
  w.u8(FrameType.Heartbeat);
  w.u16(0);
  w.u32(0);
  w.u8(FRAME_END);
}

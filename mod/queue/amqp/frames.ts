/**
 * The frames the server writes on its hot paths, laid out by hand: `basic.deliver` with
 * its content, `basic.ack` / `basic.nack` confirms, and the heartbeat.
 *
 * @module
 */
import type { Delivery } from "../engine.ts";
import { type AmqpWriter, writeContent } from "./codec.ts";
import { FRAME_END, FrameType } from "./constants.ts";
import { rawProperties } from "./message.ts";

/** A 13-byte-argument basic method (`basic.ack` 80, `basic.nack` 120): delivery tag and bits. */
export function writeAckFrame(
  w: AmqpWriter,
  channel: number,
  methodId: number,
  tag: number,
  bits: number,
): void {
  w.u8(FrameType.Method);
  w.u16(channel);
  w.u32(13);
  w.u16(60);
  w.u16(methodId);
  w.u64(tag);
  w.u8(bits);
  w.u8(FRAME_END);
}

/** `basic.deliver` of `d` on `channel`, then its content header and body frames. */
export function writeDeliver(
  w: AmqpWriter,
  channel: number,
  d: Delivery,
  frameMax: number,
): void {
  w.u8(FrameType.Method);
  w.u16(channel);
  const at = w.length;
  w.u32(0);
  w.u16(60);
  w.u16(60);
  w.shortstr(d.consumerTag);
  w.u64(d.deliveryTag);
  w.u8(d.redelivered ? 1 : 0);
  w.shortstr(d.exchange);
  w.shortstr(d.routingKey);
  w.patchU32(at, w.length - at - 4);
  w.u8(FRAME_END);
  writeContent(w, channel, rawProperties(d.props, d.persistent), d.body, frameMax);
}

/** A heartbeat frame. */
export function writeHeartbeat(w: AmqpWriter): void {
  w.u8(FrameType.Heartbeat);
  w.u16(0);
  w.u32(0);
  w.u8(FRAME_END);
}

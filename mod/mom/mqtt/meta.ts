/**
 * What an MQTT publication carries through the MOM besides topic and payload: a `meta`
 * byte string stored and routed with it (opaque to the MOM but for the retain bit, which
 * the broker reads). Byte 0: bits 0–1 the publication's QoS, bit 2 its retain flag, bit 3
 * "a retained message sent at subscription time"; then, when there are any, the MQTT 5
 * properties that travel with it, encoded as in a PUBLISH. A native publication has no
 * meta: it is delivered as QoS 2 (the MOM delivers exactly once), not retained.
 *
 * @module
 */
import { decodeProperties, encodeProperties } from "./codec.ts";
import type { Properties } from "./packet.ts";
import type { InboxMessage } from "./session.ts";

/** Retain flag bit of meta byte 0. */
export const META_RETAIN = 4;
/** "Sent as a retained message" bit of meta byte 0. */
export const META_RETAINED = 8;

/** Encodes the meta of a publication; undefined when it says nothing (QoS 2, no retain). */
export function encodeMeta(
  m: { qos: 0 | 1 | 2; retain: boolean; properties?: Properties },
): Uint8Array | undefined {
  const flags = m.qos | (m.retain ? META_RETAIN : 0);
  const hasProps = m.properties !== undefined && Object.keys(m.properties).length > 0;
  if (flags === 2 && !hasProps) return undefined;
  if (!hasProps) return Uint8Array.of(flags);
  const props = encodeProperties(m.properties!);
  const out = new Uint8Array(1 + props.length);
  out[0] = flags;
  out.set(props, 1);
  return out;
}

/** Reads meta into `m` (qos, retain, retained, properties); a bad one is ignored. */
export function decodeMeta(meta: Uint8Array, m: InboxMessage): void {
  if (meta.length === 0) return;
  const flags = meta[0];
  m.qos = Math.min(flags & 3, 2) as 0 | 1 | 2;
  m.retain = (flags & META_RETAIN) !== 0;
  if (flags & META_RETAINED) m.retained = true;
  if (meta.length > 1) {
    try {
      m.properties = decodeProperties(meta.subarray(1));
    } catch {
      // not ours: deliver without properties
    }
  }
}

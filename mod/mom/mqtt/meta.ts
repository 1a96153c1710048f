/**
 * What an MQTT publication carries through the MOM besides topic and payload: a `meta`
 * byte string stored and routed with it (opaque to the MOM but for the retain bit, which
 * the broker reads). Byte 0: bits 0–1 the publication's QoS, bit 2 its retain flag, bit 3
 * "a retained message sent at subscription time", bit 4 "an expiry time follows"; then, with
 * bit 4, the wall-clock time the message expires at (ms since the epoch, 8 bytes, a
 * big-endian float64: the MQTT 5 message expiry interval made absolute when published);
 * then, when there are any, the other MQTT 5 properties that travel with it, encoded as in
 * a PUBLISH. A native publication has no meta: it is delivered as QoS 2 (the MOM delivers
 * exactly once), not retained, never expiring.
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
/** "An expiry time follows" bit of meta byte 0. */
export const META_EXPIRES = 16;

/** What {@linkcode encodeMeta} writes. */
export interface PublicationMeta {
  qos: 0 | 1 | 2;
  retain: boolean;
  /** MQTT 5 properties that travel with it (a message expiry interval among them is not
   * written: `expiresAt` says when it expires). */
  properties?: Properties;
  /** Wall-clock time (ms since the epoch) the message expires at. */
  expiresAt?: number;
}

/**
 * The meta of a publication published at `now` (wall clock, ms): a message expiry interval
 * in `properties` becomes the absolute `expiresAt`.
 */
export function publicationMeta(
  qos: 0 | 1 | 2,
  retain: boolean,
  properties: Properties,
  now: number,
): PublicationMeta {
  if (properties.messageExpiryInterval === undefined) return { qos, retain, properties };
  const { messageExpiryInterval, ...rest } = properties;
  return { qos, retain, properties: rest, expiresAt: now + messageExpiryInterval * 1000 };
}

/** Encodes the meta of a publication; undefined when it says nothing (QoS 2, no retain). */
export function encodeMeta(m: PublicationMeta): Uint8Array | undefined {
  const expires = m.expiresAt !== undefined;
  const flags = m.qos | (m.retain ? META_RETAIN : 0) | (expires ? META_EXPIRES : 0);
  let props: Properties | undefined = m.properties;
  if (props?.messageExpiryInterval !== undefined) {
    const { messageExpiryInterval: _, ...rest } = props;
    props = rest;
  }
  const hasProps = props !== undefined && !isEmpty(props);
  if (flags === 2 && !hasProps) return undefined;
  const encoded = hasProps ? encodeProperties(props!) : new Uint8Array(0);
  const head = expires ? 9 : 1;
  const out = new Uint8Array(head + encoded.length);
  out[0] = flags;
  if (expires) new DataView(out.buffer).setFloat64(1, m.expiresAt!);
  out.set(encoded, head);
  return out;
}

/** The meta of publications without properties, by QoS and retain flag (shared, read only). */
const PLAIN_META = ([0, 1, 2] as const).map((qos) =>
  [false, true].map((retain) => encodeMeta({ qos, retain }))
);

/**
 * The encoded meta of a publication published at `now` (wall clock, ms), as
 * `encodeMeta(publicationMeta(…))` gives it; a publication without properties (the common
 * case) gets bytes shared with every other such publication: they must not be written to.
 */
export function publicationMetaBytes(
  qos: 0 | 1 | 2,
  retain: boolean,
  properties: Properties,
  now: number,
): Uint8Array | undefined {
  if (isEmpty(properties)) return PLAIN_META[qos][retain ? 1 : 0];
  return encodeMeta(publicationMeta(qos, retain, properties, now));
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/**
 * Reads meta into `m` (qos, retain, retained, expiresAt, properties); a bad one is ignored
 * (the message is delivered without what could not be read).
 */
export function decodeMeta(meta: Uint8Array, m: InboxMessage): void {
  if (meta.length === 0) return;
  const flags = meta[0];
  m.qos = Math.min(flags & 3, 2) as 0 | 1 | 2;
  m.retain = (flags & META_RETAIN) !== 0;
  if (flags & META_RETAINED) m.retained = true;
  let at = 1;
  if (flags & META_EXPIRES) {
    if (meta.length < 9) return;
    const expiresAt = new DataView(meta.buffer, meta.byteOffset + 1, 8).getFloat64(0);
    if (Number.isFinite(expiresAt)) m.expiresAt = expiresAt;
    at = 9;
  }
  if (meta.length > at) {
    try {
      m.properties = decodeProperties(meta.subarray(at));
    } catch {
      // not ours: deliver without properties
    }
  }
}

/**
 * The outgoing side of an MQTT session, pure: the deliveries handed to the client that it
 * has not finished, in inbox order, and the inbox position that may be acknowledged (the
 * last delivery before the oldest unfinished one).
 *
 * A delivery is _settled_ once its inbox entry may be acknowledged: at once for QoS 0 or a
 * skipped one, at PUBACK for QoS 1, at PUBREC for QoS 2 (its PUBREL / PUBCOMP exchange then
 * still counts as in flight until PUBCOMP).
 *
 * @module
 */

/** Packet ids of deliveries are their inbox position modulo this, plus 1. */
export const PACKET_ID_SPACE = 65_535;

/** Packet id of a delivery at inbox position `seq`. */
export function deliveryPacketId(seq: number): number {
  return (seq % PACKET_ID_SPACE) + 1;
}

/** A delivery the client has not finished. */
export interface Outgoing {
  readonly seq: number;
  qos: 0 | 1 | 2;
  /** "sent": waiting for PUBACK / PUBREC; "released": PUBREL sent; "done". */
  state: "sent" | "released" | "done";
  /** Whether its inbox entry may be acknowledged. */
  settled: boolean;
}

/** In-flight deliveries of one session (see the module doc). */
export class DeliveryWindow {
  readonly #byId = new Map<number, Outgoing>();
  #order: Outgoing[] = [];
  #head = 0;
  #inflight = 0;
  #acked = 0;
  #cursor = 0;

  /** QoS 1 / 2 deliveries in flight (the client's receive maximum bounds them). */
  get inflight(): number {
    return this.#inflight;
  }

  /** Inbox position that may be acknowledged. */
  get acked(): number {
    return this.#acked;
  }

  /** Inbox position of the last delivery handed to the client. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Inbox position of the oldest unsettled delivery, if any. */
  get oldest(): number | undefined {
    return this.#head < this.#order.length ? this.#order[this.#head].seq : undefined;
  }

  /** Whether `seq` comes after the cursor; if so, it becomes the cursor. */
  next(seq: number): boolean {
    if (seq <= this.#cursor) return false;
    this.#cursor = seq;
    return true;
  }

  /** A QoS 2 delivery released before a reconnect: in flight until its PUBCOMP. */
  resume(packetId: number, seq: number): void {
    this.#byId.set(packetId, { seq, qos: 2, state: "released", settled: true });
    this.#inflight++;
  }

  /** The delivery at `seq` is settled without waiting (QoS 0, skipped, discarded). */
  settle(seq: number): void {
    this.#track({ seq, qos: 0, state: "done", settled: true });
  }

  /** The delivery at `seq` went out at QoS 1 or 2 with `packetId`. */
  sent(seq: number, qos: 1 | 2, packetId: number): void {
    const o: Outgoing = { seq, qos, state: "sent", settled: false };
    this.#byId.set(packetId, o);
    this.#inflight++;
    this.#track(o);
  }

  /** The unfinished delivery with `packetId`. */
  get(packetId: number): Outgoing | undefined {
    return this.#byId.get(packetId);
  }

  /** PUBREC came for `o`: PUBREL is on its way, its inbox entry is the client's. */
  release(o: Outgoing): void {
    o.state = "released";
    this.#advance(o);
  }

  /** `o` (with `packetId`) is done: no longer in flight. */
  finish(packetId: number, o: Outgoing): void {
    o.state = "done";
    this.#byId.delete(packetId);
    this.#inflight--;
    this.#advance(o);
  }

  /** Marks `o` settled and moves the acknowledged position over settled deliveries. */
  #advance(o: Outgoing): void {
    o.settled = true;
    const order = this.#order;
    while (this.#head < order.length && order[this.#head].settled) {
      this.#acked = order[this.#head++].seq;
    }
    if (this.#head === order.length) {
      this.#order = [];
      this.#head = 0;
      this.#acked = this.#cursor;
    } else if (this.#head > 1024) {
      this.#order = order.slice(this.#head);
      this.#head = 0;
    }
  }

  #track(o: Outgoing): void {
    if (o.settled && this.#head === this.#order.length) {
      this.#order = [];
      this.#head = 0;
      this.#acked = o.seq;
      return;
    }
    this.#order.push(o);
  }
}

/**
 * The broker's delivery stream into a daemon: each `deliver` carries a delivery seq (`dseq`,
 * per broker incarnation); a delivery at or below the last one received is a resend (answered
 * with a `dack` when everything received is committed), and a publication resent by a
 * restarted broker under a new dseq is recognised by its publisher's seq. Committed
 * deliveries are acknowledged (`dack`) in batches: at once every `ACK_EVERY`, else
 * `ACK_LAZY_MS` after the commit.
 *
 * @module
 */
import { fieldBytes, fieldInt, fieldString, type Message } from "../wire/mod.ts";
import type { Delivery } from "./daemon_store.ts";
import { PublisherSeqs } from "./publisher_seqs.ts";

/** Deliveries after which a `dack` goes out at once (else after ACK_LAZY_MS). */
export const ACK_EVERY = 1_000;
/** How long a `dack` may wait. */
export const ACK_LAZY_MS = 20;

/** The broker link as the stream uses it: sends a frame, false when down or congested. */
export interface DackLink {
  send(msg: Message): boolean;
  /** Whether the link is up and attached. */
  readonly up: boolean;
}

/** What the daemon has stored of the stream (its meta values). */
export interface DeliveryStreamState {
  /** dseq of the last delivery committed. */
  lastDseq: number;
  /** The broker incarnation the dseqs belong to. */
  brokerEpoch: string;
  /** Per publishing daemon, the highest publication seq stored. */
  seen: Map<string, number>;
}

/**
 * The local users among a delivery's `users` (the broker's list, unchecked): the list itself
 * when it is the one local user, the usual case.
 */
export function localUsersOf(users: unknown, local: ReadonlySet<number>): number[] {
  const list = Array.isArray(users) ? users as unknown[] : [];
  return list.length === 1 && local.has(list[0] as number)
    ? list as number[]
    : list.map(Number).filter((u) => local.has(u));
}

/** One daemon's end of the broker's delivery stream. */
export class DeliveryStream {
  /** dseq of the last delivery received (committed or not). */
  received: number;
  /** dseq of the last delivery committed. */
  committed: number;
  /** The broker incarnation the dseqs belong to. */
  brokerEpoch: string;
  /** Duplicate suppression by publisher. */
  readonly seen: PublisherSeqs;
  readonly #link: DackLink;
  /** Highest dseq acknowledged to the broker on the current link. */
  #dackSent = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** The stream as `state` stored it, acknowledging over `link`. */
  constructor(link: DackLink, state: DeliveryStreamState) {
    this.#link = link;
    this.received = this.committed = state.lastDseq;
    this.brokerEpoch = state.brokerEpoch;
    this.seen = new PublisherSeqs(state.seen);
  }

  /**
   * Reads a `deliver` frame: the delivery to store for the `local` users it names, or
   * undefined (a resend, a publication already stored, or no local user).
   */
  receive(msg: Message, local: ReadonlySet<number>): Delivery | undefined {
    const dseq = fieldInt(msg, "dseq", { min: 1 });
    if (dseq <= this.received) {
      if (this.received === this.committed) this.#link.send({ t: "dack", dseq: this.received });
      return undefined;
    }
    const id = fieldString(msg, "id");
    const topic = fieldString(msg, "topic");
    const payload = fieldBytes(msg, "payload");
    const from = fieldInt(msg, "from");
    const meta = msg.meta instanceof Uint8Array ? msg.meta : undefined;
    this.received = dseq;
    // a publication resent after a broker crash comes again with a new dseq: drop it by
    // (publishing daemon, seq), which only ever grows per publishing daemon
    if (!this.seen.fresh(id)) return undefined;
    const users = localUsersOf(msg.users, local);
    if (users.length === 0) return undefined;
    const delivery: Delivery = { users, id, topic, payload, from };
    if (meta !== undefined) delivery.meta = meta;
    return delivery;
  }

  /**
   * Everything received up to `dseq` is committed: a `dack` at once after `ACK_EVERY`
   * deliveries, else `ACK_LAZY_MS` later (it only lets the broker delete, so one per batch
   * saves a frame, and a wake-up of the broker, per message).
   */
  commit(dseq: number): void {
    if (dseq === this.committed) return;
    this.committed = dseq;
    if (dseq - this.#dackSent >= ACK_EVERY) this.#sendDack();
    else if (this.#timer === undefined && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#sendDack();
      }, ACK_LAZY_MS);
    }
  }

  /**
   * A new connection's attach reply: a new broker incarnation (`broker`) numbers deliveries
   * afresh from its `acked`; true if so (the caller stores the new state). The attach told
   * the broker what is committed.
   */
  attached(reply: Message): boolean {
    this.#dackSent = this.committed;
    const brokerEpoch = String(reply.broker ?? "");
    if (brokerEpoch === this.brokerEpoch) return false;
    this.brokerEpoch = brokerEpoch;
    this.received = this.committed = this.#dackSent = Number(reply.acked ?? 0);
    return true;
  }

  /** Stops the lazy `dack`. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #sendDack(): void {
    if (!this.#link.up || this.committed <= this.#dackSent) return;
    if (this.#link.send({ t: "dack", dseq: this.committed })) this.#dackSent = this.committed;
  }
}

/**
 * The daemon's outbox stream to the broker, in seq order: publications sent before their
 * commit at the end of the turn they were accepted in (when nothing before them is still
 * unsent and the link is not congested), and the committed outbox streamed from the store
 * with backpressure after a reconnect or when the early sends could not keep up.
 *
 * @module
 */
import type { Message } from "../wire/mod.ts";
import type { OutboxEntry } from "./daemon_store.ts";
import { PUMP_CHUNK } from "./protocol.ts";
import { pubsFrames } from "./pubs_frames.ts";

/** One attached connection to the broker, as the stream uses it. */
export interface StreamConnection {
  /** Sends a frame; false when its buffer is over the high-water mark. */
  send(msg: Message): boolean;
  readonly conn: {
    /** Bytes queued and not yet written. */
    readonly pendingBytes: number;
    /** Resolves when the queued bytes are written. */
    drained(): Promise<void>;
  };
}

/** The broker link, as the stream uses it (see `broker_link.ts`). */
export interface StreamLink {
  /** The attached connection, undefined while the link is down. */
  readonly client: StreamConnection | undefined;
  /** Sends a frame on the attached connection; false when down or congested. */
  send(msg: Message): boolean;
}

/** Queued bytes on the broker link below which a publication is sent before its commit. */
export const EARLY_SEND_LIMIT = 256 * 1024;

/** Rounds of one pump (each up to `PUMP_CHUNK` publications) before it yields and restarts. */
const PUMP_ROUNDS = 1_000_000;

/** The outbox stream of one daemon over its broker link. */
export class OutboxStream {
  /** Seq of the last publication sent on the current connection (or known to the broker). */
  sent = 0;
  /** Seq of the last committed publication. */
  committed: number;
  /** Publications streamed from the store. */
  sentStored = 0;
  readonly #link: StreamLink;
  readonly #read: (after: number, max: number) => OutboxEntry[];
  readonly #warn: (text: string) => void;
  #pumping = false;
  #closed = false;
  /** Publications to send before their commit (at the end of this turn). */
  #early: OutboxEntry[] = [];
  readonly #sendEarly = (): void => {
    const early = this.#early;
    this.#early = [];
    for (const frame of pubsFrames(early)) this.#link.send(frame);
  };

  /**
   * A stream over `link` reading committed publications after a seq with `read`; `committed`
   * is the seq of the last one stored.
   */
  constructor(
    link: StreamLink,
    read: (after: number, max: number) => OutboxEntry[],
    committed: number,
    warn: (text: string) => void,
  ) {
    this.#link = link;
    this.#read = read;
    this.committed = committed;
    this.#warn = warn;
  }

  /**
   * Sends `entry` to the broker at the end of this turn if every durable publication before
   * it (up to `lastDurableSeq`) has been sent and the link is not congested (the stream stays
   * in seq order); false if it was not sent.
   */
  sendNow(entry: OutboxEntry, lastDurableSeq: number): boolean {
    const link = this.#link.client;
    if (
      !link || this.#pumping || this.sent < lastDurableSeq ||
      link.conn.pendingBytes >= EARLY_SEND_LIMIT
    ) return false;
    this.sent = entry.seq;
    // the publications of this turn of the event loop go out together, in one frame
    if (this.#early.length === 0) queueMicrotask(this.#sendEarly);
    this.#early.push(entry);
    return true;
  }

  /** Streams stored publications after `sent` up to `committed`, with backpressure. */
  pump(): void {
    const link = this.#link.client;
    if (this.#pumping || link === undefined || this.#closed) return;
    this.#pumping = true;
    void (async () => {
      try {
        for (let round = 0; round < PUMP_ROUNDS; round++) {
          if (this.#closed || this.#link.client !== link) return;
          if (link.conn.pendingBytes > 0) await link.conn.drained();
          if (this.#link.client !== link) return;
          if (this.sent >= this.committed) return;
          const rows = this.#read(this.sent, PUMP_CHUNK);
          if (rows.length === 0) {
            // nothing stored after `sent` (acknowledged, or a numbering gap): caught up
            this.sent = Math.max(this.sent, this.committed);
            return;
          }
          let blocked = false;
          for (const frame of pubsFrames(rows)) {
            if (!link.send(frame)) blocked = true;
          }
          this.sent = rows[rows.length - 1].seq;
          this.sentStored += rows.length;
          if (blocked) await link.conn.drained();
        }
      } catch (err) {
        this.#warn(`sending the outbox stopped: ${String(err)}`);
      } finally {
        this.#pumping = false;
        if (this.#link.client === link && this.sent < this.committed) {
          queueMicrotask(() => this.pump());
        }
      }
    })();
  }

  /** Stops pumping (a running pump ends at its next round). */
  close(): void {
    this.#closed = true;
  }
}

/**
 * Deliveries into the daemon's inboxes waiting for the next commit, with the inbox position
 * each will have, and the early hand-out: at low load a receive waiting for a local
 * publication gets it before the commit (see `local_routing.ts` for the rules).
 *
 * @module
 */
import type { Delivery, InboxEntry } from "./daemon_store.ts";
import { inboxEntry } from "./inbox_memory.ts";
import { EARLY_HANDOUT, mayHandOutEarly, quiet } from "./local_routing.ts";
import type { ReceiveWaiters } from "./receive_waiters.ts";

/** What the queue needs of the store: the next inbox position, and meta values. */
export interface InboxPositions {
  /** The position the first delivery of the next commit gets. */
  readonly nextPosition: number;
  /** Writes meta values now. */
  setMeta(values: Record<string, number>): void;
}

/** Inbox positions reserved on disk at a time for early hand-outs (skipped after a restart). */
export const INBOX_RESERVATION = 100_000;

/** The deliveries of the next commit. */
export class InboxQueue {
  #in: Delivery[] = [];
  /** Per user, the inbox position of its last entry in `#in` (cleared with each commit). */
  #inLast = new Map<number, number>();
  /** Deliveries in the last commit (a measure of load). */
  #lastCommitIn = 0;
  /** When the last commit ran (`performance.now()`). */
  #lastCommitAt = -Infinity;
  /** Inbox positions up to this one may be handed out before their commit. */
  #reserved: number;
  readonly #store: InboxPositions;
  readonly #waiters: ReceiveWaiters;

  /** A queue over `store`'s positions, handing out early to `waiters`. */
  constructor(store: InboxPositions, waiters: ReceiveWaiters) {
    this.#store = store;
    this.#waiters = waiters;
    this.#reserved = store.nextPosition - 1;
  }

  /** Deliveries queued. */
  get length(): number {
    return this.#in.length;
  }

  /** Queues a delivery for the next commit; returns the inbox position it will have. */
  queue(delivery: Delivery): number {
    this.#in.push(delivery);
    const position = this.#store.nextPosition + this.#in.length - 1;
    for (const u of delivery.users) this.#inLast.set(u, position);
    return position;
  }

  /**
   * Queues a local publication's delivery; with `early`, at low load, a waiting receive gets
   * it now, before the commit: the publisher is acknowledged only after the commit, so a
   * crash in between loses nothing acknowledged, and the position is reserved on disk so
   * that it is never given to another message (under load, one answer per commit carries
   * more messages for less work). A `transient` delivery's position is never written, so it
   * is reserved too.
   */
  queueLocal(delivery: Delivery, early: boolean, transient: boolean): void {
    const users = delivery.users;
    // (the clock is read only when the last commit was small enough: under load it never is,
    // and a clock read per publication was a measurable share of the daemon's CPU)
    const before = early && this.#lastCommitIn <= EARLY_HANDOUT.maxLastCommit &&
        quiet(this.#lastCommitIn, performance.now() - this.#lastCommitAt)
      ? users.map((u) => this.#inLast.get(u))
      : undefined;
    const seq = this.queue(delivery);
    if (transient) this.reserve(seq);
    if (before === undefined) return;
    let inbox: InboxEntry | undefined;
    for (let k = 0; k < users.length; k++) {
      // the user's last entry in this commit before this one: its waiter must have it
      const previous = before[k];
      for (const w of this.#waiters.of(users[k])) {
        if (!mayHandOutEarly(w.after, previous, seq)) continue;
        if (inbox === undefined) {
          this.reserve(seq);
          inbox = inboxEntry(seq, delivery);
        }
        this.#waiters.answer(w, [inbox], true);
      }
    }
  }

  /** Makes sure inbox position `seq` is reserved on disk (never given again after a restart). */
  reserve(seq: number): void {
    if (seq <= this.#reserved) return;
    this.#reserved = seq + INBOX_RESERVATION;
    this.#store.setMeta({ inbox_reserved: this.#reserved });
  }

  /** Takes the queued deliveries for a commit running now. */
  take(): Delivery[] {
    const incoming = this.#in;
    this.#in = [];
    if (this.#inLast.size > 0) this.#inLast = new Map();
    this.#lastCommitIn = incoming.length;
    this.#lastCommitAt = performance.now();
    return incoming;
  }
}

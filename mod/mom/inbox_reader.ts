/**
 * The application side of the inbox: a `receive` hands out the entries after a position,
 * from memory when the user's receives keep up (`inbox_memory.ts`), else from the store, or
 * waits for the next commit (`receive_waiters.ts`). Its `after` acknowledges entries; the
 * acknowledgements ride along with the next commit, except that one is written at once
 * before the user is handed anything after it. Fully taken messages are collected every
 * `COLLECT_EVERY` acknowledgements.
 *
 * @module
 */
import { fieldInt, type Message, type PeerSession } from "../wire/mod.ts";
import type { DaemonStore } from "./daemon_store.ts";
import { InboxMemory } from "./inbox_memory.ts";
import { MAX_RECEIVE_BATCH } from "./protocol.ts";
import type { ReceiveWaiters } from "./receive_waiters.ts";

/** Acknowledgements after which fully taken messages are garbage-collected. */
export const COLLECT_EVERY = 64;
/** The longest `wait` of a receive (ms). */
const MAX_WAIT_MS = 3_600_000;

/** What the reader needs of the store. */
export type InboxStore = Pick<DaemonStore, "select" | "ack" | "collect">;

/** The receives of one daemon's users. */
export class InboxReader {
  /** Per user whose receives keep up: the inbox entries committed since. */
  readonly recent = new InboxMemory();
  /** Inbox acknowledgements (user → position) waiting for the next commit. */
  #ackPending = new Map<number, number>();
  #takes = 0;
  readonly #store: InboxStore;
  readonly #waiters: ReceiveWaiters;
  readonly #users: ReadonlySet<number>;
  readonly #wrote: () => void;
  readonly #lazyCommit: () => void;

  /**
   * A reader of `store` for `users`, parking receives in `waiters`; `wrote` is called after
   * a write outside a commit, `lazyCommit` asks for a commit soon (acknowledgements wait).
   */
  constructor(
    store: InboxStore,
    waiters: ReceiveWaiters,
    users: ReadonlySet<number>,
    wrote: () => void,
    lazyCommit: () => void,
  ) {
    this.#store = store;
    this.#waiters = waiters;
    this.#users = users;
    this.#wrote = wrote;
    this.#lazyCommit = lazyCommit;
  }

  /** Acknowledgements waiting for the next commit. */
  get acksPending(): number {
    return this.#ackPending.size;
  }

  /**
   * A `receive` of local `user`: `messages` now, or undefined when it waits (answered by
   * `waiters`).
   */
  receive(user: number, msg: Message, s: PeerSession): Message | undefined {
    const after = fieldInt(msg, "after", { min: 0 });
    // `from` (default `after`): hand out entries after it, acknowledge only up to `after`
    const from = msg.from === undefined ? after : fieldInt(msg, "from", { min: after });
    const max = Math.min(fieldInt(msg, "max", { min: 0 }), MAX_RECEIVE_BATCH);
    const wait = Math.min(fieldInt(msg, "wait", { min: 0 }), MAX_WAIT_MS);
    if (after > (this.#ackPending.get(user) ?? 0)) {
      this.#ackPending.set(user, after);
      this.#takes++;
    }
    let rows = this.recent.after(user, after, max, from);
    if (rows === undefined) {
      rows = this.#store.select(user, from, max);
      // nothing stored after `from`: from here on, what is committed for this user is
      // also kept in memory, and its next receives need no read back (a `max` of 0
      // read nothing, so it proves nothing)
      if (rows.length === 0 && max > 0) this.recent.start(user, from + 1);
    }
    if (rows.length > 0) {
      // an acknowledgement is on disk before the user is handed anything after it
      this.#commitAck(user);
      return { t: "messages", messages: rows };
    }
    if (this.#ackPending.size > 0) this.#lazyCommit();
    if (wait === 0 || max === 0) return { t: "messages", messages: [] };
    this.#waiters.wait(s, msg, { user, after: from, max, waitMs: wait });
    return undefined;
  }

  /** Takes the acknowledgements for a commit running now. */
  takeAcks(): Map<number, number> {
    const acks = this.#ackPending;
    if (acks.size > 0) this.#ackPending = new Map();
    return acks;
  }

  /** The users whose fully taken messages a commit running now collects, if it is due. */
  takeCollect(): ReadonlySet<number> | undefined {
    if (this.#takes < COLLECT_EVERY) return undefined;
    this.#takes = 0;
    return this.#users;
  }

  /** Makes the next commit collect. */
  collectNext(): void {
    this.#takes = COLLECT_EVERY;
  }

  /** Commits `user`'s pending inbox acknowledgement now (it precedes handing out more). */
  #commitAck(user: number): void {
    const upTo = this.#ackPending.get(user);
    if (upTo === undefined) return;
    this.#ackPending.delete(user);
    this.#store.ack(user, upTo);
    this.#wrote();
    const collect = this.takeCollect();
    if (collect !== undefined) this.#store.collect(collect);
  }
}

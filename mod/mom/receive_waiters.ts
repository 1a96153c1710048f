/**
 * The daemon's waiting receives (long polls): a `receive` that found nothing after its
 * position waits here until a commit brings entries for its user, its wait runs out (it is
 * answered empty), its user is destroyed, or its connection closes (forgotten).
 *
 * @module
 */
import type { Message, PeerSession } from "../wire/mod.ts";
import type { Delivery, InboxEntry } from "./daemon_store.ts";

/** A waiting receive. */
export interface Waiter {
  readonly session: PeerSession;
  readonly msg: Message;
  readonly user: number;
  /** Entries after this inbox position answer it. */
  readonly after: number;
  readonly max: number;
  /** When it is answered with nothing (`performance.now()` time). */
  readonly deadline: number;
}

/**
 * The entries of a commit (`incoming`, their inbox entries `entries`) that answer a receive
 * of `user` waiting after `after` for at most `max`: the user's own, after `after`.
 */
export function wakeRows(
  user: number,
  incoming: readonly Delivery[],
  entries: InboxEntry[],
  after: number,
  max: number,
): InboxEntry[] {
  let mine = entries;
  if (!incoming.every((e) => e.users.length === 1 && e.users[0] === user)) {
    mine = entries.filter((_, i) => incoming[i].users.includes(user));
  }
  return mine.length > 0 && mine[0].seq > after && mine.length <= max
    ? mine
    : mine.filter((r) => r.seq > after).slice(0, max);
}

/**
 * Waiting receives by user. One timer for all of them, armed for the earliest deadline (a
 * receive answered before its wait runs out costs no timer of its own). `close()` clears it.
 */
export class ReceiveWaiters {
  readonly #byUser = new Map<number, Set<Waiter>>();
  #count = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline `#timer` is armed for (Infinity: none). */
  #timerAt = Infinity;

  /** Registers a receive waiting up to `waitMs` (then answered with no messages). */
  wait(
    session: PeerSession,
    msg: Message,
    o: { user: number; after: number; max: number; waitMs: number },
  ): Waiter {
    const w: Waiter = {
      session,
      msg,
      user: o.user,
      after: o.after,
      max: o.max,
      deadline: performance.now() + o.waitMs,
    };
    let set = this.#byUser.get(o.user);
    if (!set) this.#byUser.set(o.user, set = new Set());
    set.add(w);
    this.#count++;
    if (w.deadline < this.#timerAt) this.#arm(w.deadline);
    return w;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()));
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Answers with nothing the receives whose wait ran out; arms for the next deadline. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // a timer may fire a fraction of a millisecond before performance.now() says it is due
    const now = performance.now() + 1;
    const due: Waiter[] = [];
    let next = Infinity;
    for (const set of this.#byUser.values()) {
      for (const w of set) {
        if (w.deadline <= now) due.push(w);
        else if (w.deadline < next) next = w.deadline;
      }
    }
    for (const w of due) {
      // answering one may have answered another (a reply can start a new request)
      if (this.#byUser.get(w.user)?.has(w)) this.answer(w, []);
    }
    if (next < this.#timerAt && this.#count > 0) this.#arm(next);
  }

  #remove(set: Set<Waiter> | undefined, w: Waiter): void {
    // the timer stays armed when the last one goes: it fires once and finds nothing (a
    // lone subscriber's next receive would otherwise set a timer again at once)
    if (set?.delete(w)) this.#count--;
  }

  /** Whether `user` has a waiting receive. */
  has(user: number): boolean {
    return (this.#byUser.get(user)?.size ?? 0) > 0;
  }

  /** `user`'s waiting receives (a copy: answering removes them). */
  of(user: number): Waiter[] {
    const set = this.#byUser.get(user);
    return set === undefined || set.size === 0 ? [] : [...set];
  }

  /** Answers `w` with `rows` (urgent: written at once, not coalesced). */
  answer(w: Waiter, rows: InboxEntry[], urgent = false): void {
    this.#remove(this.#byUser.get(w.user), w);
    w.session.reply(w.msg, { t: "messages", messages: rows }, urgent);
  }

  /** Answers the receives of a commit's recipients among `users` with their entries. */
  wake(users: Iterable<number>, incoming: readonly Delivery[], entries: InboxEntry[]): void {
    for (const user of users) {
      for (const w of this.of(user)) {
        const rows = wakeRows(user, incoming, entries, w.after, w.max);
        if (rows.length > 0) this.answer(w, rows);
      }
    }
  }

  /** Answers `user`'s receives with nothing and forgets them (the user is gone). */
  dropUser(user: number): void {
    for (const w of this.of(user)) this.answer(w, []);
    this.#byUser.delete(user);
  }

  /** Forgets the waiting receives of a closed connection. */
  sessionClosed(s: PeerSession): void {
    for (const set of this.#byUser.values()) {
      for (const w of set) {
        if (w.session === s) this.#remove(set, w);
      }
    }
  }

  /** Clears the timer and forgets every waiting receive. */
  close(): void {
    this.#disarm();
    this.#byUser.clear();
    this.#count = 0;
  }
}

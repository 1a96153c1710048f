/**
 * Requests waiting until their replica has applied everything their client had seen
 * (`prev ≤ value ts`): woken when the replica's value covers their `prev`, refused once
 * their deadline passes. Pure: the caller passes `now` and the coverage test.
 *
 * @module
 */
import { mergeInto, type VectorTs } from "./vector_ts.ts";

interface Waiter {
  prev: VectorTs;
  since: number;
  deadline: number;
  resolve(waitedMs: number): void;
  reject(err: unknown): void;
}

/** The waiting requests of one replica. */
export class PrevWaiters {
  #waiters: Waiter[] = [];

  /** Requests waiting. */
  get size(): number {
    return this.#waiters.length;
  }

  /** Waits until `prev` is covered (resolves with the ms waited) or `timeoutMs` passes. */
  add(prev: VectorTs, now: number, timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#waiters.push({ prev, since: now, deadline: now + timeoutMs, resolve, reject });
    });
  }

  /** Resolves the requests whose `prev` is now covered. */
  wake(covers: (prev: VectorTs) => boolean, now: number): void {
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => {
      if (!covers(w.prev)) return true;
      w.resolve(now - w.since);
      return false;
    });
  }

  /**
   * Refuses the requests past their deadline with `refusal(prev, waitedMs)`; returns what
   * the others still wait for (merged), or undefined when none waits.
   */
  expire(now: number, refusal: (prev: VectorTs, waitedMs: number) => Error): VectorTs | undefined {
    if (this.#waiters.length === 0) return undefined;
    const keep: Waiter[] = [];
    const need: VectorTs = {};
    for (const w of this.#waiters) {
      if (w.deadline <= now) w.reject(refusal(w.prev, now - w.since));
      else {
        keep.push(w);
        mergeInto(need, w.prev);
      }
    }
    this.#waiters = keep;
    return keep.length ? need : undefined;
  }

  /** Refuses every waiting request with `err`. */
  rejectAll(err: unknown): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

/**
 * Whether a daemon's at-most-once publications (MQTT QoS 0, see the daemon's `TRANSIENT`) can
 * interest any other daemon: the broker counts the subscriptions of each daemon's users and
 * tells an attached daemon when "some other daemon has a subscription" changes (`interest`
 * frames, in the attach reply as `others`). A daemon told `others: false` keeps such
 * publications local: no broker hop, no broker wake-up on the path of a local delivery.
 *
 * Why nothing a subscriber may expect is lost: the reply to a `sub.add` that makes `others`
 * true for an attached daemon waits until that daemon acknowledged the change
 * (`interest.ok`), so every publication that daemon handles after the subscription was
 * confirmed goes to the broker as before. A daemon that is not attached sends nothing anyway
 * and learns the current value in its next attach reply. The wait is bounded
 * ({@linkcode INTEREST_WAIT_MS}): a daemon that does not answer in time (its link is dying)
 * delays nobody's subscription longer.
 *
 * @module
 */

/** How long a subscription's reply waits for the daemons told about it. */
export const INTEREST_WAIT_MS = 2_000;

/** Subscriptions per daemon (of the users living there): pure bookkeeping. */
export class SubscriptionCounts {
  readonly #per = new Map<string, number>();
  #total = 0;

  /** `n` more subscriptions of users of `daemon`. */
  add(daemon: string, n = 1): void {
    this.#per.set(daemon, (this.#per.get(daemon) ?? 0) + n);
    this.#total += n;
  }

  /** `n` fewer subscriptions of users of `daemon`. */
  remove(daemon: string, n = 1): void {
    const left = Math.max(0, (this.#per.get(daemon) ?? 0) - n);
    this.#total -= (this.#per.get(daemon) ?? 0) - left;
    if (left === 0) this.#per.delete(daemon);
    else this.#per.set(daemon, left);
  }

  /** Whether a user of a daemon other than `daemon` has a subscription. */
  others(daemon: string): boolean {
    return this.#total - (this.#per.get(daemon) ?? 0) > 0;
  }
}

/** The acknowledgements (`interest.ok {n}`) a broker waits for, per daemon. */
export class InterestAcks {
  readonly #waits = new Map<
    string,
    Array<{ n: number; done: () => void; timer: ReturnType<typeof setTimeout> }>
  >();

  /** Resolves once `daemon` acknowledged notice `n`, it detached, or after `ms`. */
  wait(daemon: string, n: number, ms = INTEREST_WAIT_MS): Promise<void> {
    return new Promise((resolve) => {
      const list = this.#waits.get(daemon) ?? [];
      const w = {
        n,
        done: () => {
          clearTimeout(w.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const l = this.#waits.get(daemon);
          const i = l?.indexOf(w) ?? -1;
          if (i >= 0) l!.splice(i, 1);
          resolve();
        }, ms),
      };
      list.push(w);
      this.#waits.set(daemon, list);
    });
  }

  /** `daemon` acknowledged every notice up to `n`. */
  ack(daemon: string, n: number): void {
    const list = this.#waits.get(daemon);
    if (!list) return;
    const left = list.filter((w) => w.n > n);
    for (const w of list) if (w.n <= n) w.done();
    if (left.length === 0) this.#waits.delete(daemon);
    else this.#waits.set(daemon, left);
  }

  /** `daemon` detached (or the broker stops): nobody waits for it any more. */
  drop(daemon?: string): void {
    const names = daemon === undefined ? [...this.#waits.keys()] : [daemon];
    for (const name of names) {
      for (const w of this.#waits.get(name) ?? []) w.done();
      this.#waits.delete(name);
    }
  }
}

/**
 * Routing on the publisher's own daemon, pure: which local users a local publication
 * reaches, and which waiting receives may be handed it before its commit.
 *
 * @module
 */
import type { SubscriptionIndex } from "./subscriptions.ts";

/**
 * The local users a publication by `publisher` on `topic` reaches: those of `users` with a
 * matching subscription, the publisher only with `own`; undefined when none.
 */
export function localRecipients(
  subs: SubscriptionIndex,
  users: ReadonlySet<number>,
  topic: string,
  publisher: number,
): number[] | undefined {
  const matches = subs.match(topic);
  if (matches.length === 0) return undefined;
  let out: number[] | undefined;
  for (const m of matches) {
    if ((m.user === publisher && !m.own) || !users.has(m.user)) continue;
    (out ??= []).push(m.user);
  }
  return out;
}

/**
 * Whether a receive waiting after inbox position `after` may be handed the entry at `seq`
 * before its commit: it must be after `after`, and the user's previous entry of the same
 * commit (`previous`, if any) must not be one the receive still waits for (it would be
 * skipped).
 */
export function mayHandOutEarly(after: number, previous: number | undefined, seq: number): boolean {
  return seq > after && (previous === undefined || after >= previous);
}

/** When the daemon hands local publications out before their commit. */
export interface EarlyHandoutPolicy {
  /** The last commit carried at most this many deliveries. @default 4 */
  maxLastCommit: number;
  /** And ran at least this long ago (ms). @default 0.5 */
  quietMs: number;
}

/** The daemon's policy (low load only: under load one answer per commit does more). */
export const EARLY_HANDOUT: EarlyHandoutPolicy = { maxLastCommit: 4, quietMs: 0.5 };

/** Whether the load is low enough for early hand-outs (see {@linkcode EarlyHandoutPolicy}). */
export function quiet(
  lastCommitDeliveries: number,
  sinceLastCommitMs: number,
  policy: EarlyHandoutPolicy = EARLY_HANDOUT,
): boolean {
  return lastCommitDeliveries <= policy.maxLastCommit && sinceLastCommitMs >= policy.quietMs;
}

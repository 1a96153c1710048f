/**
 * The catalogue form of a protocol: one entry per frame type, the single source of a
 * subsystem's message table in its docs page (a test compares the two, both ways).
 *
 * @module
 */

/** One frame type of a protocol, as the docs' message table shows it. */
export interface FrameSpec {
  /** The `t` value. */
  readonly t: string;
  /** Who sends it to whom: `app → daemon`. */
  readonly route: string;
  /** Its fields besides `t` and `rid`, optional ones marked `?`: `user, topic, own?`; `""` for none. */
  readonly fields: string;
  /** The frame that answers it with its fields (`created {user}`), `""` when none. */
  readonly reply: string;
  /** What it does, in one sentence. */
  readonly note: string;
}

/** The frame types of `catalogue` that `route` carries, in catalogue order. */
export function framesOf(catalogue: readonly FrameSpec[], route: string): string[] {
  return catalogue.filter((f) => f.route === route).map((f) => f.t);
}

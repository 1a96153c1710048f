/**
 * The token and its fencing numbers: what a `ring.token` frame carries, how it is checked,
 * the next fence, and where the token goes next. Used by the protocol core (`state.ts`).
 *
 * @module
 */
import { ErrorCode, fieldArray, fieldInt, fieldString, type Message } from "../wire/mod.ts";
import { ProtocolError } from "../wire/mod.ts";

/**
 * Fences are `gen × FENCE_BASE + n` (n = 1, 2, … within a generation), so every fence of a
 * regenerated token exceeds every fence the lost one could have issued.
 */
export const FENCE_BASE = 1_000_000_000;

/** Largest generation whose fences stay exact in a double. */
export const MAX_GEN = Math.floor(Number.MAX_SAFE_INTEGER / FENCE_BASE) - 1;

/** Most node names a token's want list may carry. */
export const MAX_WANT = 1024;

/** The token: generation, last fence issued, hops travelled, nodes known to be waiting. */
export interface Token {
  /** Generation; a regenerated token has a higher one, and lower ones are stale. */
  gen: number;
  /** The last fence issued with this token (`gen × FENCE_BASE` when none yet). */
  fence: number;
  /** Passes since this generation was created. */
  hops: number;
  /** Nodes that asked for the token and have not been visited since. */
  want: string[];
}

/** The fence the next grant with `token` gets. */
export function nextFence(token: Token): number {
  const base = token.gen * FENCE_BASE;
  return token.fence > base ? token.fence + 1 : base + 1;
}

/**
 * Where the token goes next: the first node after `self` in ring order (wrapping) that is
 * alive and waiting. Undefined when nobody else waits (the token parks).
 */
export function passTarget(
  members: readonly string[],
  self: string,
  wanting: ReadonlySet<string>,
  alive: (name: string) => boolean,
): string | undefined {
  const at = members.indexOf(self);
  for (let i = 1; i < members.length; i++) {
    const name = members[(at + i) % members.length];
    if (wanting.has(name) && alive(name)) return name;
  }
  return undefined;
}

/** The next node after `self` in ring order that is alive (the successor). */
export function successorOf(
  members: readonly string[],
  self: string,
  alive: (name: string) => boolean,
): string | undefined {
  return passTarget(members, self, new Set(members), alive);
}

/** Reads a `ring.token` frame; throws `bad_field` for malformed fields. */
export function parseToken(msg: Message): Token {
  const gen = fieldInt(msg, "gen", { min: 1, max: MAX_GEN });
  const fence = fieldInt(msg, "fence", { min: 0, max: Number.MAX_SAFE_INTEGER });
  const hops = fieldInt(msg, "hops", { min: 0, max: Number.MAX_SAFE_INTEGER });
  const rawWant = fieldArray(msg, "want");
  if (rawWant.length > MAX_WANT || rawWant.some((w) => typeof w !== "string")) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: field want must be at most ${MAX_WANT} node names`,
    );
  }
  if (fence < gen * FENCE_BASE || fence >= (gen + 1) * FENCE_BASE) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: fence ${fence} does not belong to generation ${gen}`,
    );
  }
  fieldString(msg, "from");
  return { gen, fence, hops, want: rawWant as string[] };
}

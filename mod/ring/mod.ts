/**
 * Token ring mutual exclusion (`--role ring`): members of the peers file in file order
 * pass a token that grants the lock; every grant carries a fencing number; a lost token is
 * regenerated once with a higher generation; an idle ring parks the token.
 *
 * ```ts
 * const reply = await ctlRequest({ hostname: "127.0.0.1", port: 7101 }, "lock", ["--timeout", "5"]);
 * console.log(reply.fence);
 * ```
 *
 * @module
 */
export { parseLockArgs, parseUnlockArgs, ringCommands, ringRole } from "./role.ts";
export { type LockResult, RingNode, type RingNodeOptions } from "./node.ts";
export { LinkDownError, PeerLinks, type PeerLinksOptions } from "./links.ts";
export {
  FENCE_BASE,
  type Grant,
  type LockRequest,
  MAX_GEN,
  MAX_WANT,
  nextFence,
  type NextStep,
  parseToken,
  passTarget,
  type PrepareReply,
  RingState,
  successorOf,
  type Token,
  type TokenRefusal,
} from "./token.ts";
export { ringDemo } from "./demo.ts";

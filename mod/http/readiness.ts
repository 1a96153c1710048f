/**
 * Readiness (`GET /readyz`): whether a node is ready to serve its role, judged from its
 * `status` (joined, quorum held, storage open). A role may give its own rule
 * (`RoleDefinition.readiness`); otherwise the rule of this table for its name applies, and
 * for any other role a node that answers `status` after its `ready` event is ready.
 *
 * @module
 */

/** A readiness verdict. */
export interface Readiness {
  /** Whether the node is ready. */
  ready: boolean;
  /** Why not (or a short note), for the 503 body. */
  reason?: string;
}

/** A readiness rule: the node's status in, a verdict out. */
export type ReadinessRule = (status: Record<string, unknown>) => Readiness;

const READY: Readiness = { ready: true };

const list = (v: unknown): unknown[] => Array.isArray(v) ? v : [];

const RULES: Record<string, ReadinessRule> = {
  ring: (s) => {
    const ring = list(s.ring).length;
    const alive = list(s.alive).length;
    if (ring === 0) return { ready: false, reason: "no ring members known" };
    if (alive * 2 <= ring) {
      return { ready: false, reason: `minority: ${alive} of ${ring} ring members alive` };
    }
    return READY;
  },
  multicast: (s) =>
    s.state === "member"
      ? READY
      : { ready: false, reason: `not in a view (state ${String(s.state)})` },
  daemon: (s) =>
    s.link === "up" ? READY : { ready: false, reason: `broker link ${String(s.link)}` },
  replica: (s) =>
    s.status === "ACTIVE" ? READY : { ready: false, reason: `replica ${String(s.status)}` },
  frontend: (s) =>
    list(s.rms).some((rm) => (rm as Record<string, unknown>)?.up === true)
      ? READY
      : { ready: false, reason: "no replica reachable" },
};

/** The built-in readiness rule of `role`, if it has one. */
export function readinessRule(role: string): ReadinessRule | undefined {
  return Object.hasOwn(RULES, role) ? RULES[role] : undefined;
}

/**
 * Lab tests: `labTest(name, fn)` runs `fn` when the lab can run here (root, `ip`, `nft`)
 * and otherwise prints `skipped: <reason>` and passes as skipped (never silently).
 *
 * ```ts
 * labTest("gossip reconverges after a partition", async () => {
 *   await using lab = await Lab.up({ prefix: "avg1", peers: [...] });
 *   ...
 * });
 * ```
 *
 * @module
 */
export {
  Lab,
  labAvailable,
  type LabNodeSpec,
  type LabStatus,
  type LabUpOptions,
} from "../../mod/lab/mod.ts";
import { Lab, labAvailable } from "../../mod/lab/mod.ts";

/** Why the lab cannot run here (root, `ip`, `nft`), or undefined: computed once at load. */
export const LAB_SKIP_REASON: string | undefined = await labAvailable();

/**
 * A `Deno.test` that needs the lab. Without it, the test is reported as ignored and prints
 * `skipped: <reason>` (never a silent pass). `fn` is bounded by `timeoutMs`.
 */
export function labTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: { timeoutMs?: number } = {},
): void {
  if (LAB_SKIP_REASON) {
    // not root, or no ip/nft: reported as ignored with the reason on its own line, never a pass
    Deno.test({
      name,
      ignore: true,
      fn: () => {},
    });
    console.log(`skipped: ${name}: ${LAB_SKIP_REASON}`);
    return;
  }
  Deno.test(name, async (t) => {
    const timeoutMs = options.timeoutMs ?? 90_000;
    const before = new Set(Lab.live());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: over ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([fn(t), timeout]);
    } finally {
      clearTimeout(timer);
      // a lab the test left up (it timed out, or forgot `await using`): down it now
      for (const lab of Lab.live()) if (!before.has(lab)) await lab.down().catch(() => {});
    }
  });
}

/**
 * Fast SWIM and anti-entropy for gossip nodes under test: a cut shows within a second or two
 * and every phase takes a few seconds (docs/gossip.md, Failures, gives the bounds).
 */
export const FAST_GOSSIP_ARGS: readonly string[] = [
  "--gossip-interval",
  "100",
  "--anti-entropy-interval",
  "300",
  "--probe-interval",
  "300",
  "--probe-timeout",
  "150",
  "--suspect-timeout",
  "900",
];

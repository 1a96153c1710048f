/**
 * The demo steps, in order. Each subsystem adds one import and one entry.
 *
 * @module
 */
import type { DemoStep } from "../harness/mod.ts";
import { echoDemo } from "./echo_demo.ts";
// ── subsystem demo steps (one import line each) ──
import { lotteryDemo } from "../lottery/mod.ts";
import { queueDemo } from "../queue/mod.ts";
import { leaderDemo } from "../leader/mod.ts";
import { ringDemo } from "../ring/mod.ts";
import { multicastDemo } from "../multicast/mod.ts";
import { ratingsDemo } from "../ratings/mod.ts";
import { momDemo } from "../mom/mod.ts";
import { gossipDemo } from "../gossip/mod.ts";

/** Every demo step, in the order the demo runs them. */
export const DEMO_STEPS: readonly DemoStep[] = [
  echoDemo,
  // ── subsystem demo steps (one entry line each) ──
  lotteryDemo,
  queueDemo,
  leaderDemo,
  ringDemo,
  multicastDemo,
  ratingsDemo,
  momDemo,
  gossipDemo,
];

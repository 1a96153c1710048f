/**
 * `--generate`: writes random words as a Poisson process (exponential gaps with a given
 * mean), as the original gossip assignment did.
 *
 * @module
 */
import { sleep } from "../wire/mod.ts";
import type { RandomSource } from "../random/mod.ts";
import { WORDS } from "./words.ts";

/** The gap before the next event of a Poisson process with mean gap `meanMs`. */
export function exponentialGap(random: RandomSource, meanMs: number): number {
  return -Math.log(1 - random()) * meanMs;
}

/** Options of {@linkcode generateWords}. */
export interface GenerateOptions {
  /** Mean gap between words. */
  meanMs: number;
  /** Stops generating. */
  signal: AbortSignal;
  /** Randomness. @default {Math.random} */
  random?: RandomSource;
}

/** Calls `write(key, word)` at Poisson-distributed times until the signal aborts. */
export async function generateWords(
  nodeName: string,
  write: (key: string, word: string) => void,
  options: GenerateOptions,
): Promise<void> {
  const random = options.random ?? Math.random;
  for (let seq = 1; !options.signal.aborted; seq++) {
    await sleep(exponentialGap(random, options.meanMs), options.signal);
    if (options.signal.aborted) break;
    write(`${nodeName}/${seq}`, WORDS[Math.floor(random() * WORDS.length)]);
  }
}

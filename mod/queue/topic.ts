/**
 * AMQP topic-exchange binding keys: `.`-separated words, `*` matches exactly one word,
 * `#` zero or more words (`stock.#` matches `stock` and `stock.nyse.ibm`).
 *
 * @module
 */

/** Whether routing key `key` matches binding pattern `pattern` (AMQP 0-9-1 topic rules). */
export function topicMatches(pattern: string, key: string): boolean {
  return matchWords(pattern.split("."), 0, key.split("."), 0);
}

function matchWords(p: string[], pi: number, k: string[], ki: number): boolean {
  for (;;) {
    if (pi === p.length) return ki === k.length;
    const word = p[pi];
    if (word === "#") {
      // collapse consecutive #
      while (pi + 1 < p.length && p[pi + 1] === "#") pi++;
      if (pi + 1 === p.length) return true;
      for (let j = ki; j <= k.length; j++) {
        if (matchWords(p, pi + 1, k, j)) return true;
      }
      return false;
    }
    if (ki === k.length) return false;
    if (word !== "*" && word !== k[ki]) return false;
    pi++;
    ki++;
  }
}

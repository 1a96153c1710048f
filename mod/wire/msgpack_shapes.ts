/**
 * Map key layouts a decoder has seen, so that a map with a known layout is built as one
 * object literal (the object gets its final layout at once instead of key by key through
 * keyed stores: measured ~75 → ~55 ns per 100-byte frame).
 *
 * A {@linkcode ShapeCache} belongs to one connection and is given to its decoder only
 * once the handshake is done, so a peer that has not said hello cannot fill it, and one
 * peer's layouts never push out another's. The compiled builders themselves are pure
 * functions of a key list and are shared by the process (at most
 * {@linkcode MAX_COMPILED_SHAPES}); past that, new layouts are simply built key by key.
 *
 * Matching never decodes a value twice: a reader that meets an unexpected key after some
 * values hands the pairs it read back to the decoder, which finishes the map key by key.
 *
 * @module
 */

/** Maps with at most this many keys are built through a layout. */
export const SHAPE_MAX_KEYS = 16;
/** Layouts remembered per key count, most recently used first (per cache). */
const SHAPES_PER_COUNT = 4;
/** Builders compiled in all (per process). */
export const MAX_COMPILED_SHAPES = 1024;
/** Longest key a learned layout may hold (longer keys are rare and never compiled). */
const MAX_KEY_CHARS = 64;

/** What `next` returns for a key other than the one expected. */
export const KEY_MISS: unique symbol = Symbol("key miss");
/** What a reader returns when the first key already differs: try another layout. */
export const TRY_NEXT: unique symbol = Symbol("try next layout");

/** The decoder's side of a layout reader. */
export type NextValue = (key: string) => unknown;
/** Called by a reader on a miss with the map's size and the pairs read before it. */
export type OnMiss = (n: number, ...pairs: unknown[]) => Record<string, unknown> | typeof TRY_NEXT;

/** A key layout and its reader. */
export interface Shape {
  /** The keys, in order. */
  readonly keys: readonly string[];
  /**
   * Builds the map as one object literal from values read by `next`, which returns
   * `KEY_MISS` for an unexpected key; then the reader returns `miss(n, pairs read…)`.
   */
  read(next: NextValue, miss: OnMiss): Record<string, unknown> | typeof TRY_NEXT;
}

/** Every compiled reader, by the JSON of its keys (shared: pure functions). */
const compiled = new Map<string, Shape>();

const NO_SHAPES: readonly Shape[] = [];

/**
 * The layouts one connection's decoder tries, by key count, most recently used first.
 * Bounded: {@linkcode SHAPE_MAX_KEYS} counts × 4 layouts.
 */
export class ShapeCache {
  #byCount: Shape[][] = Array.from({ length: SHAPE_MAX_KEYS + 1 }, () => []);

  /** Layouts held (for tests). */
  get size(): number {
    return this.#byCount.reduce((n, list) => n + list.length, 0);
  }

  /** The layouts of `n` keys, most recently used first (at most 4). */
  layouts(n: number): readonly Shape[] {
    return n <= SHAPE_MAX_KEYS ? this.#byCount[n] : NO_SHAPES;
  }

  /** Moves layout `s` of `n` keys to the front (it just matched). */
  promote(n: number, s: number): void {
    const list = this.#byCount[n];
    const [shape] = list.splice(s, 1);
    list.unshift(shape);
  }

  /** Remembers the layout `keys` (a map just read key by key). */
  learn(keys: readonly string[]): void {
    const n = keys.length;
    if (n === 0 || n > SHAPE_MAX_KEYS) return;
    for (const key of keys) {
      if (key.length > MAX_KEY_CHARS || key === "__proto__") return;
    }
    if (new Set(keys).size !== n) return;
    const id = JSON.stringify(keys);
    let shape = compiled.get(id);
    if (shape === undefined) {
      if (compiled.size >= MAX_COMPILED_SHAPES) return;
      shape = compileShape(keys);
      compiled.set(id, shape);
    }
    const list = this.#byCount[n];
    const at = list.indexOf(shape);
    if (at >= 0) list.splice(at, 1);
    list.unshift(shape);
    if (list.length > SHAPES_PER_COUNT) list.pop();
  }
}

/**
 * Compiles the reader of one key layout:
 *
 *     let v0, v1;
 *     if ((v0 = next("t")) === M) return miss(2);
 *     if ((v1 = next("d")) === M) return miss(2, "t", v0);
 *     return { "t": v0, "d": v1 };
 *
 * Property names are JSON string literals, which are valid JS string literals; a layout
 * never holds `__proto__` or a key twice (refused by `learn`).
 */
function compileShape(keys: readonly string[]): Shape {
  const n = keys.length;
  const names = keys.map((key) => JSON.stringify(key));
  const lines = [`let ${names.map((_, i) => `v${i}`).join(", ")};`];
  for (let i = 0; i < n; i++) {
    const before = names.slice(0, i).map((name, j) => `, ${name}, v${j}`).join("");
    lines.push(`if ((v${i} = next(${names[i]})) === M) return miss(${n}${before});`);
  }
  lines.push(`return { ${names.map((name, i) => `${name}: v${i}`).join(", ")} };`);
  const factory = new Function("M", `return function read(next, miss) {\n${lines.join("\n")}\n};`);
  return {
    keys: Object.freeze([...keys]),
    read: factory(KEY_MISS) as Shape["read"],
  };
}

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
 * Matching never decodes anything: the decoder reads a map's keys and values once onto a
 * stack, then asks the cache for a layout with exactly those keys.
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

/** A key layout and its builder. */
interface Shape {
  /** The keys, in order. */
  readonly keys: readonly string[];
  /** Builds the object from `stack[base]` = key 0, `stack[base + 1]` = value 0, … */
  build(stack: unknown[], base: number): Record<string, unknown>;
}

/** Every compiled builder, by the JSON of its keys (shared: pure functions). */
const compiled = new Map<string, Shape>();

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

  /**
   * Builds the map of the `n` key/value pairs at `stack[base…]` if their keys match a known
   * layout; `undefined` otherwise. Costs at most 4 × n key comparisons.
   */
  build(stack: unknown[], base: number, n: number): Record<string, unknown> | undefined {
    const list = this.#byCount[n];
    for (let s = 0; s < list.length; s++) {
      const keys = list[s].keys;
      let i = 0;
      while (i < n && keys[i] === stack[base + 2 * i]) i++;
      if (i === n) {
        const shape = list[s];
        if (s > 0) {
          list.splice(s, 1);
          list.unshift(shape);
        }
        return shape.build(stack, base);
      }
    }
    return undefined;
  }

  /** Remembers the layout of the `n` keys at `stack[base]`, `stack[base + 2]`, … */
  learn(stack: unknown[], base: number, n: number): void {
    if (n === 0 || n > SHAPE_MAX_KEYS) return;
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = stack[base + 2 * i];
      if (typeof key !== "string" || key.length > MAX_KEY_CHARS || key === "__proto__") return;
      keys.push(key);
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
    list.unshift(shape);
    if (list.length > SHAPES_PER_COUNT) list.pop();
  }
}

/**
 * Compiles the builder of one key layout: `return {"t": s[b + 1], "d": s[b + 3]}`.
 * Property names are JSON string literals, which are valid JS string literals; a layout
 * never holds `__proto__` or a key twice (refused by `learn`).
 */
function compileShape(keys: string[]): Shape {
  const body = keys.map((key, i) => `${JSON.stringify(key)}: s[b + ${2 * i + 1}]`).join(", ");
  return {
    keys: Object.freeze([...keys]),
    build: new Function("s", "b", `return { ${body} };`) as Shape["build"],
  };
}

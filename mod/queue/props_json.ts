/**
 * The stored form of message properties: JSON with byte arrays as `{$bytes: base64}`,
 * dates as `{$date: ms}` and bigints as strings, and back.
 *
 * @module
 */

let lastProps: Record<string, unknown> | undefined;
let lastPropsJson = "";

/**
 * The stored (JSON) form of props. The last one is remembered: AMQP publishers send the
 * same props object again and again (decoded once per distinct set of bytes).
 */
export function storedProps(props: Record<string, unknown>): string {
  if (props === lastProps) return lastPropsJson;
  // a replacer makes JSON.stringify several times slower, and most props (often `{}`) hold
  // nothing it would change: look first, with a bounded walk
  lastPropsJson = isPlainJson(props, 0)
    ? JSON.stringify(props)
    : JSON.stringify(props, propsReplacer);
  lastProps = props;
  return lastPropsJson;
}

/** Deepest level {@linkcode isPlainJson} walks; deeper props take the replacer. */
const PLAIN_MAX_DEPTH = 8;

/**
 * Whether `value` is strings, finite or not numbers, booleans, null and undefined in plain
 * arrays and objects only: what `JSON.stringify` writes the same with or without
 * {@linkcode propsReplacer}.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return true;
    case "object": {
      if (depth >= PLAIN_MAX_DEPTH) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!isPlainJson(value[i], depth + 1)) return false;
        }
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** Stored props: byte arrays as `{$bytes: base64}`, dates as `{$date: ms}`, bigints as strings. */
export function propsReplacer(this: unknown, key: string, value: unknown): unknown {
  // a Date has been through its toJSON already: look at the holder's own value
  const own = (this as Record<string, unknown> | undefined)?.[key];
  if (own instanceof Date) return { $date: own.getTime() };
  if (value instanceof Uint8Array) {
    let s = "";
    for (let i = 0; i < value.length; i++) s += String.fromCharCode(value[i]);
    return { $bytes: btoa(s) };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** Reverses {@linkcode propsReplacer} (bigints stay strings). */
export function propsReviver(_key: string, value: unknown): unknown {
  if (
    typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as { $bytes?: unknown }).$bytes === "string" && Object.keys(value).length === 1
  ) {
    const s = atob((value as { $bytes: string }).$bytes);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  if (
    typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as { $date?: unknown }).$date === "number" && Object.keys(value).length === 1
  ) {
    return new Date((value as { $date: number }).$date);
  }
  return value;
}

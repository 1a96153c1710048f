/**
 * Typed values, declared once: how a text (a flag, an environment variable, a ctl
 * argument) or a JSON value (a key of peers.json) becomes a checked value of a type, with
 * one clear message when it cannot. Role options and ctl arguments are both made of them.
 *
 * @module
 */

/** What every value declaration has. */
interface ValueBase {
  /** One line of help. */
  help: string;
  /** The placeholder in help (`ms` → `<ms>`). @default {the type's name} */
  arg?: string;
}

/** A base-10 integer, optionally bounded. */
export interface IntValue extends ValueBase {
  /** The type. */
  type: "int";
  /** Default value. */
  default?: number;
  /** Smallest value allowed. */
  min?: number;
  /** Largest value allowed. */
  max?: number;
}

/** A finite number, optionally bounded. */
export interface FloatValue extends ValueBase {
  /** The type. */
  type: "float";
  /** Default value. */
  default?: number;
  /** Smallest value allowed. */
  min?: number;
  /** Largest value allowed. */
  max?: number;
  /** Whether `min` itself is refused (`> min`, for "a positive number"). @default {false} */
  exclusiveMin?: boolean;
}

/** A byte size: `16MiB`, `512k`, `65536`. */
export interface SizeValue extends ValueBase {
  /** The type. */
  type: "size";
  /** Default value, in bytes. */
  default?: number;
  /** Smallest value allowed, in bytes. */
  min?: number;
  /** Largest value allowed, in bytes. */
  max?: number;
}

/** Any string (an address, a path, a list). */
export interface StringValue extends ValueBase {
  /** The type. */
  type: "string";
  /** Default value. */
  default?: string;
}

/** One of a fixed set of words. */
export interface ChoiceValue<C extends string = string> extends ValueBase {
  /** The type. */
  type: "choice";
  /** The words allowed. */
  choices: readonly C[];
  /** Default value. */
  default?: C;
}

/** A switch: present (`--quiet`) or absent; false unless given. */
export interface BoolValue extends ValueBase {
  /** The type. */
  type: "bool";
  /** Default value. @default {false} */
  default?: boolean;
}

/** One typed value declaration. */
export type ValueSpec = IntValue | FloatValue | SizeValue | StringValue | ChoiceValue | BoolValue;

/** The TypeScript type of the values a declaration accepts. */
export type ValueOf<S> = S extends ChoiceValue<infer C> ? C
  : S extends IntValue | FloatValue | SizeValue ? number
  : S extends BoolValue ? boolean
  : string;

/** The type of a declared value as a program receives it: `undefined` only when it has no default. */
export type ValueOrDefault<S> = S extends BoolValue ? boolean
  : S extends { default: unknown } ? ValueOf<S>
  : ValueOf<S> | undefined;

/** A value that does not fit its declaration; the message completes "<where>: …". */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValueError";
  }
}

const SIZE = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;

/** Reads a size like `16MiB`, `512k` or `1048576` as bytes; undefined when it is not one. */
export function readSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "b").toLowerCase()[0];
  const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

/** A byte count as the largest exact unit: `16MiB`, `1KiB`, `1000` (bytes). */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** What a declaration accepts, in words: "an integer, at least 1". */
export function describeValue(spec: ValueSpec): string {
  switch (spec.type) {
    case "int":
      return `an integer${bounds(spec)}`;
    case "float":
      return `a number${bounds(spec)}`;
    case "size":
      return `a size like 16MiB or 65536${bounds(spec)}`;
    case "choice":
      return `one of ${spec.choices.join(", ")}`;
    case "bool":
      return "true or false";
    case "string":
      return "a string";
  }
}

/** The bounds of a number declaration in words (", at least 1", ", 1 to 10"), or "". */
export function bounds(spec: IntValue | FloatValue | SizeValue): string {
  const above = spec.type === "float" && spec.exclusiveMin ? "above" : "at least";
  const show = (n: number) => spec.type === "size" ? formatSize(n) : String(n);
  if (spec.min !== undefined && spec.max !== undefined) {
    return spec.type === "float" && spec.exclusiveMin
      ? `, above ${spec.min} and at most ${spec.max}`
      : `, ${show(spec.min)} to ${show(spec.max)}`;
  }
  if (spec.min !== undefined) return `, ${above} ${show(spec.min)}`;
  if (spec.max !== undefined) return `, at most ${show(spec.max)}`;
  return "";
}

function checkBounds(spec: IntValue | FloatValue | SizeValue, n: number, shown: string): number {
  const low = spec.min !== undefined &&
    (spec.type === "float" && spec.exclusiveMin ? n <= spec.min : n < spec.min);
  if (low || (spec.max !== undefined && n > spec.max)) {
    throw new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
  }
  return n;
}

/** Parses the text of a value (a flag, an environment variable, a ctl argument). */
export function parseValueText<S extends ValueSpec>(spec: S, text: string): ValueOf<S>;
export function parseValueText(spec: ValueSpec, text: string): string | number | boolean {
  const shown = JSON.stringify(text);
  switch (spec.type) {
    case "int": {
      const n = Number(text);
      if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
        throw new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
      }
      return checkBounds(spec, n, shown);
    }
    case "float": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) {
        throw new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
      }
      return checkBounds(spec, n, shown);
    }
    case "size": {
      const n = readSize(text);
      if (n === undefined) throw new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
      return checkBounds(spec, n, shown);
    }
    case "choice":
      if (!spec.choices.includes(text)) {
        throw new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
      }
      return text;
    case "bool":
      if (text === "true" || text === "1" || text === "") return true;
      if (text === "false" || text === "0") return false;
      throw new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
    case "string":
      return text;
  }
}

/** Checks a JSON value (a key of a peers.json node) against its declaration. */
export function checkValueJson<S extends ValueSpec>(spec: S, value: unknown): ValueOf<S>;
export function checkValueJson(spec: ValueSpec, value: unknown): string | number | boolean {
  const shown = JSON.stringify(value) ?? String(value);
  const wrong = () => new ValueError(`must be ${describeValue(spec)}, got ${shown}`);
  switch (spec.type) {
    case "int":
      if (!Number.isSafeInteger(value)) throw wrong();
      return checkBounds(spec, value as number, shown);
    case "float":
      if (typeof value !== "number" || !Number.isFinite(value)) throw wrong();
      return checkBounds(spec, value, shown);
    case "size":
      if (typeof value === "string") return parseValueText(spec, value);
      if (!Number.isSafeInteger(value) || (value as number) < 0) throw wrong();
      return checkBounds(spec, value as number, shown);
    case "choice":
      if (typeof value !== "string" || !spec.choices.includes(value)) throw wrong();
      return value;
    case "bool":
      if (typeof value !== "boolean") throw wrong();
      return value;
    case "string":
      if (typeof value !== "string") throw wrong();
      return value;
  }
}

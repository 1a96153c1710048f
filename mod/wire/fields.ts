/**
 * Field readers for incoming frames: each returns the typed value or throws a
 * `ProtocolError` with code `bad_field` naming the field and what was wrong.
 *
 * @module
 */
import type { Message } from "./codec.ts";
import { ErrorCode } from "./constants.ts";
import { ProtocolError } from "./errors.ts";

function badField(msg: Message, field: string, want: string): ProtocolError {
  const got = msg[field];
  const kind = got === undefined
    ? "missing"
    : got === null
    ? "null"
    : Array.isArray(got)
    ? "array"
    : typeof got;
  return new ProtocolError(
    ErrorCode.BadField,
    `Cannot accept ${msg.t}: field ${field} must be ${want}, got ${kind}`,
    {
      field,
    },
  );
}

/** Reads a string field; `maxBytes` bounds its UTF-8-ish length (in UTF-16 units ×3). */
export function fieldString(
  msg: Message,
  field: string,
  options: { maxLength?: number; allowEmpty?: boolean } = {},
): string {
  const v = msg[field];
  if (typeof v !== "string") throw badField(msg, field, "a string");
  if (!options.allowEmpty && v.length === 0) throw badField(msg, field, "a non-empty string");
  if (options.maxLength !== undefined && v.length > options.maxLength) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: field ${field} is longer than ${options.maxLength}`,
      {
        field,
      },
    );
  }
  return v;
}

/** Reads an optional string field. */
export function fieldOptString(msg: Message, field: string): string | undefined {
  const v = msg[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw badField(msg, field, "a string");
  return v;
}

/** Reads an integer field within `[min, max]`. */
export function fieldInt(
  msg: Message,
  field: string,
  options: { min?: number; max?: number } = {},
): number {
  const v = msg[field];
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n)) throw badField(msg, field, "an integer");
  if (
    (options.min !== undefined && n < options.min) || (options.max !== undefined && n > options.max)
  ) {
    throw new ProtocolError(
      ErrorCode.BadField,
      `Cannot accept ${msg.t}: field ${field} = ${n} is outside ${options.min ?? "-∞"}..${
        options.max ?? "∞"
      }`,
      { field },
    );
  }
  return n;
}

/** Reads an optional integer field. */
export function fieldOptInt(
  msg: Message,
  field: string,
  options: { min?: number; max?: number } = {},
): number | undefined {
  if (msg[field] === undefined || msg[field] === null) return undefined;
  return fieldInt(msg, field, options);
}

/** Reads a finite number field. */
export function fieldNumber(msg: Message, field: string): number {
  const v = msg[field];
  if (typeof v !== "number" || !Number.isFinite(v)) throw badField(msg, field, "a number");
  return v;
}

/** Reads a boolean field, `fallback` when absent. */
export function fieldBool(msg: Message, field: string, fallback = false): boolean {
  const v = msg[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw badField(msg, field, "a boolean");
  return v;
}

/** Reads a bytes field (a string is accepted and UTF-8 encoded). */
export function fieldBytes(msg: Message, field: string): Uint8Array {
  const v = msg[field];
  if (v instanceof Uint8Array) return v;
  if (typeof v === "string") return new TextEncoder().encode(v);
  throw badField(msg, field, "bytes");
}

/** Reads an array field. */
export function fieldArray(msg: Message, field: string): unknown[] {
  const v = msg[field];
  if (!Array.isArray(v)) throw badField(msg, field, "an array");
  return v;
}

/** Reads a map field. */
export function fieldMap(msg: Message, field: string): Record<string, unknown> {
  const v = msg[field];
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) {
    throw badField(msg, field, "a map");
  }
  return v as Record<string, unknown>;
}

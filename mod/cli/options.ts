/**
 * Commander plumbing shared by roles and commands: typed parsers, and environment
 * variables (`PEERD_<OPTION>`) for every option.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import type { RoleOption } from "../process/mod.ts";

/** Parses a base-10 integer option value. */
export function parseIntOption(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError("must be an integer");
  }
  return n;
}

/** Parses a number option value. */
export function parseFloatOption(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new InvalidArgumentError("must be a number");
  }
  return n;
}

/** Parses a size like `16MiB`, `512k`, `1048576`. */
export function parseSizeOption(value: string): number {
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError("must be a size like 16MiB or 65536");
  const unit = (m[2] ?? "b").toLowerCase()[0];
  const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

/** The environment variable of a long flag: `--max-frame` → `PEERD_MAX_FRAME`. */
export function envNameOf(flags: string): string | undefined {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1];
  if (!long || long.startsWith("no-")) return undefined;
  return `PEERD_${long.replace(/-/g, "_").toUpperCase()}`;
}

/** Makes a commander `Option` from a declarative {@linkcode RoleOption}. */
export function toCommanderOption(spec: RoleOption): Option {
  const option = new Option(spec.flags, spec.description);
  const kind = spec.kind ?? (typeof spec.default === "number" ? "int" : "string");
  if (kind === "int") option.argParser(parseIntOption);
  if (kind === "float") option.argParser(parseFloatOption);
  if (spec.choices) option.choices(spec.choices);
  if (spec.default !== undefined) option.default(spec.default);
  const env = envNameOf(spec.flags);
  if (env) option.env(env);
  return option;
}

/** Gives every option of `cmd` that has none an environment variable `PEERD_<OPTION>`. */
export function addEnvToOptions(cmd: Command): void {
  for (const option of cmd.options) {
    const o = option as Option & { envVar?: string };
    if (!o.envVar) {
      const env = envNameOf(o.flags);
      if (!env) continue;
      o.env(env);
      // commander listens for an option's env value only if it had one when added
      cmd.on(`optionEnv:${o.name()}`, (value?: string) => {
        let parsed: unknown = value;
        try {
          if (!o.required && !o.optional) parsed = true;
          else if (o.parseArg) parsed = o.parseArg(String(value), undefined);
        } catch (err) {
          cmd.error(
            `error: option '${o.flags}' value '${value}' from env '${env}' is invalid. ${
              err instanceof Error ? err.message : String(err)
            }`,
            { code: "commander.invalidArgument", exitCode: 2 },
          );
        }
        cmd.setOptionValueWithSource(o.attributeName(), parsed, "env");
      });
    }
  }
}

/**
 * Commander plumbing shared by roles and commands: typed parsers, and environment
 * variables (`PEERD_<OPTION>`) for every option.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  bounds,
  formatSize,
  parseValueText,
  ValueError,
  type ValueOf,
  type ValueSpec,
} from "../config/mod.ts";
import {
  optionEnv,
  optionFlag,
  type OptionValues,
  type RoleOption,
  type RoleOptions,
  UsageError,
} from "../process/mod.ts";

/** Makes a commander argument parser of a typed value declaration. */
export function valueParser<S extends ValueSpec>(spec: S): (text: string) => ValueOf<S> {
  return (text) => {
    try {
      return parseValueText(spec, text);
    } catch (err) {
      if (err instanceof ValueError) throw new InvalidArgumentError(err.message);
      throw err;
    }
  };
}

/** Parses a base-10 integer option value. */
export const parseIntOption: (value: string) => number = valueParser({ type: "int", help: "" });

/** Parses a size like `16MiB`, `512k`, `1048576`. */
export const parseSizeOption: (value: string) => number = valueParser({ type: "size", help: "" });

/** The environment variable of a long flag: `--max-frame` → `PEERD_MAX_FRAME`. */
export function envNameOf(flags: string): string | undefined {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1];
  if (!long || long.startsWith("no-")) return undefined;
  return `PEERD_${long.replace(/-/g, "_").toUpperCase()}`;
}

/** The help line of an option: its help, then what it accepts when that says more than the type. */
export function optionHelp(spec: RoleOption): string {
  if (spec.type === "int" || spec.type === "float" || spec.type === "size") {
    const range = bounds(spec);
    return range ? `${spec.help} (${range.slice(2)})` : spec.help;
  }
  if (spec.type === "choice") return `${spec.help} (${spec.choices.join(", ")})`;
  return spec.help;
}

/** The flags of an option as help shows them: `--heartbeat-ms <ms>`, `--quiet`. */
export function optionFlags(key: string, spec: RoleOption): string {
  const arg = spec.arg ?? (spec.type === "int" ? "n" : spec.type);
  return spec.type === "bool" ? optionFlag(key) : `${optionFlag(key)} <${arg}>`;
}

/**
 * Makes the commander `Option` of a declared role option: flag, help, default and
 * environment variable. Commander keeps the text; {@linkcode roleOptionValues} parses it,
 * so every bad value gets the same one line whatever its source.
 */
export function toCommanderOption(key: string, spec: RoleOption): Option {
  const option = new Option(optionFlags(key, spec), optionHelp(spec));
  if (spec.type === "size" && spec.default !== undefined) {
    option.default(spec.default, formatSize(spec.default));
  } else if (spec.default !== undefined && !(spec.type === "bool" && spec.default === false)) {
    option.default(spec.default);
  }
  option.env(optionEnv(key, spec));
  return option;
}

/**
 * The typed values of a role's options from commander's parsed options: a flag's or an
 * environment variable's text is parsed and checked here (a {@linkcode UsageError} naming
 * the flag or the variable when it does not fit); defaults and peers.json values (already
 * checked by `nodeOptionValues`) are kept; switches are false unless given.
 */
export function roleOptionValues<S extends RoleOptions>(
  schema: S,
  parsed: Record<string, unknown>,
  sourceOf: (attribute: string) => string | undefined = () => undefined,
): OptionValues<S> {
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const value = parsed[key];
    const source = sourceOf(key);
    if (typeof value === "string" && (source === "cli" || source === "env")) {
      try {
        values[key] = parseValueText(spec, value);
      } catch (err) {
        if (!(err instanceof ValueError)) throw err;
        const where = source === "env"
          ? `${optionEnv(key, spec)} (${optionFlag(key)})`
          : optionFlag(key);
        throw new UsageError(`${where} ${err.message}`);
      }
    } else values[key] = value ?? (spec.type === "bool" ? spec.default ?? false : undefined);
  }
  return values as OptionValues<S>;
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

/**
 * Typed ctl command arguments, declared once per command: positional arguments in order
 * (the last may take the rest of the words), then `--flags` (`--name value`,
 * `--name=value`, or a switch `--name`). The declaration gives the parsed, typed values the
 * command receives, one clear `bad_field` error for anything else (with the usage line),
 * and the usage that `help` lists. The value types are those of role options
 * (`mod/config` values).
 *
 * ```ts
 * const lock = ctlCommand("lock", {
 *   summary: "wait for the lock",
 *   args: { seconds: { type: "float", help: "how long to wait", optional: true } },
 * }, ({ seconds }) => ({ waited: seconds ?? 0 }));
 * ```
 *
 * @module
 */
import {
  parseValueText,
  ValueError,
  type ValueOf,
  type ValueOrDefault,
  type ValueSpec,
} from "../config/mod.ts";
import { ErrorCode, type Message, type PeerSession, ProtocolError } from "../wire/mod.ts";
import type { CtlCommand } from "./control.ts";

/** One positional argument. */
export type CtlArg = ValueSpec & {
  /** May be left out (then its default, or undefined). @default {false} */
  optional?: boolean;
  /** Takes every remaining word, joined with spaces (a string; the last argument only). */
  rest?: boolean;
};

/** Positional arguments by name, in order. */
export type CtlArgs = Readonly<Record<string, CtlArg>>;

/** Flags by name (`timeout` is `--timeout`). */
export type CtlFlags = Readonly<Record<string, ValueSpec>>;

/** The declaration of one ctl command. */
export interface CtlCommandSpec<A extends CtlArgs, F extends CtlFlags> {
  /** One line for `help`. */
  summary: string;
  /** Positional arguments, in order. */
  args?: A;
  /** Flags. */
  flags?: F;
}

type ArgValue<S> = S extends { optional: true } ? ValueOrDefault<S> : ValueOf<S>;

/** The typed values of a command's arguments and flags. */
export type CtlValues<A extends CtlArgs, F extends CtlFlags> =
  & { readonly [K in keyof A]: ArgValue<A[K]> }
  & { readonly [K in keyof F]: ValueOrDefault<F[K]> };

/** A ctl command made by {@linkcode ctlCommand}: callable as a {@linkcode CtlCommand}, with its usage. */
export type DescribedCtlCommand = CtlCommand & {
  /** `lock [seconds] [--timeout <s>]`. */
  readonly usage: string;
  /** One line of what it does. */
  readonly summary: string;
};

/** The usage line of a command: `bind <queue> <exchange> [key] [--transient]`. */
export function ctlUsage(name: string, spec: CtlCommandSpec<CtlArgs, CtlFlags>): string {
  const parts = [name];
  for (const [arg, s] of Object.entries(spec.args ?? {})) {
    const word = s.rest ? `${arg}…` : arg;
    parts.push(s.optional ? `[${word}]` : `<${word}>`);
  }
  for (const [flag, s] of Object.entries(spec.flags ?? {})) {
    parts.push(s.type === "bool" ? `[--${flag}]` : `[--${flag} <${s.arg ?? s.type}>]`);
  }
  return parts.join(" ");
}

/**
 * Parses `words` by a command's declaration; throws a `bad_field` {@linkcode ProtocolError}
 * that names the argument and ends with the usage line.
 */
export function parseCtlArgs<const A extends CtlArgs, const F extends CtlFlags>(
  name: string,
  spec: CtlCommandSpec<A, F>,
  words: readonly string[],
): CtlValues<A, F> {
  const usage = ctlUsage(name, spec);
  const fail = (what: string): never => {
    throw new ProtocolError(ErrorCode.BadField, `Cannot ${name}: ${what} (usage: ${usage})`);
  };
  const flags = Object.entries(spec.flags ?? {});
  const positional: string[] = [];
  const values: Record<string, unknown> = {};
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    const m = flags.length > 0 ? /^--([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(word) : null;
    if (!m) {
      positional.push(word);
      continue;
    }
    const found = flags.find(([f]) => f === m[1]);
    if (!found) {
      fail(`unknown flag --${m[1]}; flags are ${flags.map(([f]) => `--${f}`).join(", ")}`);
    }
    const [flag, s] = found!;
    let text = m[2];
    if (s.type === "bool") text ??= "true";
    else if (text === undefined) {
      if (i + 1 >= words.length) fail(`--${flag} needs a value`);
      text = words[++i];
    }
    values[flag] = parse(s, text, `--${flag}`, fail);
  }
  const args = Object.entries(spec.args ?? {});
  let next = 0;
  for (const [arg, s] of args) {
    if (s.rest) {
      const rest = positional.slice(next);
      next = positional.length;
      if (rest.length === 0) {
        if (!s.optional) fail(`missing <${arg}>`);
        values[arg] = s.default;
      } else values[arg] = parse(s, rest.join(" "), arg, fail);
    } else if (next < positional.length) {
      values[arg] = parse(s, positional[next++], arg, fail);
    } else if (s.optional) values[arg] = s.type === "bool" ? s.default ?? false : s.default;
    else fail(`missing <${arg}>`);
  }
  if (next < positional.length) {
    fail(`unexpected argument ${JSON.stringify(positional[next])}`);
  }
  for (const [flag, s] of flags) {
    if (!(flag in values)) values[flag] = s.type === "bool" ? s.default ?? false : s.default;
  }
  return values as CtlValues<A, F>;
}

function parse(spec: ValueSpec, text: string, what: string, fail: (w: string) => never): unknown {
  try {
    return parseValueText(spec, text);
  } catch (err) {
    if (err instanceof ValueError) fail(`${what} ${err.message}`);
    throw err;
  }
}

/** Makes a ctl command whose words are parsed and checked by `spec` before `run` sees them. */
export function ctlCommand<
  const A extends CtlArgs = Record<never, never>,
  const F extends CtlFlags = Record<never, never>,
>(
  name: string,
  spec: CtlCommandSpec<A, F>,
  run: (
    values: CtlValues<A, F>,
    session: PeerSession,
    msg: Message,
  ) => Record<string, unknown> | Promise<Record<string, unknown>>,
): DescribedCtlCommand {
  const command: CtlCommand = (words, session, msg) =>
    run(parseCtlArgs(name, spec, words), session, msg);
  return Object.assign(command, { usage: ctlUsage(name, spec), summary: spec.summary });
}

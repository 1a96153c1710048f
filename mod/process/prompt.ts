/**
 * A line-oriented command prompt for roles run on a terminal (`ring> lock 5`): each line
 * is split into words, the first names a command, the result is printed as JSON, an error
 * as `error: …`. `quit` or `exit`, the end of input or the signal ends it.
 *
 * @module
 */

import type { CtlCommands } from "../ctl/mod.ts";

/** A prompt command: takes the words after the command name, returns what to print. */
export type PromptCommand = (args: string[]) => unknown;

/**
 * The prompt commands of a role's ctl commands (same arguments, same replies). The prompt
 * has no connection: a command that would watch its session (a waiting `lock`) gets none.
 */
export function promptCommandsOf(commands: CtlCommands): Record<string, PromptCommand> {
  const out: Record<string, PromptCommand> = {};
  for (const [name, fn] of Object.entries(commands)) {
    out[name] = (args) => fn(args, undefined as never, { t: "ctl", cmd: name, args });
  }
  return out;
}

/** What {@linkcode runCommandPrompt} needs. */
export interface CommandPromptOptions {
  /** The prompt's name, printed as `<name>> `. */
  name: string;
  /** The first line printed, listing the commands. */
  help: string;
  /** The commands by name. */
  commands: Record<string, PromptCommand>;
  /** Ends the prompt. */
  signal: AbortSignal;
  /** Where lines come from (default: stdin). */
  input?: ReadableStream<Uint8Array>;
  /** Where output goes (default: stdout). */
  write?: (text: string) => void;
}

/** Runs the prompt until `quit`/`exit`, the end of input or the signal. */
export async function runCommandPrompt(options: CommandPromptOptions): Promise<void> {
  const { name, commands, signal } = options;
  const enc = new TextEncoder();
  const write = options.write ?? ((s: string) => void Deno.stdout.writeSync(enc.encode(s)));
  const dec = new TextDecoder();
  write(`${name}> ${options.help}\n${name}> `);
  const reader = (options.input ?? Deno.stdin.readable).getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) return;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const [cmd, ...args] = buf.slice(0, nl).trim().split(/\s+/).filter(Boolean);
        buf = buf.slice(nl + 1);
        if (cmd === "quit" || cmd === "exit") return;
        if (cmd) {
          try {
            const fn = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
            if (!fn) {
              throw new Error(
                `unknown command ${cmd}; commands are ${Object.keys(commands).join(", ")}`,
              );
            }
            write(JSON.stringify(await fn(args)) + "\n");
          } catch (err) {
            write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
          }
        }
        write(`${name}> `);
      }
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
}

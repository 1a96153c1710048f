/**
 * Starting copies of peerd itself: with `Deno.execPath()` and the same entry point, so
 * the compiled binary starts copies of itself and `npx`-run Deno needs no `deno` on PATH.
 *
 * @module
 */

const MAIN_URL = new URL("../../main.ts", import.meta.url);
const CONFIG_URL = new URL("../../deno.json", import.meta.url);

/** Whether this process is the compiled `peerd` binary rather than `deno run main.ts`. */
export function isCompiledBinary(): boolean {
  return Deno.mainModule.includes("deno-compile-") || !/(^|\/)deno(\.exe)?$/.test(Deno.execPath());
}

/** The argument vector that starts peerd with `args` (program first). */
export function peerdArgv(args: string[]): [string, ...string[]] {
  if (isCompiledBinary()) return [Deno.execPath(), ...args];
  const prefix = ["run", "-A", "--quiet"];
  if (CONFIG_URL.protocol === "file:") {
    prefix.push("--config", decodeURIComponent(CONFIG_URL.pathname));
  }
  return [
    Deno.execPath(),
    ...prefix,
    MAIN_URL.href.startsWith("file:") ? decodeURIComponent(MAIN_URL.pathname) : MAIN_URL.href,
    ...args,
  ];
}

/** A `Deno.Command` that runs peerd with `args`. */
export function peerdCommand(
  args: string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Deno.Command {
  const [program, ...rest] = peerdArgv(args);
  return new Deno.Command(program, { ...options, args: rest });
}

/**
 * Stops `child`: SIGTERM, then SIGKILL if it is still running after `graceMs`; resolves with
 * its exit status once it is gone (a process that already ended is fine).
 */
export async function stopProcess(
  child: Deno.ChildProcess,
  graceMs: number,
): Promise<Deno.CommandStatus> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      resolve();
    }, graceMs);
  });
  try {
    await Promise.race([child.status, killed]);
    return await child.status;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Graceful shutdown: SIGINT or SIGTERM aborts the role's signal; the role stops accepting,
 * finishes or hands back work, flushes and closes. If it has not finished within the
 * bound (5 s), the process exits with code 1 and says so.
 *
 * @module
 */
import type { Logger } from "../events/mod.ts";

/** Default bound on a graceful shutdown. */
export const SHUTDOWN_BOUND_MS = 5_000;

/**
 * Aborts `controller` on SIGINT/SIGTERM. A second signal, or the bound passing, exits
 * the process at once. Returns a function that removes the listeners.
 */
export function installShutdownSignals(
  controller: AbortController,
  log: Logger,
  boundMs = SHUTDOWN_BOUND_MS - 300,
): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onSignal = (sig: Deno.Signal) => () => {
    if (controller.signal.aborted) {
      log.warn(`second ${sig}: exiting at once`);
      Deno.exit(1);
    }
    log.info(`${sig}: shutting down`);
    controller.abort(new Error(`stopped by ${sig}`));
    timer = setTimeout(() => {
      log.error(`Cannot finish shutdown within ${boundMs + 300} ms: exiting`);
      Deno.exit(1);
    }, boundMs);
    Deno.unrefTimer(timer as unknown as number);
  };
  const handlers = signals.map((sig) => [sig, onSignal(sig)] as const);
  for (const [sig, handler] of handlers) Deno.addSignalListener(sig, handler);
  return () => {
    clearTimeout(timer);
    for (const [sig, handler] of handlers) {
      try {
        Deno.removeSignalListener(sig, handler);
      } catch {
        // already removed
      }
    }
  };
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/**
 * A liveness check for a request/reply connection. A network partition drops packets
 * silently: TCP neither fails nor delivers, retransmitting with growing back-off for many
 * minutes, so a connection "looks up" while nothing crosses it, and after the heal it
 * resumes only at TCP's next retransmission. {@linkcode heartbeat} sends a cheap request
 * every `intervalMs`; when one stays unanswered for `silenceMs` it closes the connection,
 * so every pending request fails (`ConnectionClosedError`) and the owner reconnects at once.
 *
 * @module
 */
import type { RpcClient } from "./client.ts";
import { RemoteError } from "./errors.ts";
import { sleep } from "./backoff.ts";
import type { Message } from "./codec.ts";

/** Options of {@linkcode heartbeat}. */
export interface HeartbeatOptions {
  /** A request the peer answers at once (an error reply counts as an answer too). */
  probe: Message;
  /** Gap between probes. @default {1000} */
  intervalMs?: number;
  /** A probe unanswered this long closes the connection. @default {3000} */
  silenceMs?: number;
  /** Stops the heartbeat (the connection is left as it is). */
  signal?: AbortSignal;
}

/** Default gap between heartbeat probes. */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** Default silence after which a heartbeat closes the connection. */
export const HEARTBEAT_SILENCE_MS = 3_000;

/**
 * Probes `client` until it closes or `signal` aborts. Resolves `"silent"` when it closed the
 * connection because a probe went unanswered for `silenceMs`, `"closed"` when the connection
 * closed otherwise, `"stopped"` when `signal` aborted. Never rejects.
 */
export async function heartbeat(
  client: RpcClient,
  options: HeartbeatOptions,
): Promise<"silent" | "closed" | "stopped"> {
  const intervalMs = options.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const silenceMs = options.silenceMs ?? HEARTBEAT_SILENCE_MS;
  const signal = options.signal;
  for (;;) {
    await sleep(intervalMs, signal);
    if (signal?.aborted) return "stopped";
    if (client.conn.closed) return "closed";
    try {
      await client.request(options.probe, { timeoutMs: silenceMs, signal });
    } catch (err) {
      if (signal?.aborted) return "stopped";
      if (client.conn.closed) return "closed";
      if (err instanceof RemoteError) continue; // it answered
      await client.close();
      return "silent";
    }
  }
}

/**
 * The TCP {@linkcode MulticastTransport}: the shared wire `PeerLinks`, one persistent link
 * from this node to each other member (every frame to that member goes over it, so the
 * pair's traffic is FIFO), redialed with capped, jittered backoff while the node runs.
 *
 * @module
 */
import type { NodeEntry } from "../config/mod.ts";
import { type LinkSecurity, type Message, PeerLinks } from "../wire/mod.ts";
import type { MulticastTransport } from "./transport.ts";

/** Options of {@linkcode multicastLinks}. */
export interface MulticastLinksOptions {
  /** This node's name (sent in hello). */
  self: string;
  /** This node's role. */
  role: string;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame. */
  maxFrame: number;
  /** Called (synchronously, before any other frame) each time the link to `name` comes up. */
  onConnect?: (name: string) => void;
  /** Frames a peer sends back on its link (error frames for refused traffic). */
  onMessage?: (name: string, msg: Message) => void;
}

/** First redial delay after a lost link. */
const BACKOFF_MIN_MS = 50;
/** Longest redial delay. */
const BACKOFF_MAX_MS = 1_000;
/** Queued bytes per link before `pendingBytes` asks the sender to slow down. */
const HIGH_WATER_MARK = 8 * 1024 * 1024;
/** On close, how long the leave notice may take to go out. */
const FLUSH_ON_CLOSE_MS = 300;

/**
 * Links to `peers` for a multicast member; `start()` dials them. `send` drops the frame
 * (returns false) while a link is down; the member resends what matters in `linkUp`.
 */
export function multicastLinks(
  peers: NodeEntry[],
  options: MulticastLinksOptions,
): PeerLinks & MulticastTransport {
  return new PeerLinks(peers, {
    role: options.role,
    name: options.self,
    security: options.security,
    maxFrame: options.maxFrame,
    highWaterMark: HIGH_WATER_MARK,
    persistent: true,
    backoff: { initialMs: BACKOFF_MIN_MS, maxMs: BACKOFF_MAX_MS, jitter: 0.25 },
    flushOnCloseMs: FLUSH_ON_CLOSE_MS,
    onUp: options.onConnect,
    onMessage: options.onMessage,
  });
}

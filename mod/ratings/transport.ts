/**
 * What a replica manager needs from a network: a request/reply link to each peer replica,
 * named, which may be down. Implementations: {@linkcode TcpRatingsTransport} (the daemon:
 * the shared wire `PeerLinks`) and `MemoryRatingsNetwork` (tests: replicas in one process,
 * with cuts). Requests to a peer arrive at its `ReplicaNode.handlers()`.
 *
 * @module
 */
import { parseHostPort } from "../config/mod.ts";
import {
  type LinkRequestOptions,
  type LinkSecurity,
  type Message,
  PeerLinks,
} from "../wire/mod.ts";

/** Request/reply to peer replicas by name. */
export interface RatingsTransport {
  /**
   * Sends `msg` to peer `to` and resolves with its reply. Rejects with `RemoteError` when it
   * refused, `LinkDownError` when it could not be reached (nothing was sent), or a timeout.
   */
  request(to: string, msg: Message, options?: LinkRequestOptions): Promise<Message>;
  /** Whether the link to `to` is up. */
  connected(to: string): boolean;
  /** Learns a peer (a replica that joined) at `address` (`host:port`); known ones are kept. */
  addPeer(name: string, address: string): void;
  /** Closes every link. Safe to call twice. */
  close(): Promise<void>;
}

/** Options of {@linkcode TcpRatingsTransport}. */
export interface TcpRatingsTransportOptions {
  /** This replica's name (sent in hello). */
  self: string;
  /** Cluster secret, TLS, refusal reports. */
  security?: LinkSecurity;
  /** Largest frame. */
  maxFrame?: number;
}

/** Default request timeout between replicas. */
const PEER_TIMEOUT_MS = 3_000;

/**
 * The daemon's transport: one on-demand `PeerLink` per peer replica (dialed on the first
 * request, redialed with backoff), all in one wire `PeerLinks`.
 */
export class TcpRatingsTransport implements RatingsTransport {
  readonly #links: PeerLinks;

  constructor(options: TcpRatingsTransportOptions) {
    this.#links = new PeerLinks([], {
      role: "replica",
      name: options.self,
      security: options.security,
      maxFrame: options.maxFrame,
      timeoutMs: PEER_TIMEOUT_MS,
    });
  }

  request(to: string, msg: Message, options?: LinkRequestOptions): Promise<Message> {
    return this.#links.request(to, msg, options);
  }

  connected(to: string): boolean {
    return this.#links.connected(to);
  }

  addPeer(name: string, address: string): void {
    this.#links.add(name, parseHostPort(address, `replica ${name}`));
  }

  close(): Promise<void> {
    return this.#links.close();
  }
}

/**
 * An in-memory network for simulations and unit tests: seeded message loss, crashed
 * nodes, and delivery in passes (everything sent in one pass arrives in the next), so a
 * run is a deterministic function of its seed.
 *
 * @module
 */
import { FrameEncoder } from "../wire/mod.ts";
import type { GossipMessage } from "./messages.ts";
import type { RandomSource } from "../random/mod.ts";
import type { GossipTransport } from "./transport.ts";

/** Something that takes delivered messages. */
export interface MessageSink {
  /** Handles one message at virtual time `now`. */
  receive(msg: GossipMessage, now: number): void;
}

/** Options of {@linkcode VirtualNetwork}. */
export interface VirtualNetworkOptions {
  /** Decides losses. */
  random: RandomSource;
  /** Probability that any one message is lost. @default {0} */
  loss?: number;
  /** Count the bytes each message would take as a frame (costs an encode). @default {false} */
  measureBytes?: boolean;
}

/** Traffic counters of a {@linkcode VirtualNetwork}. */
export interface NetworkStats {
  /** Messages handed to the network. */
  sent: number;
  /** Messages lost on the way (loss rate, or a crashed receiver). */
  lost: number;
  /** Messages delivered. */
  delivered: number;
  /** Frame bytes of the messages sent (when measured). */
  bytes: number;
}

/** A virtual network; each node gets a transport with `transport()`. */
export class VirtualNetwork {
  readonly #random: RandomSource;
  readonly #sinks = new Map<string, MessageSink>();
  readonly #down = new Set<string>();
  readonly #cut = new Set<string>();
  readonly #encoder: FrameEncoder | undefined;
  #queue: [string, GossipMessage][] = [];
  #loss: number;
  readonly stats: NetworkStats = { sent: 0, lost: 0, delivered: 0, bytes: 0 };

  constructor(options: VirtualNetworkOptions) {
    this.#random = options.random;
    this.#loss = options.loss ?? 0;
    this.#encoder = options.measureBytes ? new FrameEncoder() : undefined;
  }

  /** The loss probability. */
  get loss(): number {
    return this.#loss;
  }

  set loss(p: number) {
    this.#loss = p;
  }

  /** Registers the node reached at `addr`. */
  attach(addr: string, sink: MessageSink): void {
    this.#sinks.set(addr, sink);
  }

  /** Crashes (`true`) or revives (`false`) the node at `addr`: a crashed node gets nothing. */
  setDown(addr: string, down: boolean): void {
    if (down) this.#down.add(addr);
    else this.#down.delete(addr);
  }

  /** Cuts (`true`) or restores (`false`) every link between the two groups, both ways. */
  partition(a: readonly string[], b: readonly string[], cut: boolean): void {
    for (const x of a) {
      for (const y of b) {
        for (const link of [`${x}\u0000${y}`, `${y}\u0000${x}`]) {
          if (cut) this.#cut.add(link);
          else this.#cut.delete(link);
        }
      }
    }
  }

  /** Whether `addr` is crashed. */
  isDown(addr: string): boolean {
    return this.#down.has(addr);
  }

  /** A transport for one node. Sends from a crashed node are dropped. */
  transport(from?: string): GossipTransport {
    return {
      send: (addr, msg) => {
        if (from !== undefined && this.#down.has(from)) return;
        this.stats.sent++;
        if (from !== undefined && this.#cut.size > 0 && this.#cut.has(`${from}\u0000${addr}`)) {
          this.stats.lost++;
          return;
        }
        if (this.#encoder) this.stats.bytes += this.#encoder.encode(msg as never).length;
        if (this.#loss > 0 && this.#random() < this.#loss) {
          this.stats.lost++;
          return;
        }
        this.#queue.push([addr, msg]);
      },
    };
  }

  /** Messages waiting for delivery. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Delivers what is queued; answers sent meanwhile are delivered in further passes, up
   * to `maxPasses`. Returns the number delivered.
   */
  deliver(now: number, maxPasses = 8): number {
    let delivered = 0;
    for (let pass = 0; pass < maxPasses && this.#queue.length > 0; pass++) {
      const batch = this.#queue;
      this.#queue = [];
      for (const [addr, msg] of batch) {
        const sink = this.#sinks.get(addr);
        if (!sink || this.#down.has(addr)) {
          this.stats.lost++;
          continue;
        }
        delivered++;
        this.stats.delivered++;
        sink.receive(msg, now);
      }
    }
    return delivered;
  }
}

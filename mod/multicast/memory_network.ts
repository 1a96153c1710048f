/**
 * An in-memory network of FIFO links for multicast tests and simulations: per ordered pair
 * a queue, delivered one frame at a time in a seeded random interleaving; links can be cut
 * (one way or both ways), in two flavours as TCP behaves under a partition: frames are
 * held and arrive after the heal (retransmission), or the connection resets and frames are
 * lost (the sender sees the link down and is told when it is back up).
 *
 * @module
 */
import type { Message } from "../wire/mod.ts";
import type { RandomSource } from "../random/mod.ts";
import type { MulticastTransport } from "./transport.ts";

/** Something that takes delivered frames (a `MulticastMember`). */
export interface FrameSink {
  /** One frame from `from` at virtual time `now`; may throw (a refused frame). */
  receive(from: string, msg: Message, now: number): void;
  /** The link to `name` came (back) up. */
  linkUp(name: string): void;
}

/** Options of {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Decides the interleaving and losses. */
  random: RandomSource;
  /** Sees every frame a member hands to the network (checks of what the code sends). @default {none} */
  onSend?: (from: string, to: string, frame: Message) => void;
}

type CutMode = "hold" | "reset";

/** The virtual network; each node gets a transport with `transport(name)`. */
export class MemoryNetwork {
  readonly #random: RandomSource;
  readonly #onSend: MemoryNetworkOptions["onSend"];
  readonly #sinks = new Map<string, FrameSink>();
  readonly #queues = new Map<string, Message[]>();
  readonly #cut = new Map<string, CutMode>();
  readonly #stopped = new Set<string>();
  /** Frames refused by their receiver (the errors the sender would get back). */
  readonly refused: { from: string; to: string; t: string; error: string }[] = [];
  /** Frames delivered. */
  delivered = 0;

  constructor(options: MemoryNetworkOptions) {
    this.#random = options.random;
    this.#onSend = options.onSend;
  }

  /** Registers the node `name`. */
  attach(name: string, sink: FrameSink): void {
    this.#sinks.set(name, sink);
  }

  /**
   * Crashes (`true`) the node: it neither sends nor receives, and every frame to or from it
   * is lost; (`false`) it is back (attach its new instance first).
   */
  setDown(name: string, down: boolean): void {
    if (down) {
      this.#stopped.add(name);
      for (const key of this.#queues.keys()) {
        const [a, b] = key.split("\u0000");
        if (a === name || b === name) this.#queues.set(key, []);
      }
    } else {
      this.#stopped.delete(name);
      for (const other of this.#sinks.keys()) {
        if (other === name) continue;
        this.#sinks.get(other)?.linkUp(name);
        this.#sinks.get(name)?.linkUp(other);
      }
    }
  }

  /**
   * Cuts (or heals, `mode` undefined) the link `from` → `to`. `hold`: frames wait and arrive
   * after the heal; `reset`: frames sent while cut are lost and the link reads as down.
   */
  cut(from: string, to: string, mode: CutMode | undefined): void {
    const key = `${from}\u0000${to}`;
    const was = this.#cut.get(key);
    if (mode === undefined) {
      this.#cut.delete(key);
      if (was === "reset" && !this.#stopped.has(from)) this.#sinks.get(from)?.linkUp(to);
      return;
    }
    // A reset link stays down until the heal (it cannot reconnect through a partition): a
    // FIFO link never loses frames in the middle of a connection.
    if (was === "reset") return;
    this.#cut.set(key, mode);
    if (mode === "reset") this.#queues.set(key, []);
  }

  /** Cuts (or heals) every link between the two groups, both ways. */
  partition(a: readonly string[], b: readonly string[], mode: CutMode | undefined): void {
    for (const x of a) {
      for (const y of b) {
        this.cut(x, y, mode);
        this.cut(y, x, mode);
      }
    }
  }

  /** Heals every cut link. */
  healAll(): void {
    for (const key of [...this.#cut.keys()]) {
      const [a, b] = key.split("\u0000");
      this.cut(a, b, undefined);
    }
  }

  /** Whether any link is cut. */
  get partitioned(): boolean {
    return this.#cut.size > 0;
  }

  /** A transport for node `from`. */
  transport(from: string): MulticastTransport {
    return {
      send: (to, frame) => {
        this.#onSend?.(from, to, frame);
        if (this.#stopped.has(from) || this.#stopped.has(to)) return false;
        const key = `${from}\u0000${to}`;
        if (this.#cut.get(key) === "reset") return false;
        let q = this.#queues.get(key);
        if (!q) this.#queues.set(key, q = []);
        q.push(frame);
        return true;
      },
      connected: (to) =>
        !this.#stopped.has(from) && !this.#stopped.has(to) &&
        this.#cut.get(`${from}\u0000${to}`) !== "reset",
      pendingBytes: () => 0,
    };
  }

  /** Frames waiting (held ones included). */
  get pending(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  /**
   * Delivers up to `count` frames, each the head of a random deliverable queue (receiver up
   * and not in `paused`, link not cut). Returns how many were delivered.
   */
  deliver(now: number, count: number, paused: ReadonlySet<string> = new Set()): number {
    let done = 0;
    for (; done < count; done++) {
      const ready: [string, Message[]][] = [];
      for (const entry of this.#queues) {
        if (entry[1].length === 0 || this.#cut.has(entry[0])) continue;
        const to = entry[0].split("\u0000")[1];
        if (!paused.has(to) && !this.#stopped.has(to)) ready.push(entry);
      }
      if (ready.length === 0) break;
      const [key, q] = ready[Math.floor(this.#random() * ready.length)];
      const [from, to] = key.split("\u0000");
      const frame = q.shift()!;
      this.delivered++;
      try {
        this.#sinks.get(to)?.receive(from, frame, now);
      } catch (err) {
        this.refused.push({ from, to, t: String(frame.t), error: String(err) });
      }
    }
    return done;
  }
}

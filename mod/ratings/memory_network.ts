/**
 * An in-memory network of replicas for tests: each {@linkcode ReplicaNode} attaches its
 * handlers under its name and gets a {@linkcode RatingsTransport}; requests are copied (as
 * a frame would be), answered asynchronously by the peer's own handlers, and fail like a
 * link that is down while either end is isolated.
 *
 * @module
 */
import {
  ConnectionClosedError,
  ErrorCode,
  errorFrame,
  LinkDownError,
  type LinkRequestOptions,
  type Message,
  ProtocolError,
  RemoteError,
} from "../wire/mod.ts";
import type { ReplicaHandler, Responder } from "./replica_node.ts";
import type { RatingsTransport } from "./transport.ts";

/** Default request timeout, as the TCP transport's. */
const TIMEOUT_MS = 3_000;

/** Replicas in one process. `transport(name)` for a replica, `request` for a client. */
export class MemoryRatingsNetwork {
  readonly #nodes = new Map<string, Readonly<Record<string, ReplicaHandler>>>();
  readonly #isolated = new Set<string>();
  #nextRid = 1;
  /** Requests delivered (counters for tests). */
  delivered = 0;

  /** Makes `name`'s handlers reachable. */
  attach(name: string, handlers: Readonly<Record<string, ReplicaHandler>>): void {
    this.#nodes.set(name, handlers);
  }

  /** `name` is unreachable (as if crashed) until attached again. */
  detach(name: string): void {
    this.#nodes.delete(name);
  }

  /** Cuts `name` off: requests from it and to it fail as on a link that is down. */
  isolate(name: string): void {
    this.#isolated.add(name);
  }

  /** Ends `name`'s isolation. */
  rejoin(name: string): void {
    this.#isolated.delete(name);
  }

  /** Whether a request from `from` would reach `to`. */
  reachable(from: string, to: string): boolean {
    return this.#nodes.has(to) && !this.#isolated.has(from) && !this.#isolated.has(to);
  }

  /** The transport of replica `self`. */
  transport(self: string): RatingsTransport {
    return new MemoryTransport(this, self);
  }

  /** A client's request to replica `to` (a client is never isolated). */
  ask(to: string, msg: Message, options: { timeoutMs?: number } = {}): Promise<Message> {
    return this.request(CLIENT, to, msg, options);
  }

  /**
   * Sends `msg` from `from` to `to`'s handlers and resolves with the reply (a copy); an
   * error rejects with `RemoteError`, as over TCP.
   */
  request(
    from: string,
    to: string,
    msg: Message,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Message> {
    const reachable = from === CLIENT ? this.#nodes.has(to) : this.reachable(from, to);
    if (!reachable) return Promise.reject(new LinkDownError(to));
    const frame = structuredClone({ ...msg, rid: this.#nextRid++ });
    const handler = this.#nodes.get(to)![String(frame.t)];
    return new Promise<Message>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        f();
      };
      const onAbort = () => settle(() => reject(options.signal!.reason));
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(
              new ProtocolError(ErrorCode.Timeout, `Cannot get a reply to ${msg.t}: timed out`),
            )
          ),
        options.timeoutMs ?? TIMEOUT_MS,
      );
      options.signal?.addEventListener("abort", onAbort, { once: true });
      // a reply crossing a link cut in the meantime is lost (the request then times out)
      const answer = (reply: Message) => {
        if (from === CLIENT || (!this.#isolated.has(from) && !this.#isolated.has(to))) {
          settle(() => resolve(structuredClone({ ...reply, rid: frame.rid })));
        }
      };
      const responder: Responder = {
        reply: (_request, reply) => (answer(reply), true),
        replyError: (_request, err) => (answer(errorFrame(err)), true),
      };
      queueMicrotask(() => {
        this.delivered++;
        if (!handler) {
          answer(errorFrame(
            new ProtocolError(ErrorCode.UnknownType, `Cannot handle ${String(frame.t)}`),
          ));
          return;
        }
        try {
          const reply = handler(frame, responder);
          if (reply !== undefined) answer(reply);
        } catch (err) {
          answer(errorFrame(err));
        }
      });
    }).then((reply) => {
      if (reply.t === "error") throw new RemoteError(reply);
      return reply;
    });
  }
}

/** The sender name of a client's requests ({@linkcode MemoryRatingsNetwork.ask}). */
const CLIENT = "(client)";

class MemoryTransport implements RatingsTransport {
  readonly #network: MemoryRatingsNetwork;
  readonly #self: string;
  readonly #stop = new AbortController();

  constructor(network: MemoryRatingsNetwork, self: string) {
    this.#network = network;
    this.#self = self;
  }

  request(to: string, msg: Message, options: LinkRequestOptions = {}): Promise<Message> {
    if (this.#stop.signal.aborted) {
      return Promise.reject(new LinkDownError(to, "link closed"));
    }
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#stop.signal])
      : this.#stop.signal;
    return this.#network.request(this.#self, to, msg, {
      timeoutMs: options.timeoutMs ?? TIMEOUT_MS,
      signal,
    });
  }

  connected(to: string): boolean {
    return this.#network.reachable(this.#self, to);
  }

  addPeer(): void {
    // every attached replica is reachable by name
  }

  close(): Promise<void> {
    this.#stop.abort(new ConnectionClosedError("Cannot get a reply: transport closed"));
    return Promise.resolve();
  }
}

/**
 * The queue engine's topology: which exchanges and queues exist, their bindings, the
 * checks of declare / delete / bind (names, redeclare with other settings, reserved
 * `amq.` names, exclusive queues), where a publish routes, and the writes of durable
 * declarations to the store. Message flow is the engine's; the topology only tells it,
 * through {@linkcode TopologyHooks}, when a queue with `x-expires` appeared and when a
 * deleted queue's messages leave.
 *
 * @module
 */
import { ProtocolError } from "../wire/mod.ts";
import {
  addBinding,
  bindingCount,
  bindingId,
  bindingKey,
  builtinExchanges,
  type Exchange,
  EXCHANGE_TYPES,
  removeBinding,
  routeNames,
  splitBindingId,
} from "./exchange.ts";
import { checkName } from "./names.ts";
import { QueueErrorCode } from "./protocol.ts";
import {
  checkSameSettings,
  type EngineConnection,
  type Message,
  queueInfo,
  queueSettings,
  QueueState,
  recoveredSettings,
  storedQueueArgs,
} from "./queue_state.ts";
import type { QueueStore } from "./store.ts";
import type { ExchangeOptions, ExchangeType, QueueInfo, QueueOptions } from "./types.ts";

/** What the topology tells the engine. */
export interface TopologyHooks {
  /** Events (`x.declared`, `q.declared`, `q.deleted`). */
  onEvent(ev: string, fields: Record<string, unknown>): void;
  /** Wall clock, ms. */
  now(): number;
  /** A queue that expires when unused was declared: re-arm the expiry timer. */
  expiryChanged(): void;
  /** Messages left a deleted or purged queue for good (their store rows are gone). */
  dropped(msgs: Message[]): void;
}

/** What {@linkcode Topology.exchangeInfo} tells of an exchange. */
export interface ExchangeInfo {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  bindings: number;
}

/**
 * Exchanges, queues and bindings. Every verb is synchronous and throws `ProtocolError`
 * (codes in {@linkcode QueueErrorCode}); durable declarations are written to the store
 * at once (autocommit), before the verb returns.
 */
export class Topology {
  readonly #store?: QueueStore;
  readonly #hooks: TopologyHooks;
  readonly #exchanges = new Map<string, Exchange>();
  readonly #queues = new Map<string, QueueState>();

  constructor(store: QueueStore | undefined, hooks: TopologyHooks) {
    this.#store = store;
    this.#hooks = hooks;
    for (const ex of builtinExchanges()) this.#exchanges.set(ex.name, ex);
    if (store) this.#recover(store);
  }

  #recover(store: QueueStore): void {
    for (const e of store.exchanges()) {
      if (this.#exchanges.has(e.name)) continue;
      this.#exchanges.set(e.name, {
        name: e.name,
        type: e.type as ExchangeType,
        durable: true,
        autoDelete: e.autoDelete,
        internal: e.internal ?? false,
        bindings: new Map(),
      });
    }
    const now = this.#hooks.now();
    for (const stored of store.queues()) {
      const q = new QueueState(stored.name, recoveredSettings(stored));
      q.lastUsed = now;
      this.#queues.set(stored.name, q);
    }
    for (const b of store.bindings()) {
      const ex = this.#exchanges.get(b.exchange);
      const q = this.#queues.get(b.queue);
      if (ex && q) addBinding(ex, q, b.key);
    }
  }

  /** The queue named `name`, or undefined (no exclusivity check). */
  find(name: string): QueueState | undefined {
    return this.#queues.get(name);
  }

  /** Every queue, in declaration order. */
  all(): IterableIterator<QueueState> {
    return this.#queues.values();
  }

  /** The exchange named `name` (404 when absent). */
  exchange(name: string): Exchange {
    const ex = this.#exchanges.get(name);
    if (!ex) throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find exchange "${name}"`);
    return ex;
  }

  /** The queue named `name` (404 when absent, 405 when exclusive to another connection). */
  queue(name: string, conn: EngineConnection | undefined): QueueState {
    const q = this.#queues.get(name);
    if (!q) throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find queue "${name}"`);
    checkExclusive(q, conn);
    return q;
  }

  /** Declares (or checks) an exchange; returns whether it was created. */
  declareExchange(name: string, type: string, options: ExchangeOptions = {}): boolean {
    checkName(name, "exchange");
    const existing = this.#exchanges.get(name);
    if (options.passive) {
      if (!existing) {
        throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find exchange "${name}"`);
      }
      return false;
    }
    if (name === "") {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot declare the default exchange`,
      );
    }
    if (!EXCHANGE_TYPES.has(type)) {
      throw new ProtocolError(
        QueueErrorCode.CommandInvalid,
        `Cannot declare exchange "${name}": unknown type "${type}" (direct, fanout, topic, headers)`,
      );
    }
    const durable = options.durable ?? true;
    const autoDelete = options.autoDelete ?? false;
    if (existing) {
      if (existing.type !== type || existing.durable !== durable) {
        throw new ProtocolError(
          QueueErrorCode.PreconditionFailed,
          `Cannot redeclare exchange "${name}" as ${type}${
            durable ? " durable" : ""
          }: it exists as ${existing.type}${existing.durable ? " durable" : ""}`,
        );
      }
      return false;
    }
    if (name.startsWith("amq.")) {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot declare exchange "${name}": the amq. prefix is reserved`,
      );
    }
    const internal = options.internal ?? false;
    this.#exchanges.set(name, {
      name,
      type: type as ExchangeType,
      durable,
      autoDelete,
      internal,
      bindings: new Map(),
    });
    if (durable) this.#store?.putExchange({ name, type, autoDelete, internal });
    this.#hooks.onEvent("x.declared", { exchange: name, type, durable });
    return true;
  }

  /** Deletes an exchange and its bindings. */
  deleteExchange(name: string): void {
    const ex = this.exchange(name);
    if (name === "" || name.startsWith("amq.")) {
      throw new ProtocolError(QueueErrorCode.AccessRefused, `Cannot delete exchange "${name}"`);
    }
    for (const [key, queues] of ex.bindings) {
      for (const qn of queues) this.#queues.get(qn)?.bindings.delete(bindingId(name, key));
    }
    this.#exchanges.delete(name);
    if (ex.durable) this.#store?.deleteExchange(name);
  }

  /** Throws what a publish to `exchange` would: 404 when it does not exist, 403 when internal. */
  assertPublishable(exchange: string): void {
    if (exchange === "") return;
    const ex = this.exchange(exchange);
    if (ex.internal) {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot publish to internal exchange "${exchange}"`,
      );
    }
  }

  /** Declares (or checks) a queue; `""` gets a generated name. */
  declareQueue(
    conn: EngineConnection | undefined,
    name: string,
    options: QueueOptions = {},
  ): { queue: QueueState; created: boolean } {
    checkName(name, "queue");
    const existing = name === "" ? undefined : this.#queues.get(name);
    if (options.passive) {
      if (!existing) {
        throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find queue "${name}"`);
      }
      checkExclusive(existing, conn);
      return { queue: existing, created: false };
    }
    const o = queueSettings(name, options);
    if (o.deadLetterExchange !== undefined) checkName(o.deadLetterExchange, "exchange");
    if (existing) {
      checkExclusive(existing, conn);
      existing.lastUsed = this.#hooks.now();
      checkSameSettings(existing, o);
      return { queue: existing, created: false };
    }
    if (name.startsWith("amq.")) {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot declare queue "${name}": the amq. prefix is reserved`,
      );
    }
    if (o.exclusive && !conn) {
      throw new ProtocolError(
        QueueErrorCode.PreconditionFailed,
        `Cannot declare exclusive queue "${name}" without a connection`,
      );
    }
    const qname = name === "" ? `amq.gen-${crypto.randomUUID()}` : name;
    const q = new QueueState(qname, o);
    if (o.exclusive) q.owner = conn!.owner;
    q.lastUsed = this.#hooks.now();
    this.#queues.set(qname, q);
    if (o.durable && !o.exclusive) {
      this.#store?.putQueue({
        name: qname,
        autoDelete: o.autoDelete,
        maxLength: o.maxLength,
        args: JSON.stringify(storedQueueArgs(o)),
      });
    }
    if (o.expires) this.#hooks.expiryChanged();
    // every queue is bound to the default exchange by its name (implicitly)
    this.#hooks.onEvent("q.declared", {
      queue: qname,
      durable: o.durable,
      exclusive: o.exclusive,
      autoDelete: o.autoDelete,
      maxLength: o.maxLength,
      ...(o.messageTtl ? { messageTtl: o.messageTtl } : {}),
      ...(o.expires ? { expires: o.expires } : {}),
      ...(o.deadLetterExchange !== undefined ? { deadLetterExchange: o.deadLetterExchange } : {}),
    });
    return { queue: q, created: true };
  }

  /**
   * Deletes `q`: its consumers are cancelled (their sinks told), its bindings removed
   * (auto-delete exchanges left without bindings go too), its messages dropped.
   */
  removeQueue(q: QueueState): void {
    if (q.deleted) return;
    q.deleted = true;
    this.#queues.delete(q.name);
    for (const c of [...q.consumers]) {
      c.conn.consumers.delete(c.tag);
      c.conn.sink.cancelled(c.tag);
    }
    q.consumers = [];
    for (const b of q.bindings) {
      const [exName, key] = splitBindingId(b);
      const ex = this.#exchanges.get(exName);
      if (!ex) continue;
      removeBinding(ex, q, key);
      if (ex.autoDelete && ex.bindings.size === 0) this.#dropExchange(ex);
    }
    const msgs = q.clear();
    if (q.durable) this.#store?.deleteQueue(q.name);
    this.#hooks.dropped(msgs);
    this.#hooks.onEvent("q.deleted", { queue: q.name });
  }

  /** Drops every ready message of a queue; returns how many. */
  purgeQueue(conn: EngineConnection | undefined, name: string): number {
    const q = this.queue(name, conn);
    const msgs = q.clear();
    if (q.durable) this.#store?.purgeQueue(q.name);
    this.#hooks.dropped(msgs);
    return msgs.length;
  }

  /** Deletes the exclusive queues of `owner` (its connections are gone). */
  releaseOwner(owner: object): void {
    for (const q of [...this.#queues.values()]) {
      if (q.exclusive && q.owner === owner) this.removeQueue(q);
    }
  }

  /** Binds queue to exchange with `key`. */
  bindQueue(
    conn: EngineConnection | undefined,
    queue: string,
    exchange: string,
    key: string,
  ): void {
    const q = this.queue(queue, conn);
    if (exchange === "") {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot bind to the default exchange: it routes by queue name`,
      );
    }
    const ex = this.exchange(exchange);
    if (!addBinding(ex, q, key)) return;
    if (ex.durable && q.durable && !q.exclusive) {
      this.#store?.putBinding({ queue: q.name, exchange, key: bindingKey(ex, key) });
    }
  }

  /** Removes a binding (no error when absent). */
  unbindQueue(
    conn: EngineConnection | undefined,
    queue: string,
    exchange: string,
    key: string,
  ): void {
    const q = this.queue(queue, conn);
    const ex = this.exchange(exchange);
    const k = bindingKey(ex, key);
    removeBinding(ex, q, k);
    this.#store?.deleteBinding({ queue: q.name, exchange, key: k });
    if (ex.autoDelete && ex.bindings.size === 0) this.#dropExchange(ex);
  }

  /**
   * The queues a publish reaches (404 when the exchange does not exist; 403 when it is
   * internal and the publisher is a client, `conn` given).
   */
  route(
    conn: EngineConnection | undefined,
    exchange: string,
    key: string,
    props: Record<string, unknown>,
  ): QueueState[] {
    if (exchange === "") {
      const q = this.#queues.get(key);
      return q ? [q] : [];
    }
    const ex = this.exchange(exchange);
    if (ex.internal && conn) {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot publish to internal exchange "${exchange}"`,
      );
    }
    const out: QueueState[] = [];
    for (const n of routeNames(ex, key, props)) {
      const q = this.#queues.get(n);
      if (q) out.push(q);
    }
    return out;
  }

  /** One exchange (undefined when absent; `""` is the default exchange). */
  exchangeInfo(name: string): ExchangeInfo | undefined {
    if (name === "") {
      return {
        name,
        type: "direct",
        durable: true,
        autoDelete: false,
        internal: false,
        bindings: 0,
      };
    }
    const e = this.#exchanges.get(name);
    if (!e) return undefined;
    return {
      name,
      type: e.type,
      durable: e.durable,
      autoDelete: e.autoDelete,
      internal: e.internal,
      bindings: bindingCount(e),
    };
  }

  /** Every queue with its depth, by name. */
  queues(): QueueInfo[] {
    return [...this.#queues.values()].map(queueInfo).sort((a, b) => a.name < b.name ? -1 : 1);
  }

  /** Every exchange. */
  exchanges(): Array<{ name: string; type: ExchangeType; durable: boolean; bindings: number }> {
    return [...this.#exchanges.values()].map((e) => ({
      name: e.name,
      type: e.type,
      durable: e.durable,
      bindings: bindingCount(e),
    }));
  }

  #dropExchange(ex: Exchange): void {
    this.#exchanges.delete(ex.name);
    if (ex.durable) this.#store?.deleteExchange(ex.name);
  }
}

/** Throws 405 when `q` is exclusive to another connection's owner. */
export function checkExclusive(q: QueueState, conn: EngineConnection | undefined): void {
  if (q.exclusive && conn !== undefined && q.owner !== conn.owner) {
    throw new ProtocolError(
      QueueErrorCode.ResourceLocked,
      `Cannot use queue "${q.name}": exclusive to another connection`,
    );
  }
}

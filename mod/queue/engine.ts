/**
 * The queue engine: AMQP 0-9-1's model in one process. Exchanges (`direct`, `fanout`,
 * `topic`, and the default exchange `""`), queues (durable, exclusive, auto-delete, max
 * length), bindings, publish with `mandatory`, consumers with prefetch and manual or
 * automatic acks, `get`, publisher confirms, and requeue (marked redelivered) of what a
 * closing connection held unacknowledged. Any role can embed it; `--role queue` serves it.
 *
 * @module
 */
import { Tick } from "../process/mod.ts";
import { ProtocolError } from "../wire/mod.ts";
import { MAX_NAME_LENGTH, QueueErrorCode } from "./protocol.ts";
import { QueueStore, type QueueStoreOptions } from "./store.ts";
import { topicMatches } from "./topic.ts";

/** Exchange types. */
export type ExchangeType = "direct" | "fanout" | "topic" | "headers";

const EXCHANGE_TYPES: ReadonlySet<string> = new Set(["direct", "fanout", "topic", "headers"]);

/** Options of {@linkcode QueueEngine.declareExchange}. */
export interface ExchangeOptions {
  /** Survives restarts. @default {true} */
  durable?: boolean;
  /** Deleted when its last binding goes. @default {false} */
  autoDelete?: boolean;
  /** Only check that it exists. @default {false} */
  passive?: boolean;
  /** Clients may not publish to it, only bind it (AMQP `internal`; not stored). @default {false} */
  internal?: boolean;
}

/** Options of {@linkcode QueueEngine.declareQueue}. */
export interface QueueOptions {
  /** Survives restarts, with its persistent messages. @default {true} */
  durable?: boolean;
  /** Only this connection may use it; deleted when the connection closes. @default {false} */
  exclusive?: boolean;
  /** Deleted when its last consumer is cancelled. @default {false} */
  autoDelete?: boolean;
  /** Most ready messages; the oldest is dropped (or dead-lettered) beyond it (0 = unbounded). @default {0} */
  maxLength?: number;
  /** Only check that it exists. @default {false} */
  passive?: boolean;
  /** A ready message expires this many ms after it entered (0 = never; AMQP `x-message-ttl`). @default {0} */
  messageTtl?: number;
  /** The queue is deleted after this many ms without consumers or declares or gets (0 = never; `x-expires`). @default {0} */
  expires?: number;
  /** Rejected, expired and dropped messages are republished here (`x-dead-letter-exchange`; `""` is the default exchange). */
  deadLetterExchange?: string;
  /** …with this routing key instead of their own (`x-dead-letter-routing-key`). */
  deadLetterRoutingKey?: string;
}

/** The settings a queue is declared with (compared on redeclare). */
interface QueueSettings {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  maxLength: number;
  messageTtl: number;
  expires: number;
  deadLetterExchange: string | undefined;
  deadLetterRoutingKey: string | undefined;
}

/** Options of {@linkcode QueueEngine.publish}. */
export interface PublishOptions {
  /** Return the message (`returned`) when no queue takes it. @default {false} */
  mandatory?: boolean;
  /** Store it when a durable queue takes it (delivery mode 2). @default {false} */
  persistent?: boolean;
  /** Application properties (headers, content type, …), passed through untouched. */
  props?: Record<string, unknown>;
  /** The message expires this many ms after it entered a queue (AMQP `expiration`). */
  expiration?: number;
}

/** Options of {@linkcode QueueEngine.consume}. */
export interface ConsumeOptions {
  /** Settle on delivery, no ack needed. @default {false} */
  noAck?: boolean;
  /** Most unacknowledged deliveries to this consumer (0 = unbounded); defaults to the connection's `qos`. */
  prefetch?: number;
  /** Consumer tag; generated when absent. */
  tag?: string;
  /** The only consumer of its queue (AMQP `exclusive` consume). @default {false} */
  exclusive?: boolean;
}

/** A message handed to a consumer or a `get`. */
export interface Delivery {
  /** The consumer's tag (`""` for `get`). */
  consumerTag: string;
  /** Connection-unique delivery tag, for ack/nack (0 when auto-acked). */
  deliveryTag: number;
  /** The queue it came from. */
  queue: string;
  /** Exchange it was published to. */
  exchange: string;
  /** Its routing key. */
  routingKey: string;
  /** The body. */
  body: Uint8Array;
  /** Whether it was delivered before and went back to the queue. */
  redelivered: boolean;
  /** Whether it was published persistent. */
  persistent: boolean;
  /** Application properties. */
  props: Record<string, unknown>;
}

/** An unroutable mandatory message coming back to its publisher. */
export interface Returned {
  exchange: string;
  routingKey: string;
  body: Uint8Array;
  props: Record<string, unknown>;
  reason: string;
}

/** Where the engine sends a connection's asynchronous output (a socket, or in-process code). */
export interface ConnectionSink {
  /** A delivery to one of its consumers; return false when the sink is full (backpressure). */
  deliver(d: Delivery): boolean;
  /** A mandatory message nobody took. */
  returned(r: Returned): void;
  /** Every publish up to `seq` (confirm mode) is confirmed. */
  confirmed(seq: number): void;
  /** Publish `seq` failed. */
  confirmFailed(seq: number, err: ProtocolError): void;
  /** A consumer was cancelled by the server (its queue was deleted). */
  cancelled(tag: string): void;
  /** Whether deliveries can be written at all (false once the transport is gone). */
  open?(): boolean;
}

interface Message {
  seq: number;
  id: number; // store id, 0 when not stored
  exchange: string;
  key: string;
  body: Uint8Array;
  props: Record<string, unknown>;
  persistent: boolean;
  redelivered: boolean;
  /** Wall-clock ms when it expires (0 = never). */
  expiresAt: number;
}

interface Exchange {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  /** key (direct/topic) → queue names; fanout uses key "" for all. */
  bindings: Map<string, Set<string>>;
  /** topic: routing key → the queue names its patterns match (cleared when bindings change). */
  topicCache?: Map<string, string[]>;
}

interface Consumer {
  tag: string;
  queue: QueueState;
  conn: EngineConnection;
  noAck: boolean;
  prefetch: number;
  unacked: number;
}

interface Unacked {
  tag: number;
  msg: Message;
  queue: QueueState;
  consumer?: Consumer;
}

class QueueState {
  readonly name: string;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly maxLength: number;
  readonly messageTtl: number;
  readonly expires: number;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  /** Whether messages can expire here (a TTL, or a message with its own expiration came). */
  expiring: boolean;
  /** Last declare, get or consumer change (for `expires`). */
  lastUsed = 0;
  owner?: object;
  exclusiveConsumer = false;
  dispatching = false;
  ready: Message[] = [];
  head = 0;
  unacked = 0;
  consumers: Consumer[] = [];
  rr = 0;
  hadConsumer = false;
  deleted = false;
  /** (exchange, key) pairs this queue is bound with. */
  bindings = new Set<string>();

  constructor(name: string, o: QueueSettings) {
    this.name = name;
    this.durable = o.durable;
    this.exclusive = o.exclusive;
    this.autoDelete = o.autoDelete;
    this.maxLength = o.maxLength;
    this.messageTtl = o.messageTtl;
    this.expires = o.expires;
    this.deadLetterExchange = o.deadLetterExchange;
    this.deadLetterRoutingKey = o.deadLetterRoutingKey;
    this.expiring = o.messageTtl > 0;
  }

  get depth(): number {
    return this.ready.length - this.head;
  }

  push(m: Message): void {
    this.ready.push(m);
  }

  shift(): Message | undefined {
    if (this.head >= this.ready.length) return undefined;
    const m = this.ready[this.head];
    this.ready[this.head++] = undefined as unknown as Message;
    if (this.head > 1024 && this.head * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.head);
      this.head = 0;
    }
    return m;
  }

  /** Puts messages back in front, in their original order. */
  requeueFront(msgs: Message[]): void {
    const rest = this.ready.slice(this.head);
    this.ready = [...msgs, ...rest].sort((a, b) => a.seq - b.seq);
    this.head = 0;
  }

  clear(): Message[] {
    const out = this.ready.slice(this.head);
    this.ready = [];
    this.head = 0;
    return out;
  }
}

/** One client of the engine (a TCP connection, or in-process code): its consumers, unacked deliveries, prefetch and confirm state. */
export class EngineConnection {
  /** Engine-unique id. */
  readonly id: number;
  /** A name for logs and events. */
  readonly label: string;
  /** @internal */
  readonly sink: ConnectionSink;
  /** @internal */
  prefetch = 0;
  /** @internal */
  nextDeliveryTag = 1;
  /** @internal */
  readonly unacked = new Map<number, Unacked>();
  /** @internal */
  readonly consumers = new Map<string, Consumer>();
  /** @internal */
  confirmMode = false;
  /** @internal */
  publishSeq = 0;
  /** @internal */
  blocked = false;
  /** @internal */
  closed = false;
  /** @internal Most unacknowledged deliveries over all consumers of this connection (0 = unbounded). */
  sharedPrefetch = 0;
  /**
   * What owns this connection's exclusive queues: the connection itself, or an object
   * several connections share (the AMQP connection of several channels), released with
   * {@linkcode QueueEngine.releaseOwner}.
   */
  readonly owner: object;

  constructor(id: number, label: string, sink: ConnectionSink, owner?: object) {
    this.id = id;
    this.label = label;
    this.sink = sink;
    this.owner = owner ?? this;
  }
}

/** Options of {@linkcode QueueEngine}. */
export interface QueueEngineOptions extends QueueStoreOptions {
  /** SQLite file for durable state; in memory only when absent. */
  path?: string;
  /** Called for engine events (`q.declared`, `msg.redelivered`, `store.error`). */
  onEvent?: (ev: string, fields: Record<string, unknown>) => void;
  /** Wall clock for message TTLs and queue expiry, ms. @default {Date.now} */
  now?: () => number;
}

/** Counters for status. */
export interface EngineStats {
  published: number;
  delivered: number;
  acked: number;
  redelivered: number;
  returned: number;
  commits: number;
  expired: number;
  deadLettered: number;
}

/** Depth and consumers of one queue. */
export interface QueueInfo {
  name: string;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  maxLength: number;
  messages: number;
  unacked: number;
  consumers: number;
}

const NAME_RE = /^[\w.:\-/@]*$/;

function checkName(name: string, what: string): void {
  if (name.length > MAX_NAME_LENGTH) {
    throw new ProtocolError(
      QueueErrorCode.AccessRefused,
      `Cannot use ${what} name: longer than ${MAX_NAME_LENGTH}`,
    );
  }
  if (!NAME_RE.test(name)) {
    throw new ProtocolError(
      QueueErrorCode.AccessRefused,
      `Cannot use ${what} "${name.slice(0, 40)}": only letters, digits and - _ . : / @`,
    );
  }
}

/**
 * The engine. All operations are synchronous and throw `ProtocolError` (codes in
 * {@linkcode QueueErrorCode}); deliveries, returns and confirms go to each connection's
 * {@linkcode ConnectionSink}. Persistent messages of durable queues are written in one
 * SQLite transaction per event-loop tick, and confirms are sent after it commits.
 * Messages are delivered round-robin among a queue's consumers with room under their
 * prefetch; a consumer's connection that reports backpressure is skipped until
 * {@linkcode resume}.
 */
export class QueueEngine {
  readonly #store?: QueueStore;
  readonly #onEvent: (ev: string, fields: Record<string, unknown>) => void;
  readonly #now: () => number;
  #expiryTimer?: ReturnType<typeof setTimeout>;
  #expiryAt = Infinity;
  #deadLettering = 0;
  readonly #exchanges = new Map<string, Exchange>();
  readonly #queues = new Map<string, QueueState>();
  readonly #connections = new Set<EngineConnection>();
  readonly #confirmWaiting = new Set<EngineConnection>();
  #commitWaiters: Array<() => void> = [];
  /** Commits and delivers what one turn queued, once per turn. */
  readonly #turn = new Tick(() => this.#tick());
  #nextConn = 1;
  #nextSeq = 1;
  #nextConsumer = 1;
  #closed = false;
  /** Counters. */
  readonly stats: EngineStats = {
    published: 0,
    delivered: 0,
    acked: 0,
    redelivered: 0,
    returned: 0,
    commits: 0,
    expired: 0,
    deadLettered: 0,
  };

  constructor(options: QueueEngineOptions = {}) {
    this.#onEvent = options.onEvent ?? (() => {});
    this.#now = options.now ?? Date.now;
    for (
      const [name, type] of [
        ["amq.direct", "direct"],
        ["amq.fanout", "fanout"],
        ["amq.topic", "topic"],
        ["amq.headers", "headers"],
        ["amq.match", "headers"],
      ] as const
    ) {
      this.#exchanges.set(name, {
        name,
        type,
        durable: true,
        autoDelete: false,
        internal: false,
        bindings: new Map(),
      });
    }
    if (options.path) {
      this.#store = QueueStore.open(options.path, options);
      this.#recover(this.#store);
    }
  }

  #recover(store: QueueStore): void {
    for (const e of store.exchanges()) {
      if (this.#exchanges.has(e.name)) continue;
      this.#exchanges.set(e.name, {
        name: e.name,
        type: e.type as ExchangeType,
        durable: true,
        autoDelete: e.autoDelete,
        internal: false,
        bindings: new Map(),
      });
    }
    const now = this.#now();
    for (const q of store.queues()) {
      let args: Record<string, unknown> = {};
      try {
        args = JSON.parse(q.args ?? "{}");
      } catch {
        // keep none
      }
      const state = new QueueState(q.name, {
        durable: true,
        exclusive: false,
        autoDelete: q.autoDelete,
        maxLength: q.maxLength,
        messageTtl: Number(args.messageTtl ?? 0),
        expires: Number(args.expires ?? 0),
        deadLetterExchange: typeof args.deadLetterExchange === "string"
          ? args.deadLetterExchange
          : undefined,
        deadLetterRoutingKey: typeof args.deadLetterRoutingKey === "string"
          ? args.deadLetterRoutingKey
          : undefined,
      });
      state.lastUsed = now;
      this.#queues.set(q.name, state);
    }
    for (const b of store.bindings()) {
      const ex = this.#exchanges.get(b.exchange);
      const q = this.#queues.get(b.queue);
      if (ex && q) this.#addBinding(ex, q, b.key);
    }
    for (const m of store.messages()) {
      const q = this.#queues.get(m.queue);
      if (!q) continue;
      let props: Record<string, unknown> = {};
      try {
        props = JSON.parse(m.props, propsReviver);
      } catch {
        // keep empty
      }
      q.push({
        seq: this.#nextSeq++,
        id: m.id,
        exchange: m.exchange,
        key: m.key,
        body: m.body,
        props,
        persistent: true,
        redelivered: m.redelivered,
        expiresAt: m.expiresAt ?? 0,
      });
      if (m.expiresAt) q.expiring = true;
    }
    this.#armExpiry(true);
  }

  /**
   * Opens a connection whose output goes to `sink`. Connections given the same `owner`
   * share exclusive queues (deleted by {@linkcode releaseOwner}); without one, a
   * connection owns its exclusive queues alone and {@linkcode disconnect} deletes them.
   */
  connect(label: string, sink: ConnectionSink, options: { owner?: object } = {}): EngineConnection {
    const conn = new EngineConnection(this.#nextConn++, label, sink, options.owner);
    this.#connections.add(conn);
    return conn;
  }

  /**
   * Closes `conn`: cancels its consumers, puts its unacknowledged deliveries back in
   * their queues marked redelivered, and deletes its exclusive queues.
   */
  disconnect(conn: EngineConnection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.#connections.delete(conn);
    this.#confirmWaiting.delete(conn);
    for (const c of [...conn.consumers.values()]) this.#removeConsumer(c, false);
    const held = [...conn.unacked.values()];
    for (const u of held) u.queue.unacked--;
    this.#requeue(held, "disconnect");
    conn.unacked.clear();
    if (conn.owner === conn) this.releaseOwner(conn);
    for (const q of this.#queues.values()) {
      if (q.autoDelete && q.hadConsumer && q.consumers.length === 0) this.#deleteQueue(q);
    }
  }

  /** Deletes the exclusive queues of `owner` (its connections are gone). */
  releaseOwner(owner: object): void {
    for (const q of [...this.#queues.values()]) {
      if (q.exclusive && q.owner === owner) this.#deleteQueue(q);
    }
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
    this.#exchanges.set(name, {
      name,
      type: type as ExchangeType,
      durable,
      autoDelete,
      internal: options.internal ?? false,
      bindings: new Map(),
    });
    if (durable) this.#store?.putExchange({ name, type, autoDelete });
    this.#onEvent("x.declared", { exchange: name, type, durable });
    return true;
  }

  /** Deletes an exchange and its bindings. */
  deleteExchange(name: string): void {
    const ex = this.#exchange(name);
    if (name === "" || name.startsWith("amq.")) {
      throw new ProtocolError(QueueErrorCode.AccessRefused, `Cannot delete exchange "${name}"`);
    }
    for (const [key, queues] of ex.bindings) {
      for (const qn of queues) this.#queues.get(qn)?.bindings.delete(`${name}\u0000${key}`);
    }
    this.#exchanges.delete(name);
    if (ex.durable) this.#store?.deleteExchange(name);
  }

  /** Throws what a publish to `exchange` would: 404 when it does not exist, 403 when internal. */
  assertPublishable(exchange: string): void {
    if (exchange === "") return;
    const ex = this.#exchange(exchange);
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
  ): QueueInfo & { created: boolean } {
    checkName(name, "queue");
    const existing = name === "" ? undefined : this.#queues.get(name);
    if (options.passive) {
      if (!existing) {
        throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find queue "${name}"`);
      }
      this.#checkExclusive(existing, conn);
      return { ...this.#info(existing), created: false };
    }
    const o: QueueSettings = {
      durable: options.durable ?? true,
      exclusive: options.exclusive ?? false,
      autoDelete: options.autoDelete ?? false,
      maxLength: options.maxLength ?? 0,
      messageTtl: options.messageTtl ?? 0,
      expires: options.expires ?? 0,
      deadLetterExchange: options.deadLetterExchange,
      deadLetterRoutingKey: options.deadLetterRoutingKey,
    };
    for (const k of ["maxLength", "messageTtl", "expires"] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 0) {
        throw new ProtocolError(
          QueueErrorCode.PreconditionFailed,
          `Cannot declare queue "${name}": ${k} must be an integer ≥ 0`,
        );
      }
    }
    if (o.deadLetterExchange !== undefined) checkName(o.deadLetterExchange, "exchange");
    if (existing) {
      this.#checkExclusive(existing, conn);
      existing.lastUsed = this.#now();
      const diff = ([
        "durable",
        "exclusive",
        "autoDelete",
        "maxLength",
        "messageTtl",
        "expires",
        "deadLetterExchange",
        "deadLetterRoutingKey",
      ] as const).filter((k) => existing[k] !== o[k]);
      if (diff.length > 0) {
        throw new ProtocolError(
          QueueErrorCode.PreconditionFailed,
          `Cannot redeclare queue "${name}" with other properties: ${
            diff.map((k) => `${k} is ${existing[k]}, asked ${o[k]}`).join(", ")
          }`,
        );
      }
      return { ...this.#info(existing), created: false };
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
    q.lastUsed = this.#now();
    this.#queues.set(qname, q);
    if (o.durable && !o.exclusive) {
      const args: Record<string, unknown> = {};
      if (o.messageTtl) args.messageTtl = o.messageTtl;
      if (o.expires) args.expires = o.expires;
      if (o.deadLetterExchange !== undefined) args.deadLetterExchange = o.deadLetterExchange;
      if (o.deadLetterRoutingKey !== undefined) args.deadLetterRoutingKey = o.deadLetterRoutingKey;
      this.#store?.putQueue({
        name: qname,
        autoDelete: o.autoDelete,
        maxLength: o.maxLength,
        args: JSON.stringify(args),
      });
    }
    if (o.expires) this.#armExpiry(true);
    // every queue is bound to the default exchange by its name (implicitly)
    this.#onEvent("q.declared", {
      queue: qname,
      durable: o.durable,
      exclusive: o.exclusive,
      autoDelete: o.autoDelete,
      maxLength: o.maxLength,
      ...(o.messageTtl ? { messageTtl: o.messageTtl } : {}),
      ...(o.expires ? { expires: o.expires } : {}),
      ...(o.deadLetterExchange !== undefined ? { deadLetterExchange: o.deadLetterExchange } : {}),
    });
    return { ...this.#info(q), created: true };
  }

  /** Deletes a queue; returns how many ready messages it held. */
  deleteQueue(conn: EngineConnection | undefined, name: string): number {
    const q = this.#queue(name, conn);
    const n = q.depth;
    this.#deleteQueue(q);
    return n;
  }

  /** Drops every ready message of a queue; returns how many. */
  purgeQueue(conn: EngineConnection | undefined, name: string): number {
    const q = this.#queue(name, conn);
    const msgs = q.clear();
    if (q.durable) this.#store?.purgeQueue(q.name);
    for (const m of msgs) if (m.id) this.#forget(m);
    return msgs.length;
  }

  /** Binds queue to exchange with `key`. */
  bindQueue(
    conn: EngineConnection | undefined,
    queue: string,
    exchange: string,
    key: string,
  ): void {
    const q = this.#queue(queue, conn);
    if (exchange === "") {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot bind to the default exchange: it routes by queue name`,
      );
    }
    const ex = this.#exchange(exchange);
    if (!this.#addBinding(ex, q, key)) return;
    if (ex.durable && q.durable && !q.exclusive) {
      const k = ex.type === "fanout" ? "" : ex.type === "headers" ? canonicalHeadersKey(key) : key;
      this.#store?.putBinding({ queue: q.name, exchange, key: k });
    }
  }

  /** Removes a binding (no error when absent). */
  unbindQueue(
    conn: EngineConnection | undefined,
    queue: string,
    exchange: string,
    key: string,
  ): void {
    const q = this.#queue(queue, conn);
    const ex = this.#exchange(exchange);
    const k = ex.type === "fanout" ? "" : ex.type === "headers" ? canonicalHeadersKey(key) : key;
    ex.bindings.get(k)?.delete(q.name);
    if (ex.bindings.get(k)?.size === 0) ex.bindings.delete(k);
    ex.topicCache?.clear();
    q.bindings.delete(`${exchange}\u0000${k}`);
    this.#store?.deleteBinding({ queue: q.name, exchange, key: k });
    if (ex.autoDelete && ex.bindings.size === 0) this.#deleteExchangeQuietly(ex);
  }

  /**
   * Sets the prefetch that consumers of `conn` get (0 = unbounded). With `shared`, it
   * limits the unacknowledged deliveries of all of `conn`'s consumers together instead
   * (AMQP `basic.qos` with `global`, as RabbitMQ reads it: per channel). Without
   * `shared`, existing consumers keep theirs unless `existing` is true.
   */
  qos(
    conn: EngineConnection,
    prefetch: number,
    options: { shared?: boolean; existing?: boolean } = {},
  ): void {
    if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > 65535) {
      throw new ProtocolError(
        QueueErrorCode.PreconditionFailed,
        `Cannot set prefetch ${prefetch}: must be 0..65535`,
      );
    }
    if (options.shared) {
      conn.sharedPrefetch = prefetch;
      for (const c of conn.consumers.values()) this.#dispatch(c.queue);
      return;
    }
    conn.prefetch = prefetch;
    if (options.existing === false) return;
    for (const c of conn.consumers.values()) {
      c.prefetch = prefetch;
      this.#dispatch(c.queue);
    }
  }

  /** Puts `conn` in confirm mode: every later publish is numbered from 1 and confirmed. */
  confirmSelect(conn: EngineConnection): void {
    conn.confirmMode = true;
  }

  /**
   * Routes a message. Returns the number of queues it went to. In confirm mode the
   * publish gets the next sequence number, confirmed after the store commits (or failed
   * through `confirmFailed` when it throws).
   */
  publish(
    conn: EngineConnection | undefined,
    exchange: string,
    key: string,
    body: Uint8Array,
    options: PublishOptions = {},
  ): number {
    const seq = conn?.confirmMode ? ++conn.publishSeq : 0;
    try {
      return this.#publish(conn, exchange, key, body, options, seq);
    } catch (err) {
      if (seq && conn && err instanceof ProtocolError) {
        conn.sink.confirmFailed(seq, err);
        return 0;
      }
      throw err;
    }
  }

  #publish(
    conn: EngineConnection | undefined,
    exchange: string,
    key: string,
    body: Uint8Array,
    options: PublishOptions,
    seq: number,
  ): number {
    const props = options.props ?? {};
    const targets = this.#route(conn, exchange, key, props);
    this.stats.published++;
    const persistent = options.persistent ?? false;
    let propsJson: string | undefined;
    let routed = 0;
    let now = 0;
    for (const q of targets) {
      routed++;
      let expiresAt = 0;
      if (q.messageTtl > 0 || options.expiration !== undefined) {
        now ||= this.#now();
        if (q.messageTtl > 0) expiresAt = now + q.messageTtl;
        if (options.expiration !== undefined) {
          const e = now + Math.max(0, options.expiration);
          if (!expiresAt || e < expiresAt) expiresAt = e;
          q.expiring = true;
        }
      }
      const m: Message = {
        seq: this.#nextSeq++,
        id: 0,
        exchange,
        key,
        body,
        props,
        persistent,
        redelivered: false,
        expiresAt,
      };
      if (persistent && q.durable && this.#store) {
        propsJson ??= storedProps(props);
        m.id = this.#store.insert({
          queue: q.name,
          exchange,
          key,
          body,
          props: propsJson,
          redelivered: false,
          expiresAt,
        });
        this.#scheduleTick();
      }
      q.push(m);
      if (q.maxLength > 0) {
        while (q.depth > q.maxLength) {
          const dropped = q.shift();
          if (dropped) this.#deadLetter(q, dropped, "maxlen");
        }
      }
      if (expiresAt && expiresAt < this.#expiryAt) this.#armExpiry(false, expiresAt);
      this.#dispatch(q);
    }
    if (routed === 0 && options.mandatory && conn) {
      this.stats.returned++;
      conn.sink.returned({ exchange, routingKey: key, body, props, reason: "NO_ROUTE" });
    }
    if (seq && conn) {
      this.#confirmWaiting.add(conn);
      this.#scheduleTick();
    }
    return routed;
  }

  #route(
    conn: EngineConnection | undefined,
    exchange: string,
    key: string,
    props: Record<string, unknown>,
  ): QueueState[] {
    if (exchange === "") {
      const q = this.#queues.get(key);
      return q ? [q] : [];
    }
    const ex = this.#exchange(exchange);
    if (ex.internal && conn) {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot publish to internal exchange "${exchange}"`,
      );
    }
    if (ex.type === "fanout") return this.#named(ex.bindings.get(""));
    if (ex.type === "direct") return this.#named(ex.bindings.get(key));
    if (ex.type === "headers") {
      const headers = props.headers;
      const h = typeof headers === "object" && headers !== null && !Array.isArray(headers)
        ? headers as Record<string, unknown>
        : {};
      const out = new Set<QueueState>();
      for (const [binding, queues] of ex.bindings) {
        if (headersMatch(binding, h)) { for (const q of this.#named(queues)) out.add(q); }
      }
      return [...out];
    }
    // topic: the patterns a key matches are computed once per key until the bindings change
    const cache = ex.topicCache ??= new Map();
    let names = cache.get(key);
    if (!names) {
      const out = new Set<string>();
      for (const [pattern, queues] of ex.bindings) {
        if (topicMatches(pattern, key)) { for (const q of queues) out.add(q); }
      }
      names = [...out];
      if (cache.size >= 4096) cache.clear();
      cache.set(key, names);
    }
    const targets: QueueState[] = [];
    for (const n of names) {
      const q = this.#queues.get(n);
      if (q) targets.push(q);
    }
    return targets;
  }

  #named(names: Set<string> | undefined): QueueState[] {
    if (!names) return [];
    const out: QueueState[] = [];
    for (const n of names) {
      const q = this.#queues.get(n);
      if (q) out.push(q);
    }
    return out;
  }

  /** Starts a consumer on `queue`; returns its tag. */
  consume(conn: EngineConnection, queue: string, options: ConsumeOptions = {}): string {
    const q = this.#queue(queue, conn);
    const tag = options.tag || `amq.ctag-${conn.id}.${this.#nextConsumer++}`;
    checkName(tag, "consumer tag");
    if (q.exclusiveConsumer || (options.exclusive && q.consumers.length > 0)) {
      throw new ProtocolError(
        QueueErrorCode.AccessRefused,
        `Cannot consume from queue "${q.name}" ${
          q.exclusiveConsumer ? "" : "exclusively "
        }: it has ${q.exclusiveConsumer ? "an exclusive consumer" : "consumers"}`,
      );
    }
    if (conn.consumers.has(tag)) {
      throw new ProtocolError(
        QueueErrorCode.PreconditionFailed,
        `Cannot consume with tag "${tag}": already in use on this connection`,
      );
    }
    const prefetch = options.prefetch ?? conn.prefetch;
    if (!Number.isInteger(prefetch) || prefetch < 0) {
      throw new ProtocolError(QueueErrorCode.PreconditionFailed, `Cannot use prefetch ${prefetch}`);
    }
    const c: Consumer = {
      tag,
      queue: q,
      conn,
      noAck: options.noAck ?? false,
      prefetch,
      unacked: 0,
    };
    conn.consumers.set(tag, c);
    q.consumers.push(c);
    q.lastUsed = this.#now();
    if (options.exclusive) q.exclusiveConsumer = true;
    q.hadConsumer = true;
    this.#dispatch(q);
    return tag;
  }

  /** Cancels a consumer of `conn` (its unacked deliveries stay unacked). */
  cancel(conn: EngineConnection, tag: string): void {
    const c = conn.consumers.get(tag);
    if (!c) {
      throw new ProtocolError(QueueErrorCode.NotFound, `Cannot cancel consumer "${tag}": unknown`);
    }
    this.#removeConsumer(c, true);
  }

  #removeConsumer(c: Consumer, autoDelete: boolean): void {
    c.conn.consumers.delete(c.tag);
    const q = c.queue;
    const i = q.consumers.indexOf(c);
    if (i >= 0) q.consumers.splice(i, 1);
    if (q.consumers.length === 0) {
      q.exclusiveConsumer = false;
      q.lastUsed = this.#now();
      if (q.expires > 0) this.#armExpiry(false, q.lastUsed + q.expires);
    }
    if (autoDelete && q.autoDelete && q.consumers.length === 0 && !q.deleted) this.#deleteQueue(q);
  }

  /** Acknowledges delivery `tag` (and every earlier one when `multiple`). */
  ack(conn: EngineConnection, tag: number, multiple = false): void {
    const settled = this.#settle(conn, tag, multiple, "ack");
    for (const u of settled) {
      this.stats.acked++;
      if (u.msg.id) this.#forget(u.msg);
    }
    this.#dispatchAll(settled);
  }

  /** Rejects delivery `tag` (every earlier one too when `multiple`): back to its queue, or dropped. */
  nack(
    conn: EngineConnection,
    tag: number,
    options: { multiple?: boolean; requeue?: boolean } = {},
  ): void {
    const settled = this.#settle(conn, tag, options.multiple ?? false, "nack");
    if (options.requeue ?? true) this.#requeue(settled, "nack");
    else for (const u of settled) this.#deadLetter(u.queue, u.msg, "rejected");
    this.#dispatchAll(settled);
  }

  #dispatchAll(items: Unacked[]): void {
    if (items.length === 1) this.#dispatch(items[0].queue);
    else for (const q of new Set(items.map((u) => u.queue))) this.#dispatch(q);
  }

  #settle(conn: EngineConnection, tag: number, multiple: boolean, what: string): Unacked[] {
    const out: Unacked[] = [];
    if (multiple) {
      if (tag === 0) {
        out.push(...conn.unacked.values());
      } else {
        if (!conn.unacked.has(tag)) throw this.#unknownTag(what, tag);
        for (const [t, u] of conn.unacked) if (t <= tag) out.push(u);
      }
    } else {
      const u = conn.unacked.get(tag);
      if (!u) throw this.#unknownTag(what, tag);
      out.push(u);
    }
    for (const u of out) {
      conn.unacked.delete(u.tag);
      u.queue.unacked--;
      if (u.consumer) u.consumer.unacked--;
    }
    return out;
  }

  #unknownTag(what: string, tag: number): ProtocolError {
    return new ProtocolError(
      QueueErrorCode.UnknownDeliveryTag,
      `Cannot ${what} delivery tag ${tag}: unknown on this connection`,
      { deliveryTag: tag },
    );
  }

  #requeue(items: Unacked[], reason: string): void {
    const byQueue = new Map<QueueState, Message[]>();
    for (const u of items) {
      if (u.queue.deleted) continue;
      u.msg.redelivered = true;
      if (u.msg.id) {
        this.#store?.markRedelivered(u.msg.id);
        this.#scheduleTick();
      }
      let list = byQueue.get(u.queue);
      if (!list) byQueue.set(u.queue, list = []);
      list.push(u.msg);
    }
    for (const [q, msgs] of byQueue) {
      this.stats.redelivered += msgs.length;
      q.requeueFront(msgs);
      this.#onEvent("msg.redelivered", { queue: q.name, count: msgs.length, reason });
      this.#dispatch(q);
    }
  }

  /** Pulls one message (`null` when the queue is empty). */
  get(conn: EngineConnection, queue: string, options: { noAck?: boolean } = {}): Delivery | null {
    const q = this.#queue(queue, conn);
    q.lastUsed = this.#now();
    if (q.expiring) this.#expireHead(q, q.lastUsed);
    const m = q.shift();
    if (!m) return null;
    return this.#hand(conn, q, m, undefined, options.noAck ?? false);
  }

  #hand(
    conn: EngineConnection,
    q: QueueState,
    m: Message,
    c: Consumer | undefined,
    noAck: boolean,
  ): Delivery {
    this.stats.delivered++;
    let deliveryTag = 0;
    if (noAck) {
      if (m.id) this.#forget(m);
    } else {
      deliveryTag = conn.nextDeliveryTag++;
      conn.unacked.set(deliveryTag, { tag: deliveryTag, msg: m, queue: q, consumer: c });
      q.unacked++;
      if (c) c.unacked++;
    }
    return {
      consumerTag: c?.tag ?? "",
      deliveryTag,
      queue: q.name,
      exchange: m.exchange,
      routingKey: m.key,
      body: m.body,
      redelivered: m.redelivered,
      persistent: m.persistent,
      props: m.props,
    };
  }

  #dispatch(q: QueueState): void {
    if (q.dispatching || q.deleted) return;
    q.dispatching = true;
    try {
      if (q.expiring && q.depth > 0) this.#expireHead(q, this.#now());
      while (q.depth > 0 && q.consumers.length > 0) {
        const n = q.consumers.length;
        let chosen: Consumer | undefined;
        for (let i = 0; i < n; i++) {
          const c = q.consumers[(q.rr + i) % n];
          if (c.conn.blocked || c.conn.sink.open?.() === false) continue;
          if (!c.noAck && c.prefetch > 0 && c.unacked >= c.prefetch) continue;
          if (
            !c.noAck && c.conn.sharedPrefetch > 0 && c.conn.unacked.size >= c.conn.sharedPrefetch
          ) {
            continue;
          }
          chosen = c;
          q.rr = (q.rr + i + 1) % n;
          break;
        }
        if (!chosen) break;
        const m = q.shift()!;
        const d = this.#hand(chosen.conn, q, m, chosen, chosen.noAck);
        if (!chosen.conn.sink.deliver(d)) chosen.conn.blocked = true;
      }
    } finally {
      q.dispatching = false;
    }
  }

  /** Tells the engine that `conn` can take deliveries again after backpressure. */
  resume(conn: EngineConnection): void {
    if (conn.closed) return;
    conn.blocked = false;
    const queues = new Set<QueueState>();
    for (const c of conn.consumers.values()) queues.add(c.queue);
    for (const q of queues) this.#dispatch(q);
  }

  /** Drops (or dead-letters) the expired messages at the head of `q` (RabbitMQ expires at the head). */
  #expireHead(q: QueueState, now: number): void {
    while (q.head < q.ready.length) {
      const m = q.ready[q.head];
      if (!m.expiresAt || m.expiresAt > now) break;
      q.shift();
      this.stats.expired++;
      this.#deadLetter(q, m, "expired");
    }
  }

  /**
   * A message leaves `q` for good (rejected without requeue, expired, dropped at max
   * length): republished to the queue's dead-letter exchange when it has one, else dropped.
   */
  #deadLetter(q: QueueState, m: Message, reason: string): void {
    if (m.id) this.#forget(m);
    if (q.deadLetterExchange === undefined) return;
    if (this.#deadLettering > 8) {
      this.#onEvent("msg.dropped", { queue: q.name, reason: "dead-letter cycle" });
      return;
    }
    this.#deadLettering++;
    try {
      const routed = this.#publish(
        undefined,
        q.deadLetterExchange,
        q.deadLetterRoutingKey ?? m.key,
        m.body,
        { persistent: m.persistent, props: m.props },
        0,
      );
      this.stats.deadLettered++;
      this.#onEvent("msg.dead-lettered", {
        queue: q.name,
        reason,
        exchange: q.deadLetterExchange,
        routed,
      });
    } catch (err) {
      // a missing dead-letter exchange drops the message, as RabbitMQ does
      this.#onEvent("msg.dropped", {
        queue: q.name,
        reason: `dead-letter: ${err instanceof Error ? err.message : String(err)}`,
      });
    } finally {
      this.#deadLettering--;
    }
  }

  /** Sets the expiry timer to the earliest head expiry or queue expiry (`recompute`), or to `at`. */
  #armExpiry(recompute: boolean, at = Infinity): void {
    if (this.#closed) return;
    let next = at;
    if (recompute) {
      for (const q of this.#queues.values()) {
        if (q.expiring && q.depth > 0) {
          for (let i = q.head; i < q.ready.length; i++) {
            const e = q.ready[i].expiresAt;
            if (e) {
              if (e < next) next = e;
              break;
            }
          }
        }
        if (q.expires > 0 && q.consumers.length === 0) {
          next = Math.min(next, q.lastUsed + q.expires);
        }
      }
    }
    if (next === Infinity || (!recompute && next >= this.#expiryAt)) return;
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#expiryAt = next;
    const delay = Math.min(Math.max(1, next - this.#now()), 2 ** 31 - 1);
    this.#expiryTimer = setTimeout(() => this.#sweep(), delay);
    Deno.unrefTimer(this.#expiryTimer as unknown as number);
  }

  #sweep(): void {
    this.#expiryTimer = undefined;
    this.#expiryAt = Infinity;
    const now = this.#now();
    for (const q of [...this.#queues.values()]) {
      if (q.deleted) continue;
      if (q.expiring && q.depth > 0) {
        this.#expireHead(q, now);
        this.#dispatch(q);
      }
      if (q.expires > 0 && q.consumers.length === 0 && now - q.lastUsed >= q.expires) {
        this.#onEvent("q.expired", { queue: q.name, idle_ms: now - q.lastUsed });
        this.#deleteQueue(q);
      }
    }
    this.#armExpiry(true);
  }

  #forget(m: Message): void {
    if (!m.id) return;
    this.#store?.remove(m.id);
    m.id = 0;
    this.#scheduleTick();
  }

  #deleteQueue(q: QueueState): void {
    if (q.deleted) return;
    q.deleted = true;
    this.#queues.delete(q.name);
    for (const c of [...q.consumers]) {
      c.conn.consumers.delete(c.tag);
      c.conn.sink.cancelled(c.tag);
    }
    q.consumers = [];
    for (const b of q.bindings) {
      const [exName, key] = b.split("\u0000");
      const ex = this.#exchanges.get(exName);
      if (!ex) continue;
      ex.bindings.get(key)?.delete(q.name);
      if (ex.bindings.get(key)?.size === 0) ex.bindings.delete(key);
      ex.topicCache?.clear();
      if (ex.autoDelete && ex.bindings.size === 0) this.#deleteExchangeQuietly(ex);
    }
    q.clear();
    if (q.durable) this.#store?.deleteQueue(q.name);
    this.#onEvent("q.deleted", { queue: q.name });
  }

  #deleteExchangeQuietly(ex: Exchange): void {
    this.#exchanges.delete(ex.name);
    if (ex.durable) this.#store?.deleteExchange(ex.name);
  }

  #addBinding(ex: Exchange, q: QueueState, key: string): boolean {
    if (ex.type === "headers") key = canonicalHeadersKey(key);
    const k = ex.type === "fanout" ? "" : key;
    const id = `${ex.name}\u0000${k}`;
    if (q.bindings.has(id)) return false;
    q.bindings.add(id);
    let set = ex.bindings.get(k);
    if (!set) ex.bindings.set(k, set = new Set());
    set.add(q.name);
    ex.topicCache?.clear();
    return true;
  }

  #exchange(name: string): Exchange {
    const ex = this.#exchanges.get(name);
    if (!ex) throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find exchange "${name}"`);
    return ex;
  }

  #queue(name: string, conn: EngineConnection | undefined): QueueState {
    const q = this.#queues.get(name);
    if (!q) throw new ProtocolError(QueueErrorCode.NotFound, `Cannot find queue "${name}"`);
    this.#checkExclusive(q, conn);
    return q;
  }

  #checkExclusive(q: QueueState, conn: EngineConnection | undefined): void {
    if (q.exclusive && conn !== undefined && q.owner !== conn.owner) {
      throw new ProtocolError(
        QueueErrorCode.ResourceLocked,
        `Cannot use queue "${q.name}": exclusive to another connection`,
      );
    }
  }

  #info(q: QueueState): QueueInfo {
    return {
      name: q.name,
      durable: q.durable,
      exclusive: q.exclusive,
      autoDelete: q.autoDelete,
      maxLength: q.maxLength,
      messages: q.depth,
      unacked: q.unacked,
      consumers: q.consumers.length,
    };
  }

  /** One queue's depth and consumers (404 `not_found` when absent, 405 when exclusive to another). */
  queueInfo(conn: EngineConnection | undefined, name: string): QueueInfo {
    const q = this.#queue(name, conn);
    if (q.expiring) this.#expireHead(q, this.#now());
    return this.#info(q);
  }

  /** One exchange (undefined when absent; `""` is the default exchange). */
  exchangeInfo(
    name: string,
  ):
    | { name: string; type: ExchangeType; durable: boolean; internal: boolean; bindings: number }
    | undefined {
    if (name === "") return { name, type: "direct", durable: true, internal: false, bindings: 0 };
    const e = this.#exchanges.get(name);
    if (!e) return undefined;
    return {
      name,
      type: e.type,
      durable: e.durable,
      internal: e.internal,
      bindings: [...e.bindings.values()].reduce((n, s) => n + s.size, 0),
    };
  }

  /** Every queue with its depth, by name. */
  queues(): QueueInfo[] {
    return [...this.#queues.values()].map((q) => this.#info(q)).sort((a, b) =>
      a.name < b.name ? -1 : 1
    );
  }

  /** Every exchange. */
  exchanges(): Array<{ name: string; type: ExchangeType; durable: boolean; bindings: number }> {
    return [...this.#exchanges.values()].map((e) => ({
      name: e.name,
      type: e.type,
      durable: e.durable,
      bindings: [...e.bindings.values()].reduce((n, s) => n + s.size, 0),
    }));
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Resolves after the next store commit (at once when nothing is pending). */
  committed(): Promise<void> {
    if (!this.#turn.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#commitWaiters.push(resolve));
  }

  #scheduleTick(): void {
    if (!this.#closed) this.#turn.schedule();
  }

  #tick(): void {
    let failure: ProtocolError | undefined;
    if (this.#store?.dirty) {
      try {
        this.#store.commit();
        this.stats.commits++;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failure = new ProtocolError(QueueErrorCode.StoreFailed, `Cannot store: ${message}`);
        this.#onEvent("store.error", { message });
      }
    }
    const waiting = [...this.#confirmWaiting];
    this.#confirmWaiting.clear();
    for (const conn of waiting) {
      if (conn.closed) continue;
      if (failure) conn.sink.confirmFailed(conn.publishSeq, failure);
      else conn.sink.confirmed(conn.publishSeq);
    }
    const waiters = this.#commitWaiters;
    this.#commitWaiters = [];
    for (const w of waiters) w();
  }

  /** Commits what is pending and closes the store (connections are dropped). Safe twice. */
  close(): void {
    if (this.#closed) return;
    for (const conn of [...this.#connections]) this.disconnect(conn);
    this.#closed = true;
    this.#turn.close();
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#store?.close();
    for (const w of this.#commitWaiters) w();
    this.#commitWaiters = [];
  }
}

let lastProps: Record<string, unknown> | undefined;
let lastPropsJson = "";

/**
 * The stored (JSON) form of props. The last one is remembered: AMQP publishers send the
 * same props object again and again (decoded once per distinct set of bytes).
 */
function storedProps(props: Record<string, unknown>): string {
  if (props === lastProps) return lastPropsJson;
  lastPropsJson = JSON.stringify(props, propsReplacer);
  lastProps = props;
  return lastPropsJson;
}

/** Stored props: byte arrays as `{$bytes: base64}`, bigints as strings. */
function propsReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) {
    let s = "";
    for (let i = 0; i < value.length; i++) s += String.fromCharCode(value[i]);
    return { $bytes: btoa(s) };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

function propsReviver(_key: string, value: unknown): unknown {
  if (
    typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as { $bytes?: unknown }).$bytes === "string" && Object.keys(value).length === 1
  ) {
    const s = atob((value as { $bytes: string }).$bytes);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  return value;
}

/**
 * A headers-exchange binding is stored under its arguments as canonical JSON (keys
 * sorted): `{"x-match":"all"|"any", header: value, …}`. A key that is not such JSON
 * (a binding made with a plain routing key) means "match all of nothing", i.e. everything.
 */
function canonicalHeadersKey(key: string): string {
  const args = parseHeadersKey(key);
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(args).sort()) sorted[k] = args[k];
  return JSON.stringify(sorted);
}

const headersKeyCache = new Map<string, Record<string, unknown>>();

function parseHeadersKey(key: string): Record<string, unknown> {
  let args = headersKeyCache.get(key);
  if (args) return args;
  args = {};
  try {
    const v = JSON.parse(key);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) args = v;
  } catch {
    // a plain key: no arguments
  }
  if (headersKeyCache.size > 10_000) headersKeyCache.clear();
  headersKeyCache.set(key, args!);
  return args!;
}

/** Whether `headers` match a headers-exchange binding (x-match all, the default, or any). */
export function headersMatch(bindingKey: string, headers: Record<string, unknown>): boolean {
  const args = parseHeadersKey(bindingKey);
  const any = args["x-match"] === "any";
  let total = 0;
  for (const [k, v] of Object.entries(args)) {
    if (k.startsWith("x-")) continue;
    total++;
    const h = headers[k];
    const ok = k in headers && (v === null || v === undefined || sameValue(h, v));
    if (any && ok) return true;
    if (!any && !ok) return false;
  }
  return any ? total === 0 : true;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "bigint" || typeof b === "bigint") return String(a) === String(b);
  return JSON.stringify(a, propsReplacer) === JSON.stringify(b, propsReplacer);
}

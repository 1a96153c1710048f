/**
 * The queue engine: AMQP 0-9-1's model in one process. Exchanges (`direct`, `fanout`,
 * `topic`, `headers`, and the default exchange `""`), queues (durable, exclusive,
 * auto-delete, max length, TTL, expiry, dead-lettering), bindings, publish with
 * `mandatory`, consumers with prefetch and manual or automatic acks, `get`, publisher
 * confirms, and requeue (marked redelivered) of what a closing connection held
 * unacknowledged. Any role can embed it; `--role queue` serves it.
 *
 * The pieces: {@linkcode Topology} (what exists and where a publish routes),
 * `queue_state.ts` (queues, connections, consumer choice, settling tags), `expiry.ts`
 * (TTL and `x-expires` timing), `commit_turn.ts` (one store commit per turn, confirms
 * after it); this file moves messages between them.
 *
 * @module
 */
import { ProtocolError } from "../wire/mod.ts";
import { CommitTurn } from "./commit_turn.ts";
import { deadLetteredProps, type DeathReason } from "./dead_letter.ts";
import { ExpiryTimer, nextExpiry } from "./expiry.ts";
import { checkName } from "./names.ts";
import { propsReviver, storedProps } from "./props_json.ts";
import { QueueErrorCode } from "./protocol.ts";
import {
  type Consumer,
  EngineConnection,
  type Message,
  nextConsumer,
  queueInfo,
  type QueueState,
  settle,
  type Unacked,
} from "./queue_state.ts";
import { QueueStore } from "./store.ts";
import { type ExchangeInfo, Topology } from "./topology.ts";
import type {
  ConnectionSink,
  ConsumeOptions,
  Delivery,
  EngineStats,
  ExchangeOptions,
  ExchangeType,
  PublishOptions,
  QueueEngineOptions,
  QueueInfo,
  QueueOptions,
} from "./types.ts";

export { EngineConnection } from "./queue_state.ts";
export type { ExchangeInfo } from "./topology.ts";
export type {
  ConnectionSink,
  ConsumeOptions,
  Delivery,
  EngineStats,
  ExchangeOptions,
  ExchangeType,
  PublishOptions,
  QueueEngineOptions,
  QueueInfo,
  QueueOptions,
  Returned,
} from "./types.ts";

/** How deep dead-lettering may recurse before a message is dropped (a DLX cycle). */
const MAX_DEAD_LETTER_DEPTH = 8;

/** Under memory pressure, publishers are let go again below this share of the limit. */
const MEMORY_RESUME_RATIO = 0.8;

/**
 * The engine. All operations are synchronous and throw `ProtocolError` (codes in
 * {@linkcode QueueErrorCode}); deliveries, returns and confirms go to each connection's
 * {@linkcode ConnectionSink}. Persistent messages of durable queues are written in one
 * SQLite transaction per event-loop tick, and confirms are sent after it commits.
 * Messages are delivered round-robin among a queue's consumers with room under their
 * prefetch; a consumer's connection that reports backpressure is skipped until
 * {@linkcode resume}.
 *
 * Memory pressure: with `maxMemory`, once the bodies of the messages the queues hold
 * (ready or unacknowledged, counted per queue) reach it, the engine is
 * {@linkcode memoryBlocked} and every sink hears `memoryPressure(true)`; below 80 % of
 * it, `memoryPressure(false)`. Publishing goes on (the adapters decide: AMQP stops
 * reading from publishing connections, the native protocol refuses with `overloaded`).
 */
export class QueueEngine {
  readonly #store?: QueueStore;
  readonly #onEvent: (ev: string, fields: Record<string, unknown>) => void;
  readonly #now: () => number;
  readonly #topology: Topology;
  readonly #expiry: ExpiryTimer;
  readonly #commits: CommitTurn;
  #deadLettering = 0;
  readonly #connections = new Set<EngineConnection>();
  #nextConn = 1;
  #nextSeq = 1;
  #nextConsumer = 1;
  #closed = false;
  readonly #maxMemory: number;
  #heldBytes = 0;
  #memoryBlocked = false;
  /** Stored messages were handed out since the last commit (their delivery marks wait in it). */
  #marksPending = false;
  /** Queues whose delivery mark rose since the last commit. */
  readonly #marked = new Set<QueueState>();
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
    this.#maxMemory = options.maxMemory ?? 0;
    if (!Number.isSafeInteger(this.#maxMemory) || this.#maxMemory < 0) {
      throw new RangeError(`Cannot limit queue memory to ${options.maxMemory}: bytes ≥ 0`);
    }
    if (options.path) this.#store = QueueStore.open(options.path, options);
    this.#expiry = new ExpiryTimer(() => this.#sweep(), this.#now);
    this.#commits = new CommitTurn(this.#store, this.#onEvent, this.stats, {
      beforeCommit: () => {
        for (const q of this.#marked) {
          if (!q.deleted && q.durable) this.#store!.markDelivered(q.name, q.deliveredMark);
        }
        this.#marked.clear();
      },
      afterCommit: () => {
        this.#marksPending = false;
      },
    });
    this.#topology = new Topology(this.#store, {
      onEvent: this.#onEvent,
      now: this.#now,
      expiryChanged: () => this.#expiry.set(nextExpiry(this.#topology.all())),
      dropped: (msgs) => {
        for (const m of msgs) {
          m.id = 0; // their rows went with the queue
          this.#heldBytes -= m.body.length;
        }
        this.#checkMemory();
      },
    });
    if (this.#store) this.#recoverMessages(this.#store);
  }

  #recoverMessages(store: QueueStore): void {
    for (const m of store.messages()) {
      const q = this.#topology.find(m.queue);
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
      this.#heldBytes += m.body.length;
      if (m.expiresAt) q.expiring = true;
    }
    this.#checkMemory();
    this.#expiry.set(nextExpiry(this.#topology.all()));
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
    this.#commits.forget(conn);
    for (const c of [...conn.consumers.values()]) this.#removeConsumer(c, false);
    const held = [...conn.unacked.values()];
    for (const u of held) u.queue.unacked--;
    this.#requeue(held, "disconnect");
    conn.unacked.clear();
    if (conn.owner === conn) this.releaseOwner(conn);
    for (const q of [...this.#topology.all()]) {
      if (q.autoDelete && q.hadConsumer && q.consumers.length === 0) this.#topology.removeQueue(q);
    }
  }

  /** Deletes the exclusive queues of `owner` (its connections are gone). */
  releaseOwner(owner: object): void {
    this.#topology.releaseOwner(owner);
  }

  /** Declares (or checks) an exchange; returns whether it was created. */
  declareExchange(name: string, type: string, options: ExchangeOptions = {}): boolean {
    return this.#topology.declareExchange(name, type, options);
  }

  /** Deletes an exchange and its bindings. */
  deleteExchange(name: string): void {
    this.#topology.deleteExchange(name);
  }

  /** Throws what a publish to `exchange` would: 404 when it does not exist, 403 when internal. */
  assertPublishable(exchange: string): void {
    this.#topology.assertPublishable(exchange);
  }

  /** Declares (or checks) a queue; `""` gets a generated name. */
  declareQueue(
    conn: EngineConnection | undefined,
    name: string,
    options: QueueOptions = {},
  ): QueueInfo & { created: boolean } {
    const { queue, created } = this.#topology.declareQueue(conn, name, options);
    return { ...queueInfo(queue), created };
  }

  /** Deletes a queue; returns how many ready messages it held. */
  deleteQueue(conn: EngineConnection | undefined, name: string): number {
    const q = this.#topology.queue(name, conn);
    const n = q.depth;
    this.#topology.removeQueue(q);
    return n;
  }

  /** Drops every ready message of a queue; returns how many. */
  purgeQueue(conn: EngineConnection | undefined, name: string): number {
    return this.#topology.purgeQueue(conn, name);
  }

  /** Binds queue to exchange with `key`. */
  bindQueue(
    conn: EngineConnection | undefined,
    queue: string,
    exchange: string,
    key: string,
  ): void {
    this.#topology.bindQueue(conn, queue, exchange, key);
  }

  /** Removes a binding (no error when absent). */
  unbindQueue(
    conn: EngineConnection | undefined,
    queue: string,
    exchange: string,
    key: string,
  ): void {
    this.#topology.unbindQueue(conn, queue, exchange, key);
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
    const targets = this.#topology.route(conn, exchange, key, props);
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
        this.#commits.schedule();
      }
      q.push(m);
      this.#heldBytes += body.length;
      if (q.maxLength > 0) {
        while (q.depth > q.maxLength) {
          const dropped = q.shift();
          if (dropped) this.#deadLetter(q, dropped, "maxlen");
        }
      }
      if (expiresAt) this.#expiry.soonest(expiresAt);
      this.#dispatch(q);
    }
    if (routed === 0 && options.mandatory && conn) {
      this.stats.returned++;
      conn.sink.returned({ exchange, routingKey: key, body, props, reason: "NO_ROUTE" });
    }
    if (seq && conn) this.#commits.confirmAfterCommit(conn);
    if (routed > 0 && !this.#memoryBlocked) this.#checkMemory();
    return routed;
  }

  /** Starts a consumer on `queue`; returns its tag. */
  consume(conn: EngineConnection, queue: string, options: ConsumeOptions = {}): string {
    const q = this.#topology.queue(queue, conn);
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
      if (q.expires > 0) this.#expiry.soonest(q.lastUsed + q.expires);
    }
    if (autoDelete && q.autoDelete && q.consumers.length === 0 && !q.deleted) {
      this.#topology.removeQueue(q);
    }
  }

  /** Acknowledges delivery `tag` (and every earlier one when `multiple`). */
  ack(conn: EngineConnection, tag: number, multiple = false): void {
    const settled = settle(conn, tag, multiple, "ack");
    for (const u of settled) {
      this.stats.acked++;
      this.#leave(u.msg);
    }
    if (this.#memoryBlocked) this.#checkMemory();
    this.#dispatchAll(settled);
  }

  /** Rejects delivery `tag` (every earlier one too when `multiple`): back to its queue, or dropped. */
  nack(
    conn: EngineConnection,
    tag: number,
    options: { multiple?: boolean; requeue?: boolean } = {},
  ): void {
    const settled = settle(conn, tag, options.multiple ?? false, "nack");
    if (options.requeue ?? true) this.#requeue(settled, "nack");
    else for (const u of settled) this.#deadLetter(u.queue, u.msg, "rejected");
    if (this.#memoryBlocked) this.#checkMemory();
    this.#dispatchAll(settled);
  }

  #dispatchAll(items: Unacked[]): void {
    if (items.length === 1) this.#dispatch(items[0].queue);
    else for (const q of new Set(items.map((u) => u.queue))) this.#dispatch(q);
  }

  #requeue(items: Unacked[], reason: string): void {
    const byQueue = new Map<QueueState, Message[]>();
    for (const u of items) {
      if (u.queue.deleted) {
        this.#leave(u.msg);
        continue;
      }
      u.msg.redelivered = true;
      if (u.msg.id) {
        this.#store?.markRedelivered(u.msg.id);
        this.#commits.schedule();
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
    const q = this.#topology.queue(queue, conn);
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
      this.#leave(m);
      if (this.#memoryBlocked) this.#checkMemory();
    } else {
      // a stored message handed out: after a crash it comes back redelivered
      if (m.id > q.deliveredMark) {
        q.deliveredMark = m.id;
        if (!this.#marked.has(q)) {
          this.#marked.add(q);
          this.#marksPending = true;
          this.#commits.schedule();
        }
      }
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
        const chosen = nextConsumer(q);
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
  #deadLetter(q: QueueState, m: Message, reason: DeathReason): void {
    this.#leave(m);
    if (q.deadLetterExchange === undefined) return;
    if (this.#deadLettering > MAX_DEAD_LETTER_DEPTH) {
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
        {
          persistent: m.persistent,
          props: deadLetteredProps(m.props, {
            queue: q.name,
            reason,
            exchange: m.exchange,
            routingKey: m.key,
            time: new Date(this.#now()),
          }),
        },
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

  #sweep(): void {
    const now = this.#now();
    for (const q of [...this.#topology.all()]) {
      if (q.deleted) continue;
      if (q.expiring && q.depth > 0) {
        this.#expireHead(q, now);
        this.#dispatch(q);
      }
      if (q.expires > 0 && q.consumers.length === 0 && now - q.lastUsed >= q.expires) {
        this.#onEvent("q.expired", { queue: q.name, idle_ms: now - q.lastUsed });
        this.#topology.removeQueue(q);
      }
    }
    this.#expiry.set(nextExpiry(this.#topology.all()));
  }

  /** `m` leaves the engine for good (acked, auto-acked, dropped, dead-lettered as a copy). */
  #leave(m: Message): void {
    this.#heldBytes -= m.body.length;
    if (!m.id) return;
    this.#store?.remove(m.id);
    m.id = 0;
    this.#commits.schedule();
  }

  /** Enters or leaves memory pressure, telling every connection's sink. */
  #checkMemory(): void {
    if (this.#maxMemory === 0) return;
    const blocked = this.#memoryBlocked
      ? this.#heldBytes >= this.#maxMemory * MEMORY_RESUME_RATIO
      : this.#heldBytes >= this.#maxMemory;
    if (blocked === this.#memoryBlocked) return;
    this.#memoryBlocked = blocked;
    this.#onEvent(blocked ? "memory.blocked" : "memory.unblocked", {
      held: this.#heldBytes,
      limit: this.#maxMemory,
    });
    for (const conn of [...this.#connections]) conn.sink.memoryPressure?.(blocked);
  }

  /** Whether the queues hold `maxMemory` bytes or more (and not yet below 80 % of it again). */
  get memoryBlocked(): boolean {
    return this.#memoryBlocked;
  }

  /** Bytes of message bodies the queues hold (ready and unacknowledged, per queue). */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Throws `overloaded` while {@linkcode memoryBlocked} (for adapters that refuse publishes then). */
  assertMemory(): void {
    if (!this.#memoryBlocked) return;
    throw new ProtocolError(
      QueueErrorCode.Overloaded,
      `Cannot publish: the queues hold ${this.#heldBytes} bytes, over the limit of ${this.#maxMemory} (--max-queue-memory); consume or purge first`,
    );
  }

  /** One queue's depth and consumers (404 `not_found` when absent, 405 when exclusive to another). */
  queueInfo(conn: EngineConnection | undefined, name: string): QueueInfo {
    const q = this.#topology.queue(name, conn);
    if (q.expiring) this.#expireHead(q, this.#now());
    return queueInfo(q);
  }

  /** One exchange (undefined when absent; `""` is the default exchange). */
  exchangeInfo(name: string): ExchangeInfo | undefined {
    return this.#topology.exchangeInfo(name);
  }

  /** Every queue with its depth, by name. */
  queues(): QueueInfo[] {
    return this.#topology.queues();
  }

  /** Every exchange. */
  exchanges(): Array<{ name: string; type: ExchangeType; durable: boolean; bindings: number }> {
    return this.#topology.exchanges();
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Undefined when every delivery handed out so far is on record; else a promise of the
   * commit that records the latest ones (their delivery marks, so that after a crash they
   * come back redelivered). A transport that writes deliveries after it loses nothing.
   */
  deliveriesRecorded(): Promise<void> | undefined {
    return this.#marksPending ? this.#commits.committed() : undefined;
  }

  /** Resolves after the next store commit (at once when nothing is pending). */
  committed(): Promise<void> {
    return this.#commits.committed();
  }

  /** Commits what is pending and closes the store (connections are dropped). Safe twice. */
  close(): void {
    if (this.#closed) return;
    for (const conn of [...this.#connections]) this.disconnect(conn);
    this.#closed = true;
    this.#commits.close();
    this.#expiry.close();
    this.#store?.close();
  }
}

/**
 * The queue engine's state: a message in a queue, a queue (ready messages in order, its
 * consumers and settings), a connection (its consumers, unacknowledged deliveries,
 * prefetch and confirm numbering), and the pure steps over them: settings from declare
 * options and their comparison on redeclare, the next consumer with room, and settling
 * delivery tags.
 *
 * @module
 */
import { ProtocolError } from "../wire/mod.ts";
import { QueueErrorCode } from "./protocol.ts";
import type { ConnectionSink, QueueInfo, QueueOptions } from "./types.ts";

/** A message in a queue (or held unacknowledged by a connection). */
export interface Message {
  /** Engine-wide arrival order (requeued messages go back in this order). */
  seq: number;
  /** Store id, 0 when not stored. */
  id: number;
  exchange: string;
  key: string;
  body: Uint8Array;
  props: Record<string, unknown>;
  persistent: boolean;
  redelivered: boolean;
  /** Wall-clock ms when it expires (0 = never). */
  expiresAt: number;
}

/** The settings a queue is declared with (compared on redeclare). */
export interface QueueSettings {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  maxLength: number;
  messageTtl: number;
  expires: number;
  deadLetterExchange: string | undefined;
  deadLetterRoutingKey: string | undefined;
}

/** One consumer of one queue. */
export interface Consumer {
  tag: string;
  queue: QueueState;
  conn: EngineConnection;
  noAck: boolean;
  prefetch: number;
  unacked: number;
}

/** A delivery waiting for its ack. */
export interface Unacked {
  tag: number;
  msg: Message;
  queue: QueueState;
  consumer?: Consumer;
}

/** A queue: ready messages oldest first (a head index over an array), consumers, settings. */
export class QueueState {
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
  /** The highest store id handed out from this queue (its delivery mark; 0 = none). */
  deliveredMark = 0;
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

const SETTING_KEYS = [
  "durable",
  "exclusive",
  "autoDelete",
  "maxLength",
  "messageTtl",
  "expires",
  "deadLetterExchange",
  "deadLetterRoutingKey",
] as const;

/** The settings `options` ask for, with defaults; 406 when a number is not an integer ≥ 0. */
export function queueSettings(name: string, options: QueueOptions): QueueSettings {
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
  return o;
}

/** Throws 406 when `asked` differs from the settings `q` was declared with. */
export function checkSameSettings(q: QueueState, asked: QueueSettings): void {
  const diff = SETTING_KEYS.filter((k) => q[k] !== asked[k]);
  if (diff.length > 0) {
    throw new ProtocolError(
      QueueErrorCode.PreconditionFailed,
      `Cannot redeclare queue "${q.name}" with other properties: ${
        diff.map((k) => `${k} is ${q[k]}, asked ${asked[k]}`).join(", ")
      }`,
    );
  }
}

/** The queue arguments a durable queue stores (only those set). */
export function storedQueueArgs(o: QueueSettings): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (o.messageTtl) args.messageTtl = o.messageTtl;
  if (o.expires) args.expires = o.expires;
  if (o.deadLetterExchange !== undefined) args.deadLetterExchange = o.deadLetterExchange;
  if (o.deadLetterRoutingKey !== undefined) args.deadLetterRoutingKey = o.deadLetterRoutingKey;
  return args;
}

/** The settings of a recovered durable queue from its stored arguments (bad JSON: none). */
export function recoveredSettings(
  stored: { autoDelete: boolean; maxLength: number; args?: string },
): QueueSettings {
  let args: Record<string, unknown> = {};
  try {
    args = JSON.parse(stored.args ?? "{}");
  } catch {
    // keep none
  }
  return {
    durable: true,
    exclusive: false,
    autoDelete: stored.autoDelete,
    maxLength: stored.maxLength,
    messageTtl: Number(args.messageTtl ?? 0),
    expires: Number(args.expires ?? 0),
    deadLetterExchange: typeof args.deadLetterExchange === "string"
      ? args.deadLetterExchange
      : undefined,
    deadLetterRoutingKey: typeof args.deadLetterRoutingKey === "string"
      ? args.deadLetterRoutingKey
      : undefined,
  };
}

/** What status shows of a queue. */
export function queueInfo(q: QueueState): QueueInfo {
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

/**
 * The next consumer of `q` that can take a delivery, round-robin from `q.rr` (which it
 * advances): its connection is not blocked and is open, and it has room under its own
 * prefetch and its connection's shared one. Undefined when none can.
 */
export function nextConsumer(q: QueueState): Consumer | undefined {
  const n = q.consumers.length;
  for (let i = 0; i < n; i++) {
    const c = q.consumers[(q.rr + i) % n];
    if (c.conn.blocked || c.conn.sink.open?.() === false) continue;
    if (!c.noAck && c.prefetch > 0 && c.unacked >= c.prefetch) continue;
    if (!c.noAck && c.conn.sharedPrefetch > 0 && c.conn.unacked.size >= c.conn.sharedPrefetch) {
      continue;
    }
    q.rr = (q.rr + i + 1) % n;
    return c;
  }
  return undefined;
}

/**
 * Takes delivery `tag` (with `multiple`, every one up to it; tag 0 with `multiple`: all)
 * off `conn`'s unacknowledged deliveries and their counters; 406 `unknown_delivery_tag`
 * when the tag is not held.
 */
export function settle(
  conn: EngineConnection,
  tag: number,
  multiple: boolean,
  what: string,
): Unacked[] {
  const out: Unacked[] = [];
  if (multiple) {
    if (tag === 0) {
      out.push(...conn.unacked.values());
    } else {
      if (!conn.unacked.has(tag)) throw unknownTag(what, tag);
      for (const [t, u] of conn.unacked) if (t <= tag) out.push(u);
    }
  } else {
    const u = conn.unacked.get(tag);
    if (!u) throw unknownTag(what, tag);
    out.push(u);
  }
  for (const u of out) {
    conn.unacked.delete(u.tag);
    u.queue.unacked--;
    if (u.consumer) u.consumer.unacked--;
  }
  return out;
}

function unknownTag(what: string, tag: number): ProtocolError {
  return new ProtocolError(
    QueueErrorCode.UnknownDeliveryTag,
    `Cannot ${what} delivery tag ${tag}: unknown on this connection`,
    { deliveryTag: tag },
  );
}

/**
 * The queue engine's public vocabulary: exchange and queue options, publish and consume
 * options, what a consumer receives ({@linkcode Delivery}), where a connection's output
 * goes ({@linkcode ConnectionSink}), and the status shapes.
 *
 * @module
 */
import type { ProtocolError } from "../wire/mod.ts";
import type { QueueStoreOptions } from "./store.ts";

/**
 * The props key under which a protocol adapter keeps a message's properties in its
 * encoded form (AMQP: the content-header property bytes, sent again as they came). The
 * engine drops it when it changes a message's props (dead-lettering).
 */
export const ENCODED_PROPS_KEY = "amqp";

/** Exchange types. */
export type ExchangeType = "direct" | "fanout" | "topic" | "headers";

/** Options of {@linkcode QueueEngine.declareExchange}. */
export interface ExchangeOptions {
  /** Survives restarts. @default {true} */
  durable?: boolean;
  /** Deleted when its last binding goes. @default {false} */
  autoDelete?: boolean;
  /** Only check that it exists. @default {false} */
  passive?: boolean;
  /** Clients may not publish to it, only bind it (AMQP `internal`). @default {false} */
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
  /** The engine entered (true) or left (false) memory pressure. */
  memoryPressure?(blocked: boolean): void;
}

/** Options of {@linkcode QueueEngine}. */
export interface QueueEngineOptions extends QueueStoreOptions {
  /** SQLite file for durable state; in memory only when absent. */
  path?: string;
  /** Called for engine events (`q.declared`, `msg.redelivered`, `store.error`). */
  onEvent?: (ev: string, fields: Record<string, unknown>) => void;
  /** Wall clock for message TTLs and queue expiry, ms. @default {Date.now} */
  now?: () => number;
  /** Bytes of message bodies the queues may hold before memory pressure (0 = no limit). @default {0} */
  maxMemory?: number;
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

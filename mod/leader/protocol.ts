/**
 * The leader/follower job's names and messages on the queue. Followers publish requests
 * and final lists to the direct exchange (keys `request`, `final`) that the leader's
 * queue is bound to; the leader grants a turn through the direct exchange (key
 * `grant.<id>`) and announces each turn on the fanout exchange before granting it; the
 * turn's holder publishes its value to the fanout; every follower consumes the fanout.
 * Because one engine routes every fanout message to every follower's queue in the same
 * order, a follower keeps a value only when it belongs to the turn last announced, so a
 * late write of a timed-out holder is dropped by everyone alike.
 *
 * @module
 */
import type { QueueMessage, ReturnedMessage } from "../queue/mod.ts";

/** Direct exchange: requests, finals, grants. */
export const DIRECT_EXCHANGE = "lf.direct";
/** Fanout exchange: turn announcements, writes, the end. */
export const FANOUT_EXCHANGE = "lf.values";
/** The leader's request queue. */
export const LEADER_QUEUE = "lf.leader";
/** Largest value a follower writes (values are 0..MAX_VALUE). */
export const MAX_VALUE = 1000;

/** Routing key of a follower's grants. */
export function grantKey(id: string): string {
  return `grant.${id}`;
}

/** A message of the job. */
export type JobMessage =
  | { type: "request"; id: string }
  | { type: "final"; id: string; values: number[] }
  | { type: "grant"; turn: number }
  | { type: "turn"; turn: number; follower: string }
  | { type: "write"; turn: number; follower: string; value: number }
  | { type: "end"; turns: number; writes: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a job message (JSON, so `queue-ctl get` shows it readably). */
export function encodeJob(m: JobMessage): Uint8Array {
  return encoder.encode(JSON.stringify(m));
}

/** Decodes a job message; undefined for anything malformed. */
export function decodeJob(m: QueueMessage): JobMessage | undefined {
  try {
    const v = JSON.parse(decoder.decode(m.body));
    if (v && typeof v === "object" && typeof v.type === "string") return v as JobMessage;
  } catch {
    // not ours
  }
  return undefined;
}

/** The channel operations the job needs (a `QueueClient` or an embedded `LocalChannel`). */
export interface JobChannel {
  assertExchange(
    exchange: string,
    type: "direct" | "fanout" | "topic",
    options?: { durable?: boolean; autoDelete?: boolean },
  ): Promise<unknown>;
  assertQueue(
    queue: string,
    options?: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean },
  ): Promise<{ queue: string }>;
  bindQueue(queue: string, exchange: string, key?: string): Promise<void>;
  purgeQueue(queue: string): Promise<unknown>;
  consume(
    queue: string,
    onMessage: (m: QueueMessage) => void,
    options?: { noAck?: boolean },
  ): Promise<{ consumerTag: string }>;
  publish(
    exchange: string,
    key: string,
    body: Uint8Array,
    options?: { mandatory?: boolean },
  ): boolean;
  close(): Promise<void>;
}

/** What a follower needs beyond {@linkcode JobChannel}: a `QueueClient` or an `AmqpClient`. */
export interface FollowerChannel extends JobChannel {
  /** Whether the connection has ended. */
  readonly closed: boolean;
  /** Called when the connection ends. */
  onClose?(err?: unknown): void;
  /** Called for an asynchronous error. */
  onError?(err: Error): void;
  /** Called for a mandatory message nobody took. */
  onReturn?(r: ReturnedMessage): void;
  /** Resolves once the server handled everything sent before. */
  sync(): Promise<void>;
}

/** Declares the two exchanges (transient: the job lives as long as its leader). */
export async function declareExchanges(ch: JobChannel): Promise<void> {
  await ch.assertExchange(DIRECT_EXCHANGE, "direct", { durable: false });
  await ch.assertExchange(FANOUT_EXCHANGE, "fanout", { durable: false });
}

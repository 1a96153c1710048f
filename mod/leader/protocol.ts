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
 * {@linkcode LEADER_JOB_FRAMES} lists every message with its fields: it is the table in
 * docs/queue.md (tests/protocol_docs_test.ts compares the two and checks it field for field
 * against {@linkcode JobMessage}, the type every sender encodes), and
 * {@linkcode decodeJob} refuses a body it does not describe.
 *
 * @module
 */
import type { QueueMessage, ReturnedMessage } from "../queue/mod.ts";
import { frameProblems, type FrameSpec } from "../wire/mod.ts";

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

/** The routes of the job's messages: who publishes them for whom. */
export const LEADER_JOB_ROUTES = {
  toLeader: "follower → leader",
  toFollower: "leader → follower",
  fromLeader: "leader → everyone",
  fromHolder: "holder → everyone",
} as const;

/** Every message of the job (JSON bodies; `type` is the table's `t`). */
export const LEADER_JOB_FRAMES = [
  {
    t: "request",
    route: LEADER_JOB_ROUTES.toLeader,
    fields: "id",
    reply: "",
    note: "to `lf.direct`, key `request`, mandatory (retried while it comes back): " +
      "follower `id` wants a turn",
  },
  {
    t: "turn",
    route: LEADER_JOB_ROUTES.fromLeader,
    fields: "turn, follower",
    reply: "",
    note: "to `lf.values`: turn `turn` is `follower`'s; only its write for this turn counts",
  },
  {
    t: "grant",
    route: LEADER_JOB_ROUTES.toFollower,
    fields: "turn",
    reply: "",
    note: "to `lf.direct`, key `grant.<id>`, after the `turn`: write now",
  },
  {
    t: "write",
    route: LEADER_JOB_ROUTES.fromHolder,
    fields: "turn, follower, value",
    reply: "",
    note: "to `lf.values`: the holder's value (0..1000); the leader starts the next turn " +
      "when it sees it, or after `--turn-timeout`",
  },
  {
    t: "end",
    route: LEADER_JOB_ROUTES.fromLeader,
    fields: "turns, writes",
    reply: "",
    note: "to `lf.values`: the job is over (`turns` granted, `writes` seen)",
  },
  {
    t: "final",
    route: LEADER_JOB_ROUTES.toLeader,
    fields: "id, values",
    reply: "",
    note: "to `lf.direct`, key `final`: follower `id`'s list, for the verdict",
  },
] as const satisfies readonly FrameSpec[];

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

/**
 * Decodes a job message; undefined for anything malformed: not JSON, or a type or fields
 * {@linkcode LEADER_JOB_FRAMES} does not describe.
 */
export function decodeJob(m: QueueMessage): JobMessage | undefined {
  try {
    const v = JSON.parse(decoder.decode(m.body));
    if (
      v && typeof v === "object" && !Array.isArray(v) && typeof v.type === "string" &&
      frameProblems(LEADER_JOB_FRAMES, v, { key: "type" }).length === 0
    ) return v as JobMessage;
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

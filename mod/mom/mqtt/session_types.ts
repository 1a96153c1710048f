/**
 * The interface of an MQTT session ({@linkcode MqttSession} in `session.ts`): the MOM
 * operations it asks for, their results, what a step outputs, the server's configuration and
 * the inbox messages it delivers.
 *
 * @module
 */
import type { Packet, Properties } from "./packet.ts";
import type { SessionSubscription } from "./session_subscriptions.ts";

/** A message from the MOM inbox. */
export interface InboxMessage {
  /** Inbox position. */
  seq: number;
  topic: string;
  payload: Uint8Array;
  /** Publishing MOM user. */
  from: number;
  /** Highest QoS the publication allows (2 for native publications). */
  qos: 0 | 1 | 2;
  /** Retained message sent at subscription time. */
  retained?: boolean;
  /** The publication's retain flag (for "retain as published"). */
  retain?: boolean;
  /** v5 properties the publisher sent (forwarded). */
  properties?: Properties;
  /** Wall-clock time (ms) the message expires at (v5 message expiry interval), if any. */
  expiresAt?: number;
}

/** What `open` resolves to. */
export interface OpenedSession {
  user: number;
  /** Whether an earlier session was resumed. */
  present: boolean;
  subscriptions: SessionSubscription[];
  /** Outgoing QoS 2 deliveries whose PUBREC came: packet id and inbox position. */
  released: Array<{ packetId: number; seq: number; complete: boolean }>;
  /** Incoming QoS 2 packet ids published but not yet released. */
  received: number[];
  /** Deliveries at or before this inbox position may have been sent before (DUP). */
  dupUpTo: number;
}

/** The MOM operations a session asks for. Those with an `id` are answered by `result()`. */
export type MomOperation =
  | {
    op: "open";
    id: number;
    clientId: string;
    clean: boolean;
    /** Session expiry interval in seconds (0xFFFFFFFF: never). */
    expiry: number;
    username?: string;
    password?: Uint8Array;
  }
  | { op: "subscribe"; id: number; user: number; subscription: SessionSubscription }
  | { op: "unsubscribe"; id: number; user: number; filter: string }
  | {
    op: "publish";
    /** Absent at QoS 0: nothing waits for it. */
    id?: number;
    user: number;
    topic: string;
    payload: Uint8Array;
    qos: 0 | 1 | 2;
    retain: boolean;
    properties: Properties;
    /** QoS 2: the packet id to remember in the same commit. */
    received?: number;
  }
  | { op: "receive"; id: number; user: number; after: number; from: number; max: number }
  | { op: "released"; user: number; packetId: number; seq: number }
  | { op: "completed"; user: number; packetId: number }
  | { op: "forget"; user: number; packetId: number }
  | { op: "retained"; id: number; user: number; filter: string }
  | {
    op: "end";
    user: number;
    /** Inbox position acknowledged. */
    after: number;
    /** Session expiry interval in seconds; 0 destroys the user now. */
    expiry: number;
  };

/** The result of an operation: a value, or an error code of the MOM with its message. */
export type OperationResult =
  | { ok: true; value?: unknown }
  | { ok: false; code: string; message: string };

/** What the gateway has to do after a call. */
export interface SessionOutput {
  packets: Packet[];
  operations: MomOperation[];
  /** Close the connection after sending `packets`. */
  close: boolean;
}

/** Limits and policies of the server, the same for every session. */
export interface SessionConfig {
  /** Largest packet accepted from a client. */
  maxPacketSize: number;
  /** In-flight QoS 1 / 2 publications accepted from a client (v5 receive maximum). */
  receiveMaximum: number;
  /** Deliveries one `receive` asks for at most. */
  receiveBatch: number;
  /** Whether CONNECT must carry credentials (checked by `open`). */
  authRequired?: boolean;
}

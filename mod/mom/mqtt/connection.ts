/**
 * One MQTT client connection of the daemon's gateway: reads packets into its
 * {@linkcode MqttSession}, carries out the session's MOM operations on the daemon in process
 * ({@linkcode DaemonPort}) or through the gateway ({@linkcode MqttConnectionHost}: what
 * outlives a connection), and writes the session's packets, one write per session step,
 * holding deliveries back while the socket is congested.
 *
 * @module
 */
import type { EventSink, Logger } from "../../events/mod.ts";
import { type Message, sleep } from "../../wire/mod.ts";
import { decodePacket, encodePackets, PacketReader } from "./codec.ts";
import { type DaemonPort, DaemonRequestError } from "./daemon_port.ts";
import { MqttProtocolError, type Packet, Reason } from "./packet.ts";
import {
  type InboxMessage,
  type MomOperation,
  MqttSession,
  type OpenedSession,
  type OperationResult,
  type SessionConfig,
  type SessionOutput,
} from "./session.ts";
import { decodeMeta, publicationMetaBytes } from "./meta.ts";

/** How long a `receive` waits in the daemon before it is asked again. */
const RECEIVE_WAIT_MS = 25_000;
/** Bytes queued on a client's socket above which no more deliveries are asked for. */
const HIGH_WATER = 1024 * 1024;
/** How long a connection whose input was bad waits for its session to end. */
const FAIL_WAIT_MS = 15_000;

/** What a connection asks of its gateway: the operations that outlive one connection. */
export interface MqttConnectionHost {
  readonly events: EventSink;
  readonly log: Logger;
  /** The gateway is closing. */
  readonly closed: boolean;
  /** Authentication, takeover, then the MOM user of the session. */
  open(c: MqttConnection, op: Extract<MomOperation, { op: "open" }>): Promise<OpenedSession>;
  /** A subscription (and its MQTT options). */
  subscribe(c: MqttConnection, op: Extract<MomOperation, { op: "subscribe" }>): Promise<void>;
  /** The end of a subscription. */
  unsubscribe(c: MqttConnection, op: Extract<MomOperation, { op: "unsubscribe" }>): Promise<void>;
  /** The broker's retained messages for a new subscription. */
  retained(c: MqttConnection, op: Extract<MomOperation, { op: "retained" }>): Promise<void>;
  /** The QoS 2 bookkeeping the session asks to keep or drop. */
  stored(c: MqttConnection, op: MomOperation): void;
  /** The end of the connection's session (will, expiry or destruction). */
  end(c: MqttConnection, op: Extract<MomOperation, { op: "end" }>): Promise<void>;
}

/** Meta key prefix of a user's incoming QoS 2 packet ids (in the daemon's file). */
export function receivedPrefix(user: number): string {
  return `mqtt.q2.${user}.`;
}

/** The session's view of a `messages` reply. */
function inboxMessages(reply: Message): InboxMessage[] {
  const rows = reply.messages as Array<
    { seq: number; topic: string; payload: Uint8Array; from: number; meta?: Uint8Array }
  >;
  const out: InboxMessage[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const m: InboxMessage = {
      seq: r.seq,
      topic: r.topic,
      payload: r.payload,
      from: r.from,
      qos: 2,
    };
    if (r.meta !== undefined) decodeMeta(r.meta, m);
    out[i] = m;
  }
  return out;
}

/** One client connection: its socket, its {@linkcode MqttSession}, its daemon requests. */
export class MqttConnection {
  readonly #gateway: MqttConnectionHost;
  readonly #conn: Deno.TcpConn;
  readonly session: MqttSession;
  readonly port: DaemonPort;
  readonly #reader: PacketReader;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing = false;
  #closing = false;
  #done = false;
  /** A receive held back while the socket is congested. */
  #heldReceive: Extract<MomOperation, { op: "receive" }> | undefined;
  #ended: Promise<void> | undefined;
  #endResolve!: () => void;
  #drainWaiters: Array<() => void> = [];
  #endStarted = false;
  /** An `open` is being carried out. */
  #opening = false;
  /** A packet could not be read (the session is told, in order). */
  #failed = false;
  #sessionDoneResolve!: () => void;
  /** Resolves when the session has said to close. */
  readonly #sessionDone = new Promise<void>((resolve) => this.#sessionDoneResolve = resolve);

  constructor(
    gateway: MqttConnectionHost,
    conn: Deno.TcpConn,
    config: SessionConfig,
    port: DaemonPort,
  ) {
    this.#gateway = gateway;
    this.#conn = conn;
    this.session = new MqttSession(config, Date.now());
    this.port = port;
    this.#reader = new PacketReader({ maxPacketSize: config.maxPacketSize });
    this.#ended = new Promise((resolve) => this.#endResolve = resolve);
  }

  async run(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (!this.#closing) {
        let n: number | null;
        try {
          n = await this.#conn.read(buf);
        } catch {
          break;
        }
        if (n === null) break;
        let raws;
        try {
          raws = this.#reader.push(buf.subarray(0, n));
        } catch (err) {
          this.#protocolError(err);
          break;
        }
        const now = Date.now();
        for (const raw of raws) {
          let packet: Packet;
          try {
            packet = decodePacket(raw, this.session.level);
          } catch (err) {
            this.#protocolError(err);
            break;
          }
          this.#apply(this.session.packet(packet, now));
          if (this.#closing) break;
        }
        if (this.#reader.error && !this.#closing) this.#protocolError(this.#reader.error);
      }
    } finally {
      if (this.#failed) {
        // the session handles the bad packet after those before it (bounded wait)
        const done = new AbortController();
        try {
          await Promise.race([this.#sessionDone, sleep(FAIL_WAIT_MS, done.signal)]);
        } finally {
          done.abort(); // no 15 s timer left behind
        }
      }
      this.#apply(this.session.connectionLost(Date.now()));
      await this.#flushed();
      this.#closeSocket();
      await this.#ended;
      this.port.close();
    }
  }

  #protocolError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#gateway.events.emit("mqtt.error", {
      client: this.session.clientId || null,
      reason: message,
    });
    const e = err instanceof MqttProtocolError
      ? err
      : new MqttProtocolError(Reason.UnspecifiedError, message);
    this.#failed = true;
    this.#apply(this.session.fail(e, Date.now()));
    this.#closing = true;
  }

  /** Keep alive. */
  tick(now: number): void {
    if (this.session.deadline < now) this.#apply(this.session.tick(now));
  }

  /** Another connection took the session over. */
  async takeOver(): Promise<void> {
    this.#apply(this.session.kick(Reason.SessionTakenOver, "Session taken over", Date.now()));
    await this.#ended;
  }

  /** Ends the connection as a network failure would (the daemon is stopping). */
  async shutdown(): Promise<void> {
    this.#apply(this.session.kick(Reason.ServerShuttingDown, "Server shutting down", Date.now()));
    this.#closeSocket();
    await this.#ended;
  }

  #apply(out: SessionOutput): void {
    const level = this.session.level;
    const packets = out.packets;
    if (packets.length > 0) this.#write(encodePackets(packets, level));
    for (const op of out.operations) this.#execute(op);
    if (out.close) {
      this.#sessionDoneResolve();
      // a session that never opened has nothing to end
      if (!this.#endStarted && !this.#opening && !out.operations.some((o) => o.op === "end")) {
        this.#endResolve();
      }
    }
    if (out.close && !this.#closing) {
      this.#closing = true;
      void this.#flushed().then(() => this.#closeSocket());
    }
  }

  #result(id: number, r: OperationResult): void {
    this.#apply(this.session.result(id, r, Date.now()));
  }

  #execute(op: MomOperation): void {
    const g = this.#gateway;
    const settle = (id: number, p: Promise<unknown>) => {
      p.then(
        (value) => this.#result(id, { ok: true, value }),
        (err) =>
          this.#result(id, {
            ok: false,
            code: err instanceof DaemonRequestError ? err.code : "internal",
            message: err instanceof Error ? err.message : String(err),
          }),
      );
    };
    switch (op.op) {
      case "open":
        this.#opening = true;
        settle(
          op.id,
          g.open(this, op).then((s) => {
            this.#opening = false;
            if (this.session.closed) {
              // the connection ended while its session was being opened: end it now
              this.#startEnd({ op: "end", user: s.user, after: 0, expiry: op.expiry });
            }
            g.events.emit("mqtt.connected", {
              client: op.clientId,
              user: s.user,
              level: this.session.level,
              present: s.present,
            });
            return s;
          }, (err) => {
            this.#opening = false;
            throw err;
          }),
        );
        return;
      case "subscribe":
        settle(op.id, g.subscribe(this, op));
        return;
      case "unsubscribe":
        settle(op.id, g.unsubscribe(this, op));
        return;
      case "retained":
        settle(op.id, g.retained(this, op).catch(() => {}));
        return;
      case "publish": {
        const fields = {
          user: op.user,
          topic: op.topic,
          payload: op.payload,
          // the publication's meta (undefined for QoS 2 without extras)
          meta: publicationMetaBytes(op.qos, op.retain, op.properties, Date.now()),
        };
        if (op.id === undefined) {
          // QoS 0 is at most once: never on disk (a retained one is, so the broker keeps it)
          this.port.send("publish", fields, { transient: !op.retain });
          return;
        }
        const meta = op.received === undefined
          ? undefined
          : { [`${receivedPrefix(op.user)}${op.received}`]: 1 };
        this.#call(op.id, "publish", fields, meta);
        return;
      }
      case "receive":
        if (this.#queued > HIGH_WATER) {
          this.#heldReceive = op;
          return;
        }
        this.#receive(op);
        return;
      case "released":
      case "completed":
      case "forget":
        g.stored(this, op);
        return;
      case "end":
        this.#startEnd(op);
        return;
    }
  }

  #startEnd(op: Extract<MomOperation, { op: "end" }>): void {
    if (this.#endStarted) return;
    this.#endStarted = true;
    this.#gateway.end(this, op).catch((err) =>
      this.#gateway.log.warn(`MQTT session end: ${String(err)}`)
    ).finally(() => this.#endResolve());
  }

  /**
   * Asks the daemon and hands the answer to the session: at once when the daemon replies
   * later (a waiting receive answered by a publication: no promise on a delivery's path),
   * on the next microtask when it answers during the call (so operations stay in order).
   */
  #call(
    id: number,
    t: string,
    fields: Record<string, unknown>,
    meta?: Record<string, number>,
    map: (reply: Message) => unknown = (r) => r,
    retry = false,
  ): void {
    let sync = true;
    this.port.call(t, fields, (err, reply) => {
      const deliver = () => {
        if (err === undefined) {
          this.#result(id, { ok: true, value: map(reply!) });
        } else if (retry && !this.#closing && !this.#gateway.closed) {
          // the daemon could not answer (user gone, restarting): ask again shortly
          setTimeout(() => this.#result(id, { ok: true, value: [] }), 200);
        } else {
          this.#result(id, {
            ok: false,
            code: err instanceof DaemonRequestError ? err.code : "internal",
            message: err.message,
          });
        }
      };
      if (sync) queueMicrotask(deliver);
      else deliver();
    }, meta);
    sync = false;
  }

  #receive(op: Extract<MomOperation, { op: "receive" }>): void {
    this.#call(
      op.id,
      "receive",
      { user: op.user, after: op.after, from: op.from, max: op.max, wait: RECEIVE_WAIT_MS },
      undefined,
      inboxMessages,
      true,
    );
  }

  #write(bytes: Uint8Array): void {
    if (this.#done) return;
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    // an idle socket is written at once (a delivery's latency); while a write is in flight
    // what comes meanwhile goes out together after it
    if (!this.#writing) void this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#done) {
        const parts = this.#queue;
        this.#queue = [];
        const bytes = parts.length === 1 ? parts[0] : concat(parts);
        let off = 0;
        while (off < bytes.length) {
          off += await this.#conn.write(off === 0 ? bytes : bytes.subarray(off));
        }
        this.#queued -= bytes.length;
        if (this.#heldReceive && this.#queued <= HIGH_WATER / 2) {
          const op = this.#heldReceive;
          this.#heldReceive = undefined;
          this.#execute(op);
        }
      }
    } catch {
      this.#done = true;
      this.#closing = true;
      this.#queue = [];
    } finally {
      this.#writing = false;
      if (this.#queue.length === 0 || this.#done) {
        for (const w of this.#drainWaiters.splice(0)) w();
      }
    }
  }

  #flushed(): Promise<void> {
    if ((!this.#writing && this.#queue.length === 0) || this.#done) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #closeSocket(): void {
    if (this.#done && this.#closedSocket) return;
    this.#done = true;
    this.#closing = true;
    if (this.#closedSocket) return;
    this.#closedSocket = true;
    try {
      this.#conn.close();
    } catch {
      // closed
    }
  }

  #closedSocket = false;
}

/** `parts` in one buffer (the packets of one session step go out in one write). */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return bytes;
}

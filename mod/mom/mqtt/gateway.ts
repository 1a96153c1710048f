/**
 * The daemon's MQTT listener (`--mqtt HOST:PORT`): a thin TCP adapter around
 * {@linkcode MqttSession}, whose MOM operations it carries out on the daemon in process
 * ({@linkcode DaemonPort}): a client identifier is a MOM user of this daemon, SUBSCRIBE is a
 * MOM subscription, PUBLISH a MOM publication, deliveries come from the user's MOM inbox.
 *
 * The gateway also owns what outlives a connection: session takeover (a second connection
 * with the same client identifier closes the first), session expiry (a disconnected
 * session whose expiry interval passed is destroyed, with its MOM user), and wills
 * (published when a connection ends without DISCONNECT, after their delay).
 *
 * @module
 */
import { ConfigError, type HostPort, parseHostPort } from "../../config/mod.ts";
import type { RoleContext } from "../../process/mod.ts";
import type { EventSink, Logger } from "../../events/mod.ts";
import type { MomDaemon } from "../daemon.ts";
import { MAX_PAYLOAD_BYTES } from "../protocol.ts";
import { DaemonPort, DaemonRequestError } from "./daemon_port.ts";
import type { Will } from "./packet.ts";
import {
  forwardedProperties,
  type MomOperation,
  type OpenedSession,
  type SessionConfig,
} from "./session.ts";
import { MqttStore } from "./store.ts";
import { MqttConnection, type MqttConnectionHost, receivedPrefix } from "./connection.ts";
import { publicationMetaBytes } from "./meta.ts";

/** Options of {@linkcode MqttGateway}. */
export interface MqttGatewayOptions {
  /** Where to listen. */
  listen: HostPort;
  /** The daemon's data directory (`mqtt.sqlite` goes there). */
  dataDir: string;
  events: EventSink;
  log: Logger;
  /** Largest packet accepted. @default 1 MiB + 64 KiB */
  maxPacketSize?: number;
  /** In-flight QoS 1 / 2 publications accepted per client. @default 1024 */
  receiveMaximum?: number;
  /** User name → password; when set, CONNECT must carry one of them. */
  users?: Record<string, string>;
  /** Cluster secret; when set (and no `users`), CONNECT's password must be it. */
  secret?: string;
}

/** How often keep alives, session expiries and wills are checked. */
const SWEEP_MS = 250;
/** Deliveries one `receive` asks for at most. */
const RECEIVE_BATCH = 1_000;

/** MQTT over TCP for one daemon. `close()` is safe to call twice. */
export class MqttGateway implements MqttConnectionHost {
  readonly #daemon: MomDaemon;
  readonly #handlers: ConstructorParameters<typeof DaemonPort>[1];
  readonly #options: MqttGatewayOptions;
  readonly #store: MqttStore;
  readonly #config: SessionConfig;
  readonly #connections = new Set<MqttConnection>();
  /** Open connections by client identifier. */
  readonly #active = new Map<string, MqttConnection>();
  /** Wills waiting for their delay, by client identifier. */
  readonly #wills = new Map<string, { at: number; user: number; will: Will }>();
  readonly #port: DaemonPort;
  /** Per client whose connection ended: the last inbox position it handed out. */
  readonly #handed = new Map<string, number>();
  #listener: Deno.TcpListener | undefined;
  #acceptTask: Promise<void> | undefined;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #sweeping = false;

  constructor(
    daemon: MomDaemon,
    handlers: ConstructorParameters<typeof DaemonPort>[1],
    options: MqttGatewayOptions,
  ) {
    this.#daemon = daemon;
    this.#handlers = handlers;
    this.#options = options;
    this.#store = new MqttStore(`${options.dataDir}/mqtt.sqlite`);
    this.#port = new DaemonPort(daemon, handlers);
    this.#config = {
      maxPacketSize: options.maxPacketSize ?? MAX_PAYLOAD_BYTES + 64 * 1024,
      receiveMaximum: options.receiveMaximum ?? 1024,
      receiveBatch: RECEIVE_BATCH,
    };
    // sessions that were connected when the daemon stopped ended then
    const now = Date.now();
    for (const s of this.#store.sessions()) {
      if (s.endedMs === undefined) this.#store.endSession(s.clientId, s.expiry, now);
    }
  }

  /** The port listened on. */
  get port(): number {
    return (this.#listener?.addr as Deno.NetAddr | undefined)?.port ?? 0;
  }

  /** Starts listening. */
  start(): void {
    const l = this.#options.listen;
    this.#listener = Deno.listen({ hostname: l.hostname, port: l.port, transport: "tcp" });
    this.#acceptTask = this.#accept(this.#listener);
    this.#sweep = setInterval(() => this.#sweepNow(), SWEEP_MS);
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed
      }
      if (this.#closed) {
        conn.close();
        return;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // not every platform
      }
      const c = new MqttConnection(
        this,
        conn,
        this.#config,
        new DaemonPort(this.#daemon, this.#handlers),
      );
      this.#connections.add(c);
      c.run().finally(() => this.#connections.delete(c));
    }
  }

  /** Status for the daemon's `ctl status`. */
  status(): Record<string, unknown> {
    return {
      listen: `${this.#options.listen.hostname}:${this.port}`,
      connections: this.#connections.size,
      sessions: this.#store.sessions().length,
      clients: [...this.#active.values()].map((c) => c.session.status()),
    };
  }

  /** Closes the listener and every connection (their sessions end as a disconnect would). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    try {
      this.#listener?.close();
    } catch {
      // closed
    }
    await this.#acceptTask;
    await Promise.all([...this.#connections].map((c) => c.shutdown()));
    this.#port.close();
    this.#store.close();
  }

  get events(): EventSink {
    return this.#options.events;
  }

  get log(): Logger {
    return this.#options.log;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Carries out `open`: authentication, takeover, then the MOM user of the session. */
  async open(
    c: MqttConnection,
    op: Extract<MomOperation, { op: "open" }>,
  ): Promise<OpenedSession> {
    this.#authenticate(op.username, op.password);
    const previous = this.#active.get(op.clientId);
    if (previous && previous !== c) await previous.takeOver();
    // what earlier connections handed out may be handed again: with DUP
    const handed = this.#handed.get(op.clientId);
    this.#handed.delete(op.clientId);
    this.#active.set(op.clientId, c);
    // a returning client cancels the will of its last connection
    this.#wills.delete(op.clientId);
    try {
      return await this.#openSession(op, handed);
    } catch (err) {
      if (this.#active.get(op.clientId) === c) this.#active.delete(op.clientId);
      throw err;
    }
  }

  async #openSession(
    op: Extract<MomOperation, { op: "open" }>,
    handed: number | undefined,
  ): Promise<OpenedSession> {
    const stored = this.#store.session(op.clientId);
    const daemon = this.#daemon;
    if (stored && op.clean) await this.#destroy(stored.clientId, stored.user);
    if (stored && !op.clean && daemon.hasUser(stored.user)) {
      this.#store.putSession(op.clientId, stored.user, op.expiry);
      const taken = daemon.store.takenBy(stored.user) ?? 0;
      this.#store.pruneReleased(op.clientId, taken);
      const prefix = receivedPrefix(stored.user);
      const received = [...daemon.store.metaWithPrefix(prefix).keys()].map((k) =>
        Number(k.slice(prefix.length))
      );
      return {
        user: stored.user,
        present: true,
        subscriptions: this.#store.subscriptions(op.clientId),
        released: this.#store.released(op.clientId),
        received,
        dupUpTo: handed ?? daemon.store.nextPosition - 1,
      };
    }
    if (stored && !op.clean) this.#store.deleteSession(op.clientId);
    const created = await this.#port.request("create", {});
    const user = Number(created.user);
    this.#store.putSession(op.clientId, user, op.expiry);
    return { user, present: false, subscriptions: [], released: [], received: [], dupUpTo: 0 };
  }

  #authenticate(username: string | undefined, password: Uint8Array | undefined): void {
    const users = this.#options.users;
    const pw = password === undefined ? undefined : new TextDecoder().decode(password);
    if (users !== undefined) {
      if (username === undefined || pw === undefined || users[username] !== pw) {
        throw new DaemonRequestError("not_authorized", "Bad user name or password");
      }
      return;
    }
    if (this.#options.secret !== undefined && pw !== this.#options.secret) {
      throw new DaemonRequestError(
        "not_authorized",
        "Bad user name or password (the password must be the cluster secret)",
      );
    }
  }

  /** Destroys a session's MOM user and everything stored for it. */
  async #destroy(clientId: string, user: number): Promise<void> {
    if (this.#daemon.hasUser(user)) await this.#port.request("destroy", { user });
    this.#store.deleteSession(clientId);
    this.#daemon.store.deleteMeta(receivedPrefix(user), { prefix: true });
  }

  /** Carries out `end`: acknowledges, then destroys the session or starts its expiry. */
  async end(c: MqttConnection, op: Extract<MomOperation, { op: "end" }>): Promise<void> {
    const clientId = c.session.clientId;
    const mine = this.#active.get(clientId) === c;
    if (mine) this.#active.delete(clientId);
    if (op.expiry !== 0) this.#handed.set(clientId, c.session.cursor);
    try {
      await this.#port.request("receive", { user: op.user, after: op.after, max: 0, wait: 0 });
    } catch {
      // the user is gone already
    }
    const will = c.session.will;
    const expiryMs = op.expiry >= 0xffffffff ? Infinity : op.expiry * 1000;
    if (will) {
      if (will.delayMs === 0 || expiryMs === 0) await this.publishWill(op.user, will.will);
      else {this.#wills.set(clientId, {
          at: Date.now() + Math.min(will.delayMs, expiryMs),
          user: op.user,
          will: will.will,
        });}
    }
    if (!mine) return; // taken over: the new connection owns the session
    if (op.expiry === 0) {
      try {
        await this.#destroy(clientId, op.user);
      } catch (err) {
        // the broker is away: the sweep destroys it later
        this.#store.endSession(clientId, 0, Date.now());
        this.log.warn(`Cannot end MQTT session ${clientId} yet: ${String(err)}`);
      }
    } else {
      this.#store.endSession(clientId, op.expiry, Date.now());
    }
  }

  /** Publishes a will (as its session's user). */
  async publishWill(user: number, will: Will): Promise<void> {
    try {
      await this.#port.request("publish", {
        user,
        topic: will.topic,
        payload: will.payload,
        meta: publicationMetaBytes(
          will.qos,
          will.retain,
          forwardedProperties(will.properties),
          Date.now(),
        ),
      });
      this.events.emit("mqtt.will", { user, topic: will.topic });
    } catch (err) {
      this.log.warn(`Cannot publish a will on ${will.topic}: ${String(err)}`);
    }
  }

  /** Keep alives, due wills, expired sessions. */
  #sweepNow(): void {
    const now = Date.now();
    for (const c of this.#connections) c.tick(now);
    if (this.#sweeping) return;
    this.#sweeping = true;
    void (async () => {
      try {
        for (const [clientId, w] of [...this.#wills]) {
          if (w.at > now) continue;
          this.#wills.delete(clientId);
          await this.publishWill(w.user, w.will);
        }
        for (const s of this.#store.sessions()) {
          if (s.endedMs === undefined || this.#active.has(s.clientId)) continue;
          if (s.expiry >= 0xffffffff || s.endedMs + s.expiry * 1000 > now) continue;
          if (!this.#daemon.linkUp) break;
          await this.#destroy(s.clientId, s.user);
          this.events.emit("mqtt.expired", { client: s.clientId, user: s.user });
        }
      } catch (err) {
        this.log.warn(`MQTT sweep: ${String(err)}`);
      } finally {
        this.#sweeping = false;
      }
    })();
  }

  /** Carries out the storage operations of a session. */
  stored(c: MqttConnection, op: MomOperation): void {
    const clientId = c.session.clientId;
    if (op.op === "released") this.#store.putReleased(clientId, op.packetId, op.seq);
    else if (op.op === "completed") {
      this.#store.completeReleased(clientId, op.packetId);
      // records the inbox acknowledgement on disk covers are not needed any more
      this.#store.pruneReleased(clientId, this.#daemon.store.takenBy(op.user) ?? 0);
    } else if (op.op === "forget") {
      this.#daemon.store.deleteMeta(`${receivedPrefix(op.user)}${op.packetId}`);
    }
  }

  /** Carries out `subscribe` (and stores its MQTT options). */
  async subscribe(
    c: MqttConnection,
    op: Extract<MomOperation, { op: "subscribe" }>,
  ): Promise<void> {
    const own = !op.subscription.noLocal;
    const topic = op.subscription.filter;
    try {
      await c.port.request("subscribe", { user: op.user, topic, own });
    } catch (err) {
      if (!(err instanceof DaemonRequestError) || err.code !== "already_subscribed") throw err;
      // MQTT replaces a subscription to the same filter
      const before = this.#store.subscriptions(c.session.clientId).find((s) => s.filter === topic);
      if (before === undefined || before.noLocal !== op.subscription.noLocal) {
        await c.port.request("unsubscribe", { user: op.user, topic });
        await c.port.request("subscribe", { user: op.user, topic, own });
      }
    }
    this.#store.putSubscription(c.session.clientId, op.subscription);
  }

  /** Carries out `unsubscribe`. */
  async unsubscribe(
    c: MqttConnection,
    op: Extract<MomOperation, { op: "unsubscribe" }>,
  ): Promise<void> {
    try {
      await c.port.request("unsubscribe", { user: op.user, topic: op.filter });
    } finally {
      this.#store.deleteSubscription(c.session.clientId, op.filter);
    }
  }

  /** Carries out `retained`: the broker's retained messages for a new subscription. */
  async retained(
    c: MqttConnection,
    op: Extract<MomOperation, { op: "retained" }>,
  ): Promise<void> {
    await c.port.request("retained", { user: op.user, topic: op.filter });
  }
}

/** Parses `--mqtt`: `PORT` or `HOST:PORT` (127.0.0.1 when no host); undefined when off. */
export function mqttAddress(value: unknown): HostPort | undefined {
  if (value === undefined || value === null || value === "" || value === false) return undefined;
  const text = String(value);
  if (/^\d+$/.test(text)) return parseHostPort(`127.0.0.1:${text}`, "--mqtt", { allowZero: true });
  return parseHostPort(text, "--mqtt", { allowZero: true });
}

/** MQTT user names and passwords from the peers file's `mqtt_users` object, if any. */
export function mqttUsers(ctx: RoleContext): Record<string, string> | undefined {
  const raw = (ctx.cluster as { options?: Record<string, unknown> } | undefined)?.options
    ?.mqtt_users;
  if (raw === undefined) return undefined;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError('peers file: "mqtt_users" must be an object of user name → password');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") {
      throw new ConfigError(`peers file: mqtt_users.${k} must be a string (the password)`);
    }
    out[k] = v;
  }
  return out;
}

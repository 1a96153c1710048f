/**
 * The `daemon` role: one per machine. Local applications connect to it (loopback TCP, and
 * a Unix socket with `--socket`); it multiplexes all local users over one broker link.
 *
 * Guarantees: a publication is acknowledged to its application (`published {id}`) only
 * once it is in the daemon's SQLite outbox; the outbox is streamed to the broker in seq
 * order and an entry is deleted only when the broker acknowledged it (`puback`), so
 * publications made while the broker is away, or before a crash, are sent when the link is
 * back. Deliveries from the broker are stored in the users' inboxes together with the
 * delivery seq in one transaction before they are acknowledged (`dack`), so a resent
 * delivery is recognised and stored once. An inbox entry is deleted only when the
 * application acknowledges it (the `after` of its next `receive`).
 *
 * The daemon keeps its own users' subscriptions too (the broker confirmed each one): a
 * publication by a local user goes into the inboxes of the local users it reaches in the
 * same commit as its outbox entry, and the broker routes it to the other daemons only.
 *
 * @module
 */
import type { HostPort } from "../config/mod.ts";
import { type RoleContext, Tick } from "../process/mod.ts";
import {
  ErrorCode,
  fieldBytes,
  fieldInt,
  type Message,
  type PeerSession,
  ProtocolError,
  type RpcClient,
} from "../wire/mod.ts";
import type { DaemonStore, Delivery, OutboxEntry } from "./daemon_store.ts";
import { MAX_PAYLOAD_BYTES } from "./protocol.ts";
import { IdleCheckpoint } from "./idle_checkpoint.ts";
import { checkTopic } from "./topic.ts";
import type { SubscriptionIndex } from "./subscriptions.ts";
import { LocalUsers, topicError } from "./local_users.ts";
import { type StorageError, StoreFailureLatch } from "../storage/mod.ts";
import { BrokerLink } from "./broker_link.ts";
import { committedEntries } from "./inbox_memory.ts";
import { InboxReader } from "./inbox_reader.ts";
import { InboxQueue } from "./inbox_queue.ts";
import { localRecipients } from "./local_routing.ts";
import { DeliveryStream } from "./delivery_stream.ts";
import { OutboxStream } from "./outbox_stream.ts";
import {
  answerCommitted,
  commitPositions,
  noteDelivered,
  type PendingFlush,
  type PendingPublish,
  refuseBatch,
} from "./commit_batch.ts";
import { ReceiveWaiters } from "./receive_waiters.ts";

/**
 * A `publish` message from an in-process gateway (never from the wire: frames carry no
 * symbols) may carry meta values under this key, written in the publication's commit.
 */
export const COMMIT_META: unique symbol = Symbol("commit meta");

/**
 * A `publish` message from an in-process gateway with `true` under this key is at most once
 * (MQTT QoS 0): it is never written to disk. Its local recipients get it from memory in
 * publish order among the publisher's other publications (a recipient whose receives do
 * not keep up, or a daemon crash, loses it); the other daemons get it through the broker
 * when everything this daemon published before it has been sent there, else not at all.
 * Nothing answers it. While local subscriptions are being synced it is published durably.
 */
export const TRANSIENT: unique symbol = Symbol("transient");

/**
 * The daemon: the wiring of its pieces, the publish path and the commit. The pieces are in
 * their own modules: the broker link (`broker_link.ts`), users and subscriptions
 * (`local_users.ts`), the outbox stream (`outbox_stream.ts`), the broker's deliveries
 * (`delivery_stream.ts`), deliveries waiting for the commit (`inbox_queue.ts`), receives
 * (`inbox_reader.ts`), what a commit answers (`commit_batch.ts`), local routing
 * (`local_routing.ts`), waiting receives (`receive_waiters.ts`) and the role (`daemon_role.ts`).
 */
export class MomDaemon {
  readonly #ctx: RoleContext;
  readonly #store: DaemonStore;
  readonly #link: BrokerLink;
  /** The users and their subscriptions, and the requests that manage them. */
  readonly #local: LocalUsers;
  /** `#local`'s sets, read on every publication and delivery. */
  readonly #users: Set<number>;
  readonly #subs: SubscriptionIndex;
  /** Whether `#subs` matches the broker's catalogue (false after an upgrade, until synced). */
  #subsSynced: boolean;
  readonly #waiters = new ReceiveWaiters();
  #lastSeq: number;
  #seqReserved: number;
  #pubAcked = 0;
  #pubAckPending = 0;
  /** The outbox stream to the broker (early sends and the pump). */
  readonly #outbox: OutboxStream;
  /** Seq of the last durable publication accepted (committed or not). */
  #lastDurableSeq: number;
  /** At-most-once publications accepted, and those the other daemons did not get. */
  #transient = 0;
  #transientNotSent = 0;
  /** The broker's deliveries: dseqs, duplicates, `dack`s. */
  readonly #deliveries: DeliveryStream;
  #out: PendingPublish[] = [];
  /** Deliveries waiting for the next commit. */
  readonly #inbox: InboxQueue;
  /** The receives: inbox memory, acknowledgements, collection. */
  readonly #reader: InboxReader;
  #flushes: PendingFlush[] = [];
  /** Publications and flushes held while local subscriptions are being synced. */
  #held: Array<PendingPublish | PendingFlush> | undefined;
  readonly #tick = new Tick(() => this.#flushOrFail());
  readonly #idle: IdleCheckpoint;
  #closed = false;
  #sentEarly = 0;
  /**
   * Whether a user of another daemon has a subscription (the broker says, see `interest.ts`):
   * if not, at-most-once publications stay here. True until the broker says otherwise.
   */
  #othersSubscribe = true;
  /** At-most-once publications kept local because no other daemon subscribes. */
  #transientLocal = 0;
  /** Publications accepted from local applications. */
  published = 0;
  /** Deliveries stored into local inboxes (one per user). */
  delivered = 0;

  readonly #storeFailure: StoreFailureLatch;
  /** Resolves when a write to the database failed: the daemon stopped acknowledging. */
  get failed(): Promise<StorageError> {
    return this.#storeFailure.failed;
  }

  constructor(ctx: RoleContext, store: DaemonStore, broker: HostPort) {
    this.#ctx = ctx;
    this.#store = store;
    this.#storeFailure = new StoreFailureLatch(ctx);
    this.#inbox = new InboxQueue(store, this.#waiters);
    this.#link = new BrokerLink(ctx, broker, {
      attach: (c, signal) => this.#attach(c, signal),
      up: (c) => this.#up(c),
      onMessage: (m) => this.#onBrokerMessage(m),
    });
    const link = this.#link;
    this.#idle = new IdleCheckpoint(() => store.checkpoint());
    this.#local = new LocalUsers(ctx, store, {
      name: ctx.name,
      request: (msg) => this.#brokerRequest(msg),
      linkUp: () => this.linkUp,
      get client() {
        return link.client;
      },
      get signal() {
        return link.signal;
      },
      dropped: (user) => {
        this.#reader.recent.drop(user);
        this.#waiters.dropUser(user);
      },
      deliver: (delivery) => void this.#inbox.queue(delivery),
      schedule: () => this.#schedule(),
    });
    this.#users = this.#local.users;
    this.#reader = new InboxReader(
      store,
      this.#waiters,
      this.#users,
      () => this.#idle.wrote(),
      () => this.#tick.scheduleWithin(LAZY_COMMIT_MS),
    );
    this.#subs = this.#local.subs;
    this.#subsSynced = store.meta("subs_synced") === "1";
    // publications may reach the broker before they are committed here, so numbers up to
    // the reservation may be known to the broker: never reuse them after a restart
    this.#lastSeq = Math.max(store.lastSeq(), Number(store.meta("seq_reserved") ?? 0));
    this.#seqReserved = this.#lastSeq;
    this.#outbox = new OutboxStream(
      this.#link,
      (after, max) => store.outbox(after, max),
      store.lastSeq(),
      (text) => ctx.log.warn(text),
    );
    this.#lastDurableSeq = this.#outbox.committed;
    this.#deliveries = new DeliveryStream({
      send: (msg) => link.send(msg),
      get up() {
        return link.client !== undefined;
      },
    }, {
      lastDseq: Number(store.meta("last_dseq") ?? 0),
      brokerEpoch: store.meta("broker_epoch") ?? "",
      seen: store.seenFrom(),
    });
  }

  /** The daemon's store (for in-process gateways such as MQTT's). */
  get store(): DaemonStore {
    return this.#store;
  }

  /** The daemon's name (the prefix of its publication ids). */
  get name(): string {
    return this.#ctx.name;
  }

  /** Whether `user` is a user of this daemon. */
  hasUser(user: number): boolean {
    return this.#users.has(user);
  }

  /** Whether the broker link is up and attached. */
  get linkUp(): boolean {
    return this.#link.client !== undefined;
  }

  /** Starts the broker link (reconnects with capped, jittered backoff until closed). */
  start(): void {
    this.#link.start();
  }

  /** Frame handlers for application connections. */
  handlers(): Record<
    string,
    (msg: Message, s: PeerSession) => Message | undefined | Promise<Message>
  > {
    return {
      ...this.#local.handlers(),
      publish: (msg, s) => {
        const user = fieldInt(msg, "user", { min: 1 });
        if (!this.#users.has(user)) return this.#local.refuseUser(msg);
        let topic: string;
        try {
          topic = checkTopic(msg.topic);
        } catch (err) {
          topicError(err);
        }
        const payload = fieldBytes(msg, "payload");
        if (payload.length > MAX_PAYLOAD_BYTES) {
          throw new ProtocolError(
            ErrorCode.BadField,
            `Cannot publish: payload of ${payload.length} bytes is over ${MAX_PAYLOAD_BYTES}`,
          );
        }
        const seq = ++this.#lastSeq;
        if (seq > this.#seqReserved) {
          this.#seqReserved = seq + SEQ_RESERVATION;
          this.#store.setMeta({ seq_reserved: this.#seqReserved });
        }
        const entry: OutboxEntry = { seq, user, topic, payload, local: false };
        if (msg.meta !== undefined) entry.meta = fieldBytes(msg, "meta");
        if (
          (msg as { [TRANSIENT]?: boolean })[TRANSIENT] === true && !this.#held && this.#subsSynced
        ) {
          this.published++;
          this.#acceptTransient(entry);
          return undefined;
        }
        const pending: PendingPublish = {
          entry,
          session: s,
          rid: msg.rid,
        };
        const meta = (msg as { [COMMIT_META]?: Record<string, number> })[COMMIT_META];
        if (meta !== undefined) pending.meta = meta;
        this.published++;
        if (this.#held) this.#held.push(pending);
        else this.#accept(pending);
        return undefined;
      },
      flush: (msg, s) => {
        if (this.#held) {
          this.#held.push({ session: s, msg });
          return undefined;
        }
        this.#flushes.push({ session: s, msg });
        this.#schedule();
        return undefined;
      },
      receive: (msg, s) => {
        const user = fieldInt(msg, "user", { min: 1 });
        if (!this.#users.has(user)) return this.#local.refuseUser(msg);
        return this.#reader.receive(user, msg, s);
      },
    };
  }

  /** Queues a publication for the next commit and sends it to the broker when it can. */
  #accept(p: PendingPublish): void {
    const entry = p.entry;
    // local subscribers get it in the same commit as the outbox entry; the broker routes
    // it to the other daemons only
    entry.local = this.#subsSynced;
    this.#out.push(p);
    // a publication with commit meta (MQTT QoS 2: its packet id) leaves only once committed:
    // sent before and lost in a crash, its resend would be a second publication
    const early = p.meta === undefined;
    if (entry.local) this.#deliverLocally(entry, early, false);
    // overlap the broker hop with the local commit (the app is answered after the commit)
    if (early && this.#outbox.sendNow(entry, this.#lastDurableSeq)) this.#sentEarly++;
    this.#lastDurableSeq = entry.seq;
    this.#schedule();
  }

  /** An at-most-once publication (see TRANSIENT): from memory locally, sent now or never. */
  #acceptTransient(entry: OutboxEntry): void {
    entry.local = true;
    this.#transient++;
    this.#deliverLocally(entry, true, true);
    if (!this.#othersSubscribe) this.#transientLocal++;
    else if (!this.#outbox.sendNow(entry, this.#lastDurableSeq)) this.#transientNotSent++;
    this.#schedule();
  }

  /** Puts a local publication into the inboxes of the local users it reaches. */
  #deliverLocally(entry: OutboxEntry, early: boolean, transient: boolean): void {
    const users = localRecipients(this.#subs, this.#users, entry.topic, entry.user);
    if (users === undefined) return;
    const delivery: Delivery = {
      users,
      id: `${this.#ctx.name}:${entry.seq}`,
      topic: entry.topic,
      payload: entry.payload,
      from: entry.user,
    };
    if (entry.meta !== undefined) delivery.meta = entry.meta;
    if (transient) delivery.transient = true;
    this.#inbox.queueLocal(delivery, early, transient);
  }

  /**
   * Makes the local subscriptions match the broker's (a data directory from before they were
   * kept here). Until then this daemon's publications reach its own users through the
   * broker; to keep each publisher's order, new publications (and flushes) are held until
   * the broker has routed, and this daemon has received, every earlier one.
   */
  async #syncSubs(link: RpcClient): Promise<void> {
    if (this.#subsSynced || this.#held) return;
    this.#held = [];
    try {
      const lastSeq = () => this.#lastSeq;
      if (await this.#local.sync(lastSeq, () => this.#deliveries.received, link)) {
        this.#subsSynced = true;
      }
    } finally {
      const held = this.#held;
      this.#held = undefined;
      for (const h of held) {
        if ("entry" in h) this.#accept(h);
        else this.#flushes.push(h);
      }
      this.#schedule();
    }
  }

  /** Forgets the waiting receives of a closed connection. */
  sessionClosed(s: PeerSession): void {
    this.#waiters.sessionClosed(s);
  }

  /** Status fields for `ctl status`. */
  status(): Record<string, unknown> {
    this.#flushOrFail(); // deferred deletions first, so the sizes below are exact
    return {
      broker: this.#link.where,
      link: this.linkUp ? "up" : "down",
      users: [...this.#users],
      local_subscriptions: this.#subs.size,
      local_delivery: this.#subsSynced,
      inbox: this.#store.inboxSizes(),
      inbox_memory_bytes: this.#reader.recent.bytes,
      outbox: this.#store.outboxSize(this.#pubAcked) + this.#out.length,
      published: this.published,
      delivered: this.delivered,
      sent_early: this.#sentEarly,
      sent_from_disk: this.#outbox.sentStored,
      transient: this.#transient,
      transient_not_sent: this.#transientNotSent,
      transient_local: this.#transientLocal,
      others_subscribe: this.#othersSubscribe,
      last_seq: this.#lastSeq,
      acked_seq: this.#pubAcked,
      last_dseq: this.#deliveries.committed,
    };
  }

  /** Stops the link, writes what is pending, answers waiting receives. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#reader.collectNext();
    if (!this.#storeFailure.tripped) this.#flush();
    this.#closed = true;
    this.#deliveries.close();
    this.#tick.close();
    this.#idle.close();
    this.#outbox.close();
    await this.#link.close();
    this.#waiters.close();
  }

  #brokerRequest(msg: Message): Promise<Message> {
    return this.#link.request(msg);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#tick.schedule();
  }

  /**
   * A failed write leaves the in-memory streams ahead of the disk: stop writing and
   * acknowledging at once, emit `store.failed`, and resolve {@linkcode failed} so the role
   * exits 1; the restart resends whatever was not acknowledged.
   */
  #flushOrFail(): void {
    try {
      this.#flush();
    } catch (err) {
      this.#storeFailure.trip(err);
    }
  }

  #flush(): void {
    if (this.#closed || this.#storeFailure.tripped) return;
    const out = this.#out;
    const flushes = this.#flushes;
    const ack = this.#pubAckPending;
    const deliveries = this.#deliveries;
    const dseq = deliveries.received;
    if (
      out.length === 0 && this.#inbox.length === 0 && flushes.length === 0 &&
      ack <= this.#pubAcked && dseq === deliveries.committed && this.#reader.acksPending === 0
    ) return;
    this.#out = [];
    const incoming = this.#inbox.take();
    this.#flushes = [];
    const inboxAcks = this.#reader.takeAcks();
    const collect = this.#reader.takeCollect();
    const positions = commitPositions(out, dseq, deliveries.committed);
    const seen = deliveries.seen.takePending();
    let firstN: number;
    if (
      out.length === 0 && flushes.length === 0 && ack <= this.#pubAcked && seen.size === 0 &&
      inboxAcks.size === 0 && collect === undefined && dseq === deliveries.committed &&
      incoming.every((e) => e.transient)
    ) {
      // only at-most-once deliveries: their positions are reserved, nothing to write
      firstN = this.#store.skipPositions(incoming.length);
    } else {
      this.#idle.wrote();
      try {
        firstN = this.#store.commit(
          out.map((p) => p.entry),
          incoming,
          ack > this.#pubAcked ? ack : 0,
          positions,
          seen,
          inboxAcks,
          collect,
        );
      } catch (err) {
        refuseBatch(out, flushes, err);
        throw err;
      }
    }
    deliveries.seen.committed(seen);
    if (ack > this.#pubAcked) this.#pubAcked = ack;
    answerCommitted(out, flushes, this.#ctx.name, this.#ctx.events);
    if (out.length > 0) this.#outbox.committed = out[out.length - 1].entry.seq;
    // the inbox entries just committed, as receives hand them out (one object per message,
    // shared by its recipients)
    const entries = committedEntries(incoming, firstN);
    const woken = new Set<number>();
    this.delivered += noteDelivered(incoming, this.#waiters, this.#ctx.events, woken);
    deliveries.commit(dseq);
    this.#reader.recent.remember(incoming, entries);
    this.#waiters.wake(woken, incoming, entries);
    if (this.linkUp && this.#outbox.sent < this.#outbox.committed) this.#outbox.pump();
  }

  #onBrokerMessage(msg: Message): void {
    if (msg.t === "deliver") {
      const delivery = this.#deliveries.receive(msg, this.#users);
      if (delivery !== undefined) this.#inbox.queue(delivery);
      this.#schedule();
    } else if (msg.t === "interest") {
      // from the next publication on (the broker waits for this before confirming the
      // subscription that made it true)
      this.#othersSubscribe = msg.others !== false;
      this.#link.send({ t: "interest.ok", n: fieldInt(msg, "n", { min: 0 }) });
    } else if (msg.t === "puback") {
      const seq = fieldInt(msg, "seq", { min: 0 });
      if (seq > this.#pubAckPending) {
        // deleting acknowledged publications is not urgent: it rides along with the next
        // commit (or a lazy one), off the path of the next message
        this.#pubAckPending = seq;
        this.#tick.scheduleWithin(LAZY_COMMIT_MS);
      }
    }
  }

  /**
   * The attach on a new broker connection: the broker learns this daemon's epoch and what
   * it has committed, and says what it has seen.
   */
  async #attach(c: RpcClient, signal: AbortSignal): Promise<void> {
    const reply = await c.request({
      t: "attach",
      epoch: this.#store.epoch,
      broker: this.#deliveries.brokerEpoch,
      acked: this.#deliveries.committed,
    }, { timeoutMs: 5_000, signal });
    const deliveries = this.#deliveries;
    if (deliveries.attached(reply)) {
      this.#store.setMeta({ broker_epoch: deliveries.brokerEpoch, last_dseq: deliveries.received });
    }
    const seen = Number(reply.seen ?? 0);
    if (seen > this.#pubAckPending) this.#pubAckPending = seen;
    // a broker that does not say forwards everything as before
    this.#othersSubscribe = reply.others !== false;
    this.#outbox.sent = Math.max(seen, this.#pubAcked);
  }

  /** The link is up: send what waits, sync subscriptions if needed. */
  #up(c: RpcClient): void {
    this.#schedule();
    this.#outbox.pump();
    if (!this.#subsSynced) {
      this.#syncSubs(c).catch((err) =>
        this.#ctx.log.warn(`Cannot sync local subscriptions yet: ${String(err)}`)
      );
    }
  }
}

/** Publication numbers reserved on disk at a time (skipped after a restart). */
const SEQ_RESERVATION = 100_000;

/** How long deletions (acknowledged outbox and inbox entries) may wait for a commit. */
const LAZY_COMMIT_MS = 50;

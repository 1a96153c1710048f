/**
 * The daemon's users and their subscriptions, and the application requests that manage them
 * (`create`, `attach`, `subscribe`, `unsubscribe`, `retained`, `destroy`): each asks the
 * broker first, then writes the store and the in-memory sets the daemon routes with.
 *
 * @module
 */
import type { RoleContext } from "../process/mod.ts";
import {
  ErrorCode,
  fieldBool,
  fieldBytes,
  fieldInt,
  fieldString,
  type Message,
  ProtocolError,
  sleep,
} from "../wire/mod.ts";
import type { DaemonStore, Delivery } from "./daemon_store.ts";
import { MomErrorCode } from "./protocol.ts";
import { checkPattern, TopicError } from "./topic.ts";
import { SubscriptionIndex } from "./subscriptions.ts";

/** What {@linkcode LocalUsers} needs of its daemon. */
export interface LocalUsersHost {
  /** The daemon's name (for error texts). */
  readonly name: string;
  /** Sends a request to the broker (rejects while the link is down). */
  request(msg: Message): Promise<Message>;
  /** Whether the broker link is up and attached. */
  linkUp(): boolean;
  /** The attached connection (compared to see the link change), undefined while down. */
  readonly client: unknown;
  /** Aborts when the link is closed. */
  readonly signal: AbortSignal;
  /** `user` was destroyed: forget what memory keeps for it (inbox memory, waiting receives). */
  dropped(user: number): void;
  /** Queues a delivery (a retained message) for the next commit. */
  deliver(delivery: Delivery): void;
  /** Makes sure a commit runs at the end of this turn. */
  schedule(): void;
}

/** Checks of the broker's stream state while syncing subscriptions (then retried next link). */
const SYNC_ROUNDS = 500;
/** Pause between those checks. */
const SYNC_PAUSE_MS = 20;

/** Bit of meta byte 0 marking a retained message handed out at subscription time (MQTT). */
export const RETAINED_DELIVERY = 8;

/** A topic error as the protocol error an application gets. */
export function topicError(err: unknown): never {
  if (err instanceof TopicError) throw new ProtocolError(MomErrorCode.BadTopic, err.message);
  throw err;
}

/** The users of one daemon and their subscriptions (each confirmed by the broker). */
export class LocalUsers {
  /** The users living on this daemon. */
  readonly users = new Set<number>();
  /** The local users' subscriptions: their publications to each other stay on this daemon. */
  readonly subs = new SubscriptionIndex();
  readonly #ctx: RoleContext;
  readonly #store: DaemonStore;
  readonly #host: LocalUsersHost;

  /** Loads the users and subscriptions from `store`. */
  constructor(ctx: RoleContext, store: DaemonStore, host: LocalUsersHost) {
    this.#ctx = ctx;
    this.#store = store;
    this.#host = host;
    for (const u of store.users()) this.users.add(u);
    for (const sub of store.subs()) this.subs.add(sub.user, sub.pattern, sub.own);
  }

  /** Frame handlers for the requests that manage users and subscriptions. */
  handlers(): Record<string, (msg: Message) => Promise<Message>> {
    const host = this.#host;
    const store = this.#store;
    const events = this.#ctx.events;
    return {
      create: async () => {
        const reply = await host.request({ t: "user.create" });
        const user = fieldInt(reply, "user", { min: 1 });
        store.addUser(user);
        this.users.add(user);
        events.emit("user.created", { user });
        return { t: "created", user };
      },
      attach: async (msg) => {
        const user = fieldInt(msg, "user", { min: 1 });
        if (!host.linkUp() && this.users.has(user)) return { t: "attached", user };
        const reply = await host.request({ t: "user.attach", user });
        store.addUser(user);
        this.users.add(user);
        this.mirrorSubs(user, reply);
        return { t: "attached", user, subs: reply.subs ?? [] };
      },
      subscribe: async (msg) => {
        const user = await this.localUser(msg);
        let topic: string;
        try {
          topic = checkPattern(msg.topic);
        } catch (err) {
          topicError(err);
        }
        const own = fieldBool(msg, "own", false);
        await host.request({ t: "sub.add", user, topic, own });
        store.addSub(user, topic, own);
        this.subs.add(user, topic, own);
        events.emit("sub.added", { user, topic, own });
        return { t: "ok" };
      },
      unsubscribe: async (msg) => {
        const user = await this.localUser(msg);
        const topic = fieldString(msg, "topic", { maxLength: 1024 });
        await host.request({ t: "sub.remove", user, topic });
        store.removeSub(user, topic);
        this.subs.remove(user, topic);
        events.emit("sub.removed", { user, topic });
        return { t: "ok" };
      },
      retained: async (msg) => {
        // the broker's retained messages for a new subscription, into the user's inbox
        const user = await this.localUser(msg);
        const topic = fieldString(msg, "topic", { maxLength: 1024 });
        const reply = await host.request({ t: "retained", user, topic });
        const rows = Array.isArray(reply.messages) ? reply.messages as Message[] : [];
        for (const r of rows) {
          if (!this.users.has(user)) break;
          const meta = new Uint8Array(fieldBytes(r, "meta"));
          if (meta.length > 0) meta[0] |= RETAINED_DELIVERY;
          host.deliver({
            users: [user],
            id: fieldString(r, "id"),
            topic: fieldString(r, "topic"),
            payload: fieldBytes(r, "payload"),
            from: fieldInt(r, "from"),
            meta,
          });
        }
        host.schedule();
        return { t: "ok", count: rows.length };
      },
      destroy: async (msg) => {
        const user = await this.localUser(msg);
        const reply = await host.request({ t: "user.destroy", user });
        store.removeUser(user);
        this.users.delete(user);
        this.subs.removeUser(user);
        host.dropped(user);
        events.emit("user.destroyed", { user });
        return { t: "ok", removed: reply.removed ?? 0 };
      },
    };
  }

  /** Stores `user`'s subscriptions as a `user.attached` reply from the broker lists them. */
  mirrorSubs(user: number, reply: Message): void {
    const patterns = Array.isArray(reply.subs) ? reply.subs.map(String) : [];
    const own = new Set(Array.isArray(reply.own) ? reply.own.map(String) : []);
    this.#store.replaceSubs(user, patterns, own);
    this.subs.removeUser(user);
    for (const p of patterns) this.subs.add(user, p, own.has(p));
  }

  /**
   * Makes the local subscriptions match the broker's (a data directory from before they were
   * kept here): mirrors every user's, then waits (a bounded number of checks, while `link`
   * stays the attached connection) until the broker has seen every publication up to
   * `lastSeq()` and this daemon has received every delivery the broker numbered
   * (`received()`); then stores `subs_synced`. Returns whether it did.
   */
  async sync(lastSeq: () => number, received: () => number, link: unknown): Promise<boolean> {
    const host = this.#host;
    for (const user of [...this.users]) {
      const reply = await host.request({ t: "user.attach", user });
      if (this.users.has(user)) this.mirrorSubs(user, reply);
    }
    const barrier = lastSeq();
    for (let round = 0; round < SYNC_ROUNDS && host.client === link; round++) {
      const state = await host.request({ t: "stream.state" });
      if (Number(state.seen) >= barrier && received() >= Number(state.dseq)) {
        this.#store.setMeta({ subs_synced: 1 });
        this.#ctx.log.info("local subscriptions synced with the broker");
        return true;
      }
      await sleep(SYNC_PAUSE_MS, host.signal);
    }
    return false;
  }

  /** Answers a request for a user that is not (yet) local with the right error. */
  async refuseUser(msg: Message): Promise<never> {
    const user = await this.localUser(msg);
    throw new ProtocolError(
      ErrorCode.Unavailable,
      `Cannot ${msg.t} for user ${user}: it was attached meanwhile; try again`,
    );
  }

  /**
   * The `user` of `msg` if it lives here; else the error that says where it lives
   * (`wrong_daemon`, asking the broker) or that it does not exist (`unknown_user`).
   */
  async localUser(msg: Message): Promise<number> {
    const user = fieldInt(msg, "user", { min: 1 });
    if (this.users.has(user)) return user;
    if (this.#host.linkUp()) {
      let where: Message | undefined;
      try {
        where = await this.#host.request({ t: "user.where", user });
      } catch (err) {
        if (!(err instanceof ProtocolError) || err.code !== MomErrorCode.UnknownUser) throw err;
      }
      if (where) {
        throw new ProtocolError(
          MomErrorCode.WrongDaemon,
          `Cannot use user ${user} on daemon ${this.#host.name}: it lives on daemon ${
            String(where.daemon)
          }`,
        );
      }
    }
    throw new ProtocolError(
      MomErrorCode.UnknownUser,
      `Cannot use user ${user}: no such user on daemon ${this.#host.name}`,
    );
  }
}

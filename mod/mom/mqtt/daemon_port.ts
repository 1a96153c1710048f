/**
 * The daemon's application API, in process: an in-process gateway (MQTT's) calls the same
 * frame handlers a `MomClient` reaches over TCP, through a session object whose replies
 * resolve promises. Same stores, same acknowledgements, same events.
 *
 * @module
 */
import { type Message, type PeerSession, ProtocolError } from "../../wire/mod.ts";
import { COMMIT_META, type MomDaemon, TRANSIENT } from "../daemon.ts";

/** An error reply of the daemon: `code` is a MOM or wire error code. */
export class DaemonRequestError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "DaemonRequestError";
    this.code = code;
  }
}

type Handler = (msg: Message, s: PeerSession) => Message | undefined | Promise<Message>;

/**
 * One in-process connection to the daemon. Requests are the daemon's frames (`create`,
 * `subscribe`, `publish`, `receive`, …); a deferred reply (a waiting `receive`, a
 * `published` after the commit) resolves its promise. `close()` rejects what is waiting
 * and makes the daemon forget this connection's waiting receives.
 */
export class DaemonPort {
  readonly #daemon: MomDaemon;
  readonly #handlers: Record<string, Handler>;
  readonly #waiting = new Map<number, (err: Error | undefined, reply?: Message) => void>();
  readonly #session: PeerSession;
  #rid = 0;
  #closed = false;

  constructor(daemon: MomDaemon, handlers: Record<string, Handler>) {
    this.#daemon = daemon;
    this.#handlers = handlers;
    const reply = (req: Message, rep: Message) => {
      const done = this.#waiting.get(req.rid as number);
      if (done === undefined) return true;
      this.#waiting.delete(req.rid as number);
      if (rep.t === "error") done(new DaemonRequestError(String(rep.code), String(rep.message)));
      else done(undefined, rep);
      return true;
    };
    this.#session = {
      id: -1,
      data: {},
      remote: "in-process",
      reply,
      send: () => true,
      replyError: (req: Message | undefined, err: unknown) => {
        if (req) reply(req, toErrorFrame(err));
        return true;
      },
    } as unknown as PeerSession;
  }

  /** Sends request `t` and resolves with the daemon's reply. */
  request(
    t: string,
    fields: Record<string, unknown>,
    meta?: Record<string, number>,
  ): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      this.call(t, fields, (err, reply) => err ? reject(err) : resolve(reply!), meta);
    });
  }

  /**
   * Sends request `t`; `done` is called once with the reply or the error (synchronously
   * when the daemon answers at once, else when it replies: no promise in between, which
   * is what a delivery's latency needs).
   */
  call(
    t: string,
    fields: Record<string, unknown>,
    done: (err: Error | undefined, reply?: Message) => void,
    meta?: Record<string, number>,
  ): void {
    if (this.#closed) return done(new DaemonRequestError("closed", "Cannot ask: closed"));
    const rid = ++this.#rid;
    const msg: Message = { t, rid, ...fields };
    if (meta !== undefined) (msg as unknown as Record<symbol, unknown>)[COMMIT_META] = meta;
    const handler = this.#handlers[t];
    this.#waiting.set(rid, done);
    let r: Message | undefined | Promise<Message>;
    try {
      if (handler === undefined) throw new DaemonRequestError("bad_type", `No request ${t}`);
      r = handler(msg, this.#session);
    } catch (err) {
      this.#waiting.delete(rid);
      return done(toError(err));
    }
    if (r === undefined) return;
    if (!(r instanceof Promise)) {
      this.#waiting.delete(rid);
      return done(undefined, r);
    }
    r.then((m) => {
      if (this.#waiting.delete(rid)) done(undefined, m);
    }, (err) => {
      if (this.#waiting.delete(rid)) done(toError(err));
    });
  }

  /**
   * Sends request `t` with no reply expected (a QoS 0 publication); `transient`: an
   * at-most-once publication, never written to disk (see the daemon's `TRANSIENT`).
   * `fields` becomes the request (not copied: one object per QoS 0 publication).
   */
  send(t: string, fields: Record<string, unknown>, options: { transient?: boolean } = {}): void {
    if (this.#closed) return;
    const msg = fields as Message;
    msg.t = t;
    if (options.transient) (msg as unknown as Record<symbol, unknown>)[TRANSIENT] = true;
    try {
      const r = this.#handlers[t](msg, this.#session);
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // a QoS 0 publication the daemon refuses is dropped, as MQTT allows
    }
  }

  /** Rejects what waits and drops this connection's waiting receives. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#daemon.sessionClosed(this.#session);
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const done of waiting) done(new DaemonRequestError("closed", "closed"));
  }
}

function toError(err: unknown): Error {
  if (err instanceof ProtocolError) return new DaemonRequestError(err.code, err.message);
  return err instanceof Error ? err : new Error(String(err));
}

function toErrorFrame(err: unknown): Message {
  const e = toError(err);
  return {
    t: "error",
    code: e instanceof DaemonRequestError ? e.code : "internal",
    message: e.message,
  };
}

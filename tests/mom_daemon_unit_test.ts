import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { EventSink, Logger } from "../mod/events/sink.ts";
import { COMMIT_META, MomDaemon, TRANSIENT } from "../mod/mom/daemon.ts";
import { LINK_HEARTBEAT_MS, LINK_SILENCE_MS } from "../mod/mom/broker_link.ts";
import { pubsFrames } from "../mod/mom/pubs_frames.ts";
import { DaemonStore } from "../mod/mom/daemon_store.ts";
import type { RoleContext } from "../mod/process/mod.ts";
import type { Message, PeerSession } from "../mod/wire/mod.ts";

/** A session that records the replies it is given. */
function recordingSession(): { session: PeerSession; replies: Message[] } {
  const replies: Message[] = [];
  const session = {
    data: {},
    reply: (_req: Message, reply: Message) => {
      replies.push(reply);
      return true;
    },
    send: () => true,
  } as unknown as PeerSession;
  return { session, replies };
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The role context of an in-process daemon `d1` with its data in `dir`. */
function daemonContext(
  dir: string,
  signal: AbortSignal,
  listener?: (e: { ev: string; [k: string]: unknown }) => void,
): RoleContext {
  return {
    role: "daemon",
    name: "d1",
    listen: { hostname: "127.0.0.1", port: 0 },
    dataDir: dir,
    maxFrame: 1 << 20,
    logLevel: "error",
    events: new EventSink({ node: "d1", role: "daemon", listener }),
    log: new Logger({ node: "d1", role: "daemon", level: "error" }),
    signal,
    options: {},
    interactive: false,
  } as RoleContext;
}

Deno.test("daemon (in process): a receive that waits while a publication is uncommitted gets it before a later one, never skips it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mom-daemon-" });
  const store = new DaemonStore(`${dir}/daemon.sqlite`);
  const controller = new AbortController();
  const ctx = daemonContext(dir, controller.signal);
  // users 1 (publisher) and 2 (subscriber), as the broker confirmed them earlier
  store.addUser(1);
  store.addUser(2);
  store.addSub(2, "T/+", false);
  const daemon = new MomDaemon(ctx, store, { hostname: "127.0.0.1", port: 1 });
  try {
    const h = daemon.handlers();
    const pub = recordingSession();
    const sub = recordingSession();
    const publish = (n: number) =>
      h.publish({ t: "publish", user: 1, topic: "T/x", payload: new Uint8Array([n]) }, pub.session);
    const receive = (after: number) =>
      h.receive({ t: "receive", rid: 1, user: 2, after, max: 100, wait: 5_000 }, sub.session);

    // low load: a receive waiting before the publication is answered at once, before the commit
    assert.equal(receive(0), undefined);
    publish(1);
    assert.equal(sub.replies.length, 1);
    const first = sub.replies[0].messages as Array<{ seq: number; payload: Uint8Array }>;
    assert.deepEqual(first.map((m) => m.payload[0]), [1]);
    await nextTick();
    // low load again: the last commit was a while ago
    await new Promise((resolve) => setTimeout(resolve, 5));

    // publication 2 is queued (uncommitted) while the subscriber's next receive is on its
    // way; 3 comes after the receive waits: the receive must not be answered with 3 alone
    publish(2);
    assert.equal(receive(first[0].seq), undefined);
    publish(3);
    assert.equal(sub.replies.length, 1, "answered with a later publication, skipping one");
    await nextTick();
    assert.equal(sub.replies.length, 2);
    const second = sub.replies[1].messages as Array<{ seq: number; payload: Uint8Array }>;
    assert.deepEqual(second.map((m) => m.payload[0]), [2, 3]);
    assert.ok(second[0].seq > first[0].seq && second[1].seq > second[0].seq);
    // the publisher's acknowledgements came with the commits; nothing left unstored
    assert.equal(daemon.status().outbox, 3);
  } finally {
    await daemon.close();
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pubsFrames(): runs of consecutive seqs with one local flag, bounded in count and bytes", () => {
  const e = (seq: number, local = true, size = 10) => ({
    seq,
    user: 1,
    topic: "a",
    payload: new Uint8Array(size),
    local,
  });
  const frames = pubsFrames([e(1), e(2), e(3), e(5), e(6, false), e(7, false)]);
  assert.deepEqual(
    frames.map((f) => [f.seq, (f.users as number[]).length, f.local ?? false]),
    [[1, 3, true], [5, 1, true], [6, 2, false]],
  );
  assert.deepEqual(pubsFrames([]), []);
  // 2,500 small ones: frames of at most 1,000; two of 700 KiB: one frame each
  assert.deepEqual(
    pubsFrames(Array.from({ length: 2_500 }, (_, i) => e(i + 1))).map((f) =>
      (f.users as number[]).length
    ),
    [1_000, 1_000, 500],
  );
  assert.equal(pubsFrames([e(1, true, 700 * 1024), e(2, true, 700 * 1024)]).length, 2);
});

Deno.test("daemon (in process): a broker that stops answering is detected by the heartbeat; the link is closed and attached again", async () => {
  const { FrameServer } = await import("../mod/wire/mod.ts");
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mom-daemon-" });
  const store = new DaemonStore(`${dir}/daemon.sqlite`);
  const controller = new AbortController();
  const events: Array<{ ev: string; [k: string]: unknown }> = [];
  let attaches = 0;
  let silent = true;
  let release: () => void = () => {};
  const stalled = new Promise<void>((r) => (release = r));
  // a broker that attaches the daemon, then — like one behind a partition — never answers
  const broker = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "broker", name: "b1" },
    handlers: {
      attach: () => {
        attaches++;
        return { t: "attach.ok", broker: "e1", seen: 0, acked: 0 };
      },
      "stream.state": async () => {
        if (silent) await stalled;
        return { t: "stream.state", seen: 0, dseq: 0 };
      },
    },
  });
  const ctx = daemonContext(dir, controller.signal, (e) => events.push(e));
  const daemon = new MomDaemon(ctx, store, { hostname: "127.0.0.1", port: broker.port });
  try {
    daemon.start();
    const deadline = performance.now() + LINK_HEARTBEAT_MS + LINK_SILENCE_MS + 5_000;
    while (performance.now() < deadline && attaches < 2) {
      await new Promise((r) => setTimeout(r, 20));
    }
    silent = false;
    release();
    assert.ok(attaches >= 2, `attached ${attaches} time(s)`);
    const down = events.find((e) => e.ev === "link.down");
    assert.equal(down?.reason, "heartbeat");
    assert.ok(events.filter((e) => e.ev === "link.up").length >= 1);
  } finally {
    release();
    await daemon.close();
    await broker.close();
    ctx.events.close();
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("daemon (in process): receive's `from` hands out after it and acknowledges only `after`; an ack-only receive hides nothing; commit meta and publication meta are stored", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mom-daemon-" });
  const store = new DaemonStore(`${dir}/daemon.sqlite`);
  const ctx = daemonContext(dir, new AbortController().signal);
  store.addUser(1);
  store.addUser(2);
  store.addSub(2, "T/+", false);
  const daemon = new MomDaemon(ctx, store, { hostname: "127.0.0.1", port: 1 });
  try {
    const h = daemon.handlers();
    const pub = recordingSession();
    const sub = recordingSession();
    // five publications, one with meta bytes and commit meta (what MQTT QoS 2 sends)
    for (let n = 1; n <= 5; n++) {
      const msg: Record<string | symbol, unknown> = {
        t: "publish",
        rid: n,
        user: 1,
        topic: "T/x",
        payload: new Uint8Array([n]),
      };
      if (n === 3) {
        msg.meta = Uint8Array.of(2, 0);
        msg[COMMIT_META] = { "mqtt.q2.1.9": 1 };
      }
      h.publish(msg as unknown as Message, pub.session);
    }
    await nextTick();
    assert.equal(pub.replies.length, 5, "every publication acknowledged after its commit");
    assert.equal(store.meta("mqtt.q2.1.9"), "1", "commit meta written with the publication");
    const receive = (fields: Record<string, number>) => {
      const before = sub.replies.length;
      const r = h.receive(
        { t: "receive", rid: 1, user: 2, max: 100, wait: 0, ...fields },
        sub.session,
      );
      const reply = (r as Message | undefined) ?? sub.replies[before];
      return reply.messages as Array<{ seq: number; payload: Uint8Array; meta?: Uint8Array }>;
    };
    // an acknowledgement alone (max 0) must not make later receives miss stored entries
    assert.deepEqual(receive({ after: 0, max: 0 }), []);
    const all = receive({ after: 0 });
    assert.deepEqual(all.map((m) => m.payload[0]), [1, 2, 3, 4, 5]);
    assert.deepEqual(all[2].meta, Uint8Array.of(2, 0), "meta travels to the inbox entry");
    assert.equal(all[0].meta, undefined);
    // hand out after the third while acknowledging only the first
    const seqs = all.map((m) => m.seq);
    assert.deepEqual(receive({ after: seqs[0], from: seqs[2] }).map((m) => m.payload[0]), [4, 5]);
    // (handing out entries commits the acknowledgement first)
    assert.deepEqual(receive({ after: seqs[0] }).map((m) => m.payload[0]), [2, 3, 4, 5]);
    assert.equal(store.takenBy(2), seqs[0]);
  } finally {
    await daemon.close();
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("daemon (in process): a transient (QoS 0) publication reaches receives that keep up, in order among durable ones, is never stored, and its position is never reused", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-mom-daemon-" });
  let store = new DaemonStore(`${dir}/daemon.sqlite`);
  const ctx = daemonContext(dir, new AbortController().signal);
  // 1 publishes; 2 waits in receive (keeps up); 3 never asked (reads from disk)
  store.addUser(1);
  store.addUser(2);
  store.addUser(3);
  store.addSub(2, "T/+", false);
  store.addSub(3, "T/+", false);
  const daemon = new MomDaemon(ctx, store, { hostname: "127.0.0.1", port: 1 });
  let transientSeq = 0;
  try {
    const h = daemon.handlers();
    const pub = recordingSession();
    const sub = recordingSession();
    const publish = (n: number, transient: boolean) => {
      const msg: Record<string | symbol, unknown> = {
        t: "publish",
        user: 1,
        topic: "T/x",
        payload: new Uint8Array([n]),
      };
      if (!transient) msg.rid = n;
      else msg[TRANSIENT] = true;
      h.publish(msg as unknown as Message, pub.session);
    };
    const got: Array<{ seq: number; payload: Uint8Array }> = [];
    // receives as a client makes them: the next one once the last was answered
    const receive = () => {
      for (let i = 0; i < 10; i++) {
        const after = got.length > 0 ? got[got.length - 1].seq : 0;
        const r = h.receive(
          { t: "receive", rid: 1, user: 2, after, max: 100, wait: 5_000 },
          sub.session,
        ) as Message | undefined;
        if (r === undefined) return; // waiting
        got.push(...(r.messages as typeof got));
      }
    };
    const drain = async () => {
      for (let i = 0; i < 50; i++) {
        await nextTick();
        const replies = sub.replies.splice(0);
        for (const r of replies) got.push(...(r.messages as typeof got));
        if (replies.length > 0) receive();
      }
    };
    receive();
    publish(1, false);
    publish(2, true);
    publish(3, false);
    await drain();
    publish(4, true); // a turn with only a transient publication: nothing to write
    await drain();
    assert.deepEqual(got.map((m) => m.payload[0]), [1, 2, 3, 4], "in publish order, once");
    transientSeq = got[3].seq;
    assert.equal(pub.replies.length, 2, "only the durable ones are answered");
    const stored = store.select(3, 0, 100).map((e) => e.payload[0]);
    assert.deepEqual(stored, [1, 3], "transient ones are not on disk");
    const status = daemon.status();
    assert.equal(status.transient, 2);
    assert.equal(status.outbox, 2, "the outbox holds the durable ones only");
  } finally {
    await daemon.close();
    store.close();
  }
  try {
    // after a restart, a transient publication's position is never given to another message
    store = new DaemonStore(`${dir}/daemon.sqlite`);
    assert.ok(store.nextPosition > transientSeq);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * Mutual authentication against real processes: an impostor broker, a ring node without
 * the secret, a wrong secret, a replayed proof and a reflected one; and the handshake's
 * rules over an in-memory stream pair.
 */
import assert from "node:assert/strict";
import { LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import { MomClient, type MomMessage } from "../mod/mom/mod.ts";
import { ctlRequest } from "../mod/ctl/mod.ts";
import {
  acceptHandshake,
  authProof,
  authTranscript,
  type ByteStream,
  FrameConnection,
  type Message,
  offerHandshake,
  type PeerIdentity,
  ProtocolError,
  RemoteError,
} from "../mod/wire/mod.ts";

const decoder = new TextDecoder();

/** A plain TCP listener that plays a server: welcome to every hello, ok to everything. */
class ImpostorServer {
  readonly listener: Deno.Listener;
  /** Frames received, per connection. */
  readonly received: Message[][] = [];
  readonly #conns = new Set<FrameConnection>();
  readonly #loop: Promise<void>;
  readonly #tasks = new Set<Promise<void>>();

  constructor(port: number) {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#loop = this.#accept();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let raw: Deno.Conn;
      try {
        raw = await this.listener.accept();
      } catch {
        return;
      }
      const conn = new FrameConnection(raw);
      this.#conns.add(conn);
      const frames: Message[] = [];
      this.received.push(frames);
      const task = this.#serve(conn, frames).finally(() => {
        conn.close();
        this.#conns.delete(conn);
      });
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #serve(conn: FrameConnection, frames: Message[]): Promise<void> {
    for (let i = 0; i < 100_000; i++) {
      let msg: Message | null;
      try {
        msg = await conn.read();
      } catch {
        return;
      }
      if (msg === null) return;
      frames.push(msg);
      try {
        if (msg.t === "hello") conn.send({ t: "welcome", v: msg.v, role: "broker", name: "b1" });
        else if (msg.t === "pubs" || msg.t === "pub") conn.send({ t: "puback", seq: 1e9 });
        else if (msg.rid !== undefined) {
          conn.send({ t: `${msg.t}.ok`, rid: msg.rid, epoch: "fake", seen: 0 });
        }
      } catch {
        return;
      }
    }
  }

  async close(): Promise<void> {
    this.listener.close();
    await this.#loop;
    for (const c of this.#conns) c.close();
    await Promise.allSettled([...this.#tasks]);
  }
}

Deno.test("a daemon with --secret refuses an impostor broker, keeps its 100 acknowledged publications, and delivers them once when the real broker returns", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [
      { name: "b1", role: "broker" },
      { name: "d1", role: "daemon" },
      { name: "d2", role: "daemon" },
    ],
    secret: "cluster-s3cret",
  });
  const [b1, d1, d2] = ["b1", "d1", "d2"].map((n) => cluster.node(n));
  for (const d of [d1, d2]) {
    await waitUntil(async () => (await d.ctl("status")).link === "up", {
      timeoutMs: 15_000,
      what: `${d.name} link up`,
    });
  }
  const pubClient = await MomClient.connect(
    { hostname: "127.0.0.1", port: d1.port },
    { secret: "cluster-s3cret" },
  );
  const subClient = await MomClient.connect(
    { hostname: "127.0.0.1", port: d2.port },
    { secret: "cluster-s3cret" },
  );
  let impostor: ImpostorServer | undefined;
  try {
    const publisher = await pubClient.create();
    const subscriber = await subClient.create();
    await subscriber.subscribe("imp/#");
    await b1.stop();
    impostor = new ImpostorServer(b1.port);
    const mark = d1.mark();
    const acked: string[] = [];
    for (let i = 0; i < 100; i++) {
      await publisher.publish(`imp/${i % 4}`, `p${i}`);
      acked.push(`p${i}`);
    }
    // the daemon dialled the impostor, found no proof, said so, and sent it nothing else
    const refused = await d1.waitForEvent(
      (e) => e.ev === "wire.error" && e.code === "impostor",
      { from: mark, timeoutMs: 15_000 },
    );
    assert.match(String(refused.message), /cannot prove the cluster secret/);
    await waitUntil(() => impostor!.received.length >= 2, { what: "two dials of the impostor" });
    for (const frames of impostor.received) {
      assert(frames.length <= 1, `the impostor got ${frames.map((f) => f.t)}`);
      if (frames.length === 1) {
        assert.equal(frames[0].t, "hello");
        assert(frames[0].nonce instanceof Uint8Array, "hello carries the client's nonce");
      }
    }
    const status = await d1.ctl("status");
    assert.equal(status.link, "down");
    assert.equal(status.outbox, 100, "the outbox still holds every publication");
    await impostor.close();
    impostor = undefined;
    await b1.start();
    const got: MomMessage[] = [];
    await waitUntil(async () => {
      got.push(...await subscriber.receiveBatch({ timeout: 300 }));
      return got.length >= 100;
    }, { timeoutMs: 30_000, what: "100 publications at the subscriber" });
    await subscriber.ack();
    // nothing more is coming: the publisher's outbox is empty and a further receive is empty
    await waitUntil(async () => (await d1.ctl("status")).outbox === 0, { what: "empty outbox" });
    got.push(...await subscriber.receiveBatch({ timeout: 300 }));
    const payloads = got.map((m) => decoder.decode(m.payload)).sort();
    assert.deepEqual(payloads, [...acked].sort(), "each of the 100 exactly once");
  } finally {
    await impostor?.close();
    await pubClient.close();
    await subClient.close();
  }
});

Deno.test("ring nodes with the secret never list a node without it as alive, and refuse it both ways", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [
      { name: "n1", role: "ring", args: ["--secret", "ring-s3cret"] },
      { name: "n2", role: "ring", args: ["--secret", "ring-s3cret"] },
      { name: "n3", role: "ring", args: ["--secret", "ring-s3cret"] },
      { name: "n4", role: "ring" },
    ],
  });
  const good = ["n1", "n2", "n3"].map((n) => cluster.node(n));
  const n4 = cluster.node("n4");
  const status = (name: string) =>
    ctlRequest({ hostname: "127.0.0.1", port: cluster.node(name).port }, "status", [], {
      secret: "ring-s3cret",
      timeoutMs: 5_000,
    });
  // each good node dialled n4 and refused it (impostor), and refused n4's dial (unauthorized)
  for (const node of good) {
    await node.waitForEvent(
      (e) => e.ev === "wire.error" && e.code === "impostor" && e.remote === n4.address,
      { timeoutMs: 15_000 },
    );
    await node.waitForEvent(
      (e) => e.ev === "wire.error" && e.what === "handshake" && e.code === "unauthorized",
      { timeoutMs: 15_000 },
    );
  }
  // the ring of the three works, and none of them lists n4 alive
  await waitUntil(async () => {
    const s = await status("n1");
    return (s.alive as string[]).length === 3;
  }, { timeoutMs: 15_000, what: "n1 sees n2 and n3" });
  const lock = await ctlRequest({ hostname: "127.0.0.1", port: good[1].port }, "lock", ["5"], {
    secret: "ring-s3cret",
    timeoutMs: 20_000,
  });
  assert.equal(lock.t, "ctl.ok");
  await ctlRequest({ hostname: "127.0.0.1", port: good[1].port }, "unlock", [], {
    secret: "ring-s3cret",
  });
  for (const node of good) {
    const s = await status(node.name);
    assert(!(s.alive as string[]).includes("n4"), `${node.name} lists n4 alive`);
    assert((s.down as string[]).includes("n4"));
    assert(
      !node.events().some((e) => e.ev === "peer.up" && e.peer === "n4"),
      `${node.name} had n4 up`,
    );
  }
  // n4, without the secret, is refused by the others' servers: they are all down to it
  const s4 = await ctlRequest({ hostname: "127.0.0.1", port: n4.port }, "status", []);
  assert.deepEqual(s4.alive, ["n4"]);
});

Deno.test("gossip nodes with the secret never list a node without it as a member, though it seeds and is seeded", async () => {
  const secret = ["--secret", "gossip-s3cret"];
  const fast = ["--gossip-interval", "50", "--probe-interval", "250", "--probe-timeout", "100"];
  await using cluster = await LocalCluster.start({
    nodes: [
      { name: "g1", role: "gossip", args: [...fast, ...secret, "--seeds", "g4"], deferred: true },
      { name: "g2", role: "gossip", args: [...fast, ...secret, "--seeds", "g1"], deferred: true },
      { name: "g3", role: "gossip", args: [...fast, ...secret, "--seeds", "g1"], deferred: true },
      { name: "g4", role: "gossip", args: [...fast, "--seeds", "g1"] },
    ],
  });
  // g4 first, so that g1's join reaches it (and is refused), then the others
  for (const n of ["g1", "g2", "g3"]) await cluster.node(n).start();
  const good = ["g1", "g2", "g3"].map((n) => cluster.node(n));
  const g4 = cluster.node("g4");
  const members = async (name: string) =>
    (await ctlRequest({ hostname: "127.0.0.1", port: cluster.node(name).port }, "members", [], {
      secret: "gossip-s3cret",
      timeoutMs: 5_000,
    })).members as Array<{ name: string; state: string }>;
  await waitUntil(async () => {
    for (const n of good) {
      const alive = (await members(n.name)).filter((m) => m.state === "alive").map((m) => m.name);
      if (alive.sort().join() !== "g1,g2,g3") return false;
    }
    return true;
  }, { timeoutMs: 20_000, intervalMs: 100, what: "g1..g3 to see each other alive" });
  // g1 dialled its seed g4 and refused it; g4's join at g1 was refused
  const g1 = cluster.node("g1");
  await g1.waitForEvent(
    (e) => e.ev === "wire.error" && e.code === "impostor" && e.remote === g4.address,
  );
  await g1.waitForEvent(
    (e) => e.ev === "wire.error" && e.what === "handshake" && e.code === "unauthorized",
  );
  for (const n of good) {
    const list = await members(n.name);
    assert(!list.some((m) => m.name === "g4"), `${n.name} lists g4: ${JSON.stringify(list)}`);
  }
  const own = await ctlRequest({ hostname: "127.0.0.1", port: g4.port }, "members", []);
  assert.deepEqual((own.members as Array<{ name: string }>).map((m) => m.name), ["g4"]);
});

/** Opens a raw framed connection to `port` (no handshake). */
async function raw(port: number): Promise<FrameConnection> {
  return new FrameConnection(await Deno.connect({ hostname: "127.0.0.1", port }));
}

async function next(conn: FrameConnection): Promise<Message> {
  const msg = await conn.read();
  assert(msg, "connection closed");
  return msg;
}

Deno.test("a real node refuses a wrong secret, a missing one, a replayed proof and a reflected one", async () => {
  const secret = "echo-s3cret";
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "e1", role: "echo" }],
    secret,
  });
  const e1 = cluster.node("e1");
  const me: PeerIdentity = { role: "client", name: "t" };

  // the CLI: a wrong secret, and none
  const wrong = await runPeerd(["ctl", e1.address, "status", "--secret", "nope"]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /impostor|cannot prove the cluster secret/);
  const none = await runPeerd(["ctl", e1.address, "status"], { env: { PEERD_SECRET: "" } });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /unauthorized/);

  // a legitimate exchange, recorded
  const nonce1 = crypto.getRandomValues(new Uint8Array(32));
  const hello = { t: "hello", v: 2, role: me.role, name: me.name, nonce: nonce1 };
  const c1 = await raw(e1.port);
  let recordedAuth: Message;
  let serverProof1: Uint8Array;
  let serverNonce1: Uint8Array;
  try {
    c1.send(hello);
    const ch = await next(c1);
    assert.equal(ch.t, "challenge");
    serverNonce1 = ch.nonce as Uint8Array;
    serverProof1 = ch.proof as Uint8Array;
    const transcript = {
      clientNonce: nonce1,
      serverNonce: serverNonce1,
      client: me,
      server: { role: String(ch.role), name: String(ch.name) },
    };
    recordedAuth = { t: "auth", proof: await authProof(secret, "client", transcript) };
    c1.send(recordedAuth);
    assert.equal((await next(c1)).t, "welcome");
  } finally {
    c1.close();
  }

  const refusedWith = async (frames: (ch: Message) => Message): Promise<Message> => {
    const c = await raw(e1.port);
    try {
      c.send(hello);
      const ch = await next(c);
      assert.equal(ch.t, "challenge");
      c.send(frames(ch));
      const answer = await next(c);
      assert.equal(await c.read(), null, "the server closes after refusing");
      return answer;
    } finally {
      c.close();
    }
  };
  // replay: the same hello and the recorded auth, on a new connection (fresh server nonce)
  const replay = await refusedWith(() => recordedAuth);
  assert.equal(replay.t, "error");
  assert.equal(replay.code, "unauthorized");
  // reflection: the server's own proof sent back as ours
  const reflected = await refusedWith((ch) => ({ t: "auth", proof: ch.proof }));
  assert.equal(reflected.code, "unauthorized");
  // reflection across connections: get the server to prove over its own earlier nonce
  const c3 = await raw(e1.port);
  let proofOverOwnNonce: Uint8Array;
  try {
    c3.send({ ...hello, nonce: serverNonce1 });
    proofOverOwnNonce = (await next(c3)).proof as Uint8Array;
  } finally {
    c3.close();
  }
  const crossed = await refusedWith(() => ({ t: "auth", proof: proofOverOwnNonce }));
  assert.equal(crossed.code, "unauthorized");
  assert.notDeepEqual(proofOverOwnNonce, serverProof1);
  // a v1 hello (client-only authentication) is refused when the node has a secret
  const c4 = await raw(e1.port);
  try {
    c4.send({ t: "hello", v: 1, role: "client", name: "old" });
    const answer = await next(c4);
    assert.equal(answer.code, "bad_version");
  } finally {
    c4.close();
  }
  await waitUntil(
    () => e1.events().filter((e) => e.ev === "wire.error" && e.code === "unauthorized").length >= 3,
    { what: "wire.error events for the refusals" },
  );
});

// ── the handshake over an in-memory stream pair ──

class Pipe implements ByteStream {
  #chunks: Uint8Array[] = [];
  #waiter: (() => void) | undefined;
  #closed = false;
  peer!: Pipe;

  static pair(): [Pipe, Pipe] {
    const a = new Pipe();
    const b = new Pipe();
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) return null;
      await new Promise<void>((r) => this.#waiter = r);
    }
    const head = this.#chunks[0];
    const n = Math.min(head.length, p.length);
    p.set(head.subarray(0, n));
    if (n === head.length) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.peer.#closed) return Promise.reject(new Error("closed"));
    this.peer.#chunks.push(p.slice());
    this.peer.#wake();
    return Promise.resolve(p.length);
  }

  close(): void {
    this.#closed = true;
    this.#wake();
    this.peer.#closed = true;
    this.peer.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}

async function handshakePair(clientSecret?: string, serverSecret?: string) {
  const [a, b] = Pipe.pair();
  const client = new FrameConnection(a);
  const server = new FrameConnection(b);
  const results = await Promise.allSettled([
    offerHandshake(client, { role: "daemon", name: "d1", secret: clientSecret }),
    acceptHandshake(server, { role: "broker", name: "b1", secret: serverSecret }),
  ]);
  client.close();
  server.close();
  return results;
}

Deno.test("offerHandshake()/acceptHandshake() authenticate both ends with one secret", async () => {
  const [c, s] = await handshakePair("k", "k");
  assert.equal(c.status, "fulfilled");
  assert.deepEqual((c as PromiseFulfilledResult<PeerIdentity>).value, {
    role: "broker",
    name: "b1",
  });
  assert.deepEqual((s as PromiseFulfilledResult<PeerIdentity>).value, {
    role: "daemon",
    name: "d1",
  });
  const [c0, s0] = await handshakePair(undefined, undefined);
  assert.equal(c0.status, "fulfilled");
  assert.equal(s0.status, "fulfilled");
});

Deno.test("offerHandshake() refuses a server without the secret or with another one (impostor)", async () => {
  for (const serverSecret of [undefined, "other"]) {
    const [c, s] = await handshakePair("k", serverSecret);
    assert.equal(c.status, "rejected");
    const err = (c as PromiseRejectedResult).reason;
    assert(err instanceof ProtocolError);
    assert.equal(err.code, "impostor");
    assert.equal(s.status, serverSecret ? "rejected" : "fulfilled");
  }
});

Deno.test("acceptHandshake() refuses a client without the secret", async () => {
  const [c, s] = await handshakePair(undefined, "k");
  const err = (c as PromiseRejectedResult).reason;
  assert(err instanceof RemoteError);
  assert.equal(err.code, "unauthorized");
  assert.equal(((s as PromiseRejectedResult).reason as ProtocolError).code, "unauthorized");
});

Deno.test("authTranscript() separates directions, nonces, names and roles", () => {
  const base = {
    clientNonce: new Uint8Array(32).fill(1),
    serverNonce: new Uint8Array(32).fill(2),
    client: { role: "daemon", name: "d1" },
    server: { role: "broker", name: "b1" },
  };
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const variants = [
    authTranscript("server", base),
    authTranscript("client", base),
    authTranscript("server", {
      ...base,
      clientNonce: base.serverNonce,
      serverNonce: base.clientNonce,
    }),
    authTranscript("server", { ...base, client: { role: "daemo", name: "nd1" } }),
    authTranscript("server", { ...base, client: base.server, server: base.client }),
  ];
  assert.equal(new Set(variants.map(hex)).size, variants.length);
});

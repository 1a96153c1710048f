/**
 * One suite, run against both transports of the replica: the in-memory network
 * (`MemoryRatingsNetwork`) and TCP (`FrameServer`s and `TcpRatingsTransport`s in this
 * process). Each fixture runs the daemon's own `ReplicaNode` over a real `ReplicaStore`
 * (SQLite in a temporary directory), with its real timers.
 */
import assert from "node:assert/strict";
import {
  generateDataset,
  MemoryRatingsNetwork,
  type RatingsTransport,
  REPLICA_FRAME_TYPES,
  ReplicaNode,
  ReplicaStore,
  type RmRequest,
  TcpRatingsTransport,
  type VectorTs,
} from "../mod/ratings/mod.ts";
import {
  ErrorCode,
  FrameServer,
  type Message,
  type PeerSession,
  ProtocolError,
  RpcClient,
} from "../mod/wire/mod.ts";

const NAMES = ["rm1", "rm2", "rm3"];
const DATA = generateDataset({ seed: 7, users: 20, movies: 30, ratings: 200 });
const MOVIE = DATA.movies[3].id;
/** Users who have not rated MOVIE: each test creates their rating. */
const FREE = Array.from({ length: 40 }, (_, i) => i + 1).filter((u) =>
  !DATA.ratings.some((r) => r.user === u && r.movie === MOVIE)
);

/** Three replicas on one transport, and a client of each. */
interface Fixture {
  nodes: Map<string, ReplicaNode>;
  /** A client's request to replica `to`; an error reply rejects with `RemoteError`. */
  ask(to: string, msg: Message): Promise<Message>;
  /** Cuts `name` off from the other replicas (clients still reach it). */
  isolate(name: string): void;
  /** Ends the cut. */
  rejoin(name: string): void;
  close(): Promise<void>;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const events = { emit() {}, debug() {}, debugEnabled: false };

async function stores(): Promise<{ dir: string; stores: Map<string, ReplicaStore> }> {
  const dir = await Deno.makeTempDir({ prefix: "peerd-ratings-transport-" });
  const stores = new Map(NAMES.map((name) => {
    const store = new ReplicaStore(`${dir}/${name}.db`);
    store.importDataset(DATA);
    return [name, store];
  }));
  return { dir, stores };
}

/** The replicas' gossip period in these tests. */
const GOSSIP_MS = 50;

function replica(
  name: string,
  store: ReplicaStore,
  transport: RatingsTransport,
  address: (n: string) => string,
): ReplicaNode {
  return new ReplicaNode({
    self: name,
    store,
    transport,
    peers: NAMES.filter((n) => n !== name).map((n) => ({ name: n, address: address(n) })),
    advertised: address(name),
    events,
    log: quiet,
    gossipMs: GOSSIP_MS,
    queryTimeoutMs: 2_000,
  });
}

async function stopAll(nodes: Map<string, ReplicaNode>): Promise<void> {
  await Promise.all([...nodes.values()].map((n) => n.quiesce()));
}

async function endAll(
  nodes: Map<string, ReplicaNode>,
  s: { dir: string; stores: Map<string, ReplicaStore> },
): Promise<void> {
  await Promise.all([...nodes.values()].map((n) => n.stop()));
  for (const store of s.stores.values()) store.close();
  await Deno.remove(s.dir, { recursive: true });
}

async function memoryFixture(): Promise<Fixture> {
  const s = await stores();
  const net = new MemoryRatingsNetwork();
  const nodes = new Map<string, ReplicaNode>();
  for (const name of NAMES) {
    const node = replica(name, s.stores.get(name)!, net.transport(name), (n) => `${n}:1`);
    nodes.set(name, node);
    net.attach(name, node.handlers());
  }
  for (const node of nodes.values()) node.start();
  return {
    nodes,
    ask: (to, msg) => net.ask(to, msg),
    isolate: (name) => net.isolate(name),
    rejoin: (name) => net.rejoin(name),
    async close() {
      await stopAll(nodes);
      await endAll(nodes, s);
    },
  };
}

async function tcpFixture(): Promise<Fixture> {
  const s = await stores();
  const nodes = new Map<string, ReplicaNode>();
  const servers = new Map<string, FrameServer>();
  const isolated = new Set<string>();
  for (const name of NAMES) {
    const handle = (msg: Message, session: PeerSession) => {
      const from = session.peer.name;
      if (from !== "client" && (isolated.has(from) || isolated.has(name))) {
        // cut off: every frame between it and the others is refused
        throw new ProtocolError(ErrorCode.Unavailable, `Cannot answer ${from}: cut off (test)`);
      }
      return nodes.get(name)!.handlers()[msg.t as RmRequest](msg, session);
    };
    servers.set(
      name,
      new FrameServer({
        listen: { hostname: "127.0.0.1", port: 0 },
        identity: { role: "replica", name },
        handlers: Object.fromEntries(REPLICA_FRAME_TYPES.map((t) => [t, handle])),
      }),
    );
  }
  const address = (n: string) => `127.0.0.1:${servers.get(n)!.port}`;
  for (const name of NAMES) {
    const transport = new TcpRatingsTransport({ self: name });
    nodes.set(name, replica(name, s.stores.get(name)!, transport, address));
  }
  for (const node of nodes.values()) node.start();
  const clients = new Map<string, RpcClient>();
  return {
    nodes,
    async ask(to, msg) {
      let client = clients.get(to);
      if (!client) {
        client = await RpcClient.connect(
          { hostname: "127.0.0.1", port: servers.get(to)!.port },
          { role: "client", name: "client" },
        );
        clients.set(to, client);
      }
      return await client.request(msg, { timeoutMs: 5_000 });
    },
    isolate: (name) => isolated.add(name),
    rejoin: (name) => isolated.delete(name),
    async close() {
      for (const c of clients.values()) await c.close();
      isolated.clear();
      await stopAll(nodes);
      for (const server of servers.values()) await server.close();
      await endAll(nodes, s);
    },
  };
}

/** Polls `ok` every 10 ms for at most `ms`. */
async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function update(
  user: number,
  rating: number,
  prev: VectorTs = {},
  extra: Record<string, unknown> = {},
): Message {
  return { ...extra, t: "ratings.update", kind: "create", user, movie: MOVIE, rating, prev };
}

const FIXTURES: Array<[string, () => Promise<Fixture>]> = [
  ["memory", memoryFixture],
  ["tcp", tcpFixture],
];

for (const [kind, make] of FIXTURES) {
  Deno.test(`ReplicaNode (${kind}): an update acknowledged with f=2 is on a second replica, and every replica answers a query carrying its timestamp`, async () => {
    const f = await make();
    try {
      const reply = await f.ask("rm1", update(FREE[3], 4, {}, { f: 2 }));
      assert.equal(reply.t, "ratings.updated");
      assert.equal(reply.copies, 2, "pushed to one peer before the ack");
      const ts = reply.ts as VectorTs;
      const holders = [...f.nodes.values()].filter((n) => n.manager.covers(ts));
      assert.ok(holders.length >= 2, `held by ${holders.length}`);
      for (const name of NAMES) {
        const q = await f.ask(name, {
          t: "ratings.query",
          q: "get",
          user: FREE[3],
          movie: MOVIE,
          prev: ts,
        });
        assert.equal(q.rating, 4, `${name} answers with the update`);
      }
    } finally {
      await f.close();
    }
  });

  Deno.test(`ReplicaNode (${kind}): an isolated replica keeps serving, and after the heal gossip makes every replica equal`, async () => {
    const f = await make();
    try {
      f.isolate("rm3");
      const a = await f.ask("rm1", update(FREE[5], 2));
      const b = await f.ask("rm3", update(FREE[6], 5));
      assert.equal(a.t, "ratings.updated");
      assert.equal(b.t, "ratings.updated");
      // while cut off, rm3 cannot have rm1's update, nor rm1 rm3's: an absence, so it is
      // observed over a window of four gossip periods in which the others keep gossiping
      await new Promise((r) => setTimeout(r, 4 * GOSSIP_MS));
      assert.equal(f.nodes.get("rm3")!.manager.covers(a.ts as VectorTs), false);
      assert.equal(f.nodes.get("rm1")!.manager.covers(b.ts as VectorTs), false);
      f.rejoin("rm3");
      const both = { ...(a.ts as VectorTs), ...(b.ts as VectorTs) };
      await until(
        "every replica to hold both updates",
        () => [...f.nodes.values()].every((n) => n.manager.covers(both)),
      );
      const answers = await Promise.all(
        NAMES.map((name) =>
          f.ask(name, { t: "ratings.query", q: "get", user: FREE[6], movie: MOVIE, prev: both })
        ),
      );
      assert.deepEqual(answers.map((r) => r.rating), [5, 5, 5]);
    } finally {
      await f.close();
    }
  });

  Deno.test(`ReplicaNode (${kind}): a retried update (same uid) is applied once; a query ahead of every replica is refused after the wait`, async () => {
    const f = await make();
    try {
      const first = await f.ask("rm2", update(FREE[7], 3, {}, { uid: "u-retry" }));
      const again = await f.ask("rm2", update(FREE[7], 3, {}, { uid: "u-retry" }));
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.ts, first.ts);
      await assert.rejects(
        f.ask("rm1", {
          t: "ratings.query",
          q: "get",
          user: FREE[7],
          movie: MOVIE,
          prev: { rm9: 1 }, // an update no replica has
        }),
        (e: Error) => e.message.includes("still lacks updates from rm9"),
      );
    } finally {
      await f.close();
    }
  });
}

Deno.test("MemoryRatingsNetwork: requests to a detached or isolated replica fail as a down link", async () => {
  const net = new MemoryRatingsNetwork();
  net.attach("a", {
    "t.echo": (msg) => ({ t: "t.echo.ok", n: msg.n }),
    "t.refuse": () => {
      throw new ProtocolError(ErrorCode.Unavailable, "Cannot answer: refusing (test)");
    },
  });
  const t = net.transport("b");
  try {
    assert.equal((await t.request("a", { t: "t.echo", n: 1 })).n, 1);
    await assert.rejects(t.request("a", { t: "t.refuse" }), /refusing/);
    net.isolate("b");
    assert.equal(t.connected("a"), false);
    await assert.rejects(t.request("a", { t: "t.echo" }), /not connected/);
    net.rejoin("b");
    net.detach("a");
    await assert.rejects(t.request("a", { t: "t.echo" }), /not connected/);
  } finally {
    await t.close();
  }
});

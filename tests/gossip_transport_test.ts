/**
 * One suite, run against both transports of the gossip protocol: the in-memory network
 * (virtual time) and TCP (FrameServers and TcpTransports in this process, real time).
 */
import assert from "node:assert/strict";
import {
  GossipNode,
  type GossipNode as GossipNodeType,
  GossipType,
  parseGossipMessage,
  seededRandom,
  TcpTransport,
  VirtualNetwork,
} from "../mod/gossip/mod.ts";
import { FrameServer, type Message, type PeerSession } from "../mod/wire/mod.ts";
import { pause } from "./harness/mod.ts";

const TIMING = {
  gossipIntervalMs: 40,
  antiEntropyIntervalMs: 200,
  probeIntervalMs: 150,
  probeTimeoutMs: 60,
  suspectTimeoutMs: 600,
};

/** A small cluster on one transport. */
interface Fixture {
  nodes: GossipNodeType[];
  /** Runs the cluster until `pred` holds (or throws after `timeoutMs` of its time). */
  runUntil(pred: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Crashes node `i`: it neither sends nor receives any more. */
  crash(i: number): Promise<void>;
  close(): Promise<void>;
}

function memoryFixture(n: number): Fixture {
  const net = new VirtualNetwork({ random: seededRandom(4) });
  const random = seededRandom(8);
  const nodes = Array.from({ length: n }, (_, i) => {
    const node = new GossipNode({
      name: `n${i}`,
      addr: `n${i}`,
      transport: net.transport(`n${i}`),
      random,
      seeds: i === 0 ? [] : ["n0"],
      ...TIMING,
    });
    net.attach(`n${i}`, node);
    node.start(0);
    return node;
  });
  let now = 0;
  return {
    nodes,
    runUntil(pred, what, timeoutMs = 10_000) {
      const end = now + timeoutMs;
      while (!pred()) {
        if (now >= end) throw new Error(`memory: no ${what} within ${timeoutMs} virtual ms`);
        now += 10;
        nodes.forEach((x, i) => net.isDown(`n${i}`) || x.tick(now));
        net.deliver(now);
      }
      return Promise.resolve();
    },
    crash(i) {
      net.setDown(`n${i}`, true);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

function tcpFixture(n: number): Fixture {
  const servers: FrameServer[] = [];
  const transports: TcpTransport[] = [];
  const nodes: GossipNode[] = [];
  const crashed = new Set<number>();
  for (let i = 0; i < n; i++) {
    const late: { node?: GossipNode } = {};
    const receive = (msg: Message, _s: PeerSession) => {
      late.node?.receive(parseGossipMessage(msg), performance.now());
      return undefined;
    };
    servers.push(
      new FrameServer({
        listen: { hostname: "127.0.0.1", port: 0 },
        identity: { role: "gossip", name: `n${i}` },
        handlers: Object.fromEntries(Object.values(GossipType).map((t) => [t, receive])),
      }),
    );
    transports.push(new TcpTransport({ name: `n${i}`, backoffMs: 100 }));
    late.node = new GossipNode({
      name: `n${i}`,
      addr: `127.0.0.1:${servers[i].port}`,
      transport: transports[i],
      seeds: i === 0 ? [] : [`127.0.0.1:${servers[0].port}`],
      ...TIMING,
    });
    nodes.push(late.node);
  }
  for (const node of nodes) node.start(performance.now());
  const timer = setInterval(() => {
    nodes.forEach((x, i) => crashed.has(i) || x.tick(performance.now()));
  }, 5);
  return {
    nodes,
    async runUntil(pred, what, timeoutMs = 10_000) {
      const end = performance.now() + timeoutMs;
      while (!pred()) {
        if (performance.now() >= end) throw new Error(`tcp: no ${what} within ${timeoutMs} ms`);
        await pause(10);
      }
    },
    async crash(i) {
      crashed.add(i);
      await transports[i].close();
      await servers[i].close();
    },
    async close() {
      clearInterval(timer);
      await Promise.all(transports.map((t) => t.close()));
      await Promise.all(servers.map((s, i) => crashed.has(i) ? undefined : s.close()));
    },
  };
}

for (const [kind, make] of [["memory", memoryFixture], ["tcp", tcpFixture]] as const) {
  Deno.test(`GossipNode over ${kind}: joins through one seed, spreads to all, marks a crashed member down`, async () => {
    const f = make(6);
    try {
      const alive = (x: GossipNodeType) => x.memberCounts().alive;
      await f.runUntil(() => f.nodes.every((x) => alive(x) === 6), "full membership");
      f.nodes[2].spread("k", "v1");
      await f.runUntil(() => f.nodes.every((x) => x.get("k")?.value === "v1"), "coverage");
      await f.crash(5);
      const live = f.nodes.slice(0, 5);
      f.nodes[4].spread("k", "v2");
      await f.runUntil(
        () => live.every((x) => x.get("k")?.value === "v2" && x.memberCounts().dead === 1),
        "coverage and detection after a crash",
      );
      for (const x of live) {
        assert.equal(x.members().find((m) => m.name === "n5")?.state, "dead");
        assert.deepEqual(x.get("k")?.version, { clock: 2, node: "n4" });
      }
    } finally {
      await f.close();
    }
  });
}

Deno.test("TcpTransport.reset() closes the link so the next send dials afresh", async () => {
  const got: Message[] = [];
  const server = new FrameServer({
    listen: { hostname: "127.0.0.1", port: 0 },
    identity: { role: "gossip", name: "s" },
    handlers: Object.fromEntries(
      Object.values(GossipType).map((t) => [t, (m: Message) => {
        got.push(m);
        return undefined;
      }]),
    ),
  });
  const transport = new TcpTransport({ name: "c", backoffMs: 10 });
  const addr = `127.0.0.1:${server.port}`;
  const digest = { t: GossipType.Digest, from: "c", d: [], m: [] } as never;
  try {
    transport.send(addr, digest);
    for (let i = 0; i < 200 && got.length < 1; i++) await pause(10);
    assert.equal(transport.stats.connects, 1);
    transport.reset(addr);
    transport.reset("127.0.0.1:1"); // no link: nothing happens
    assert.equal(transport.stats.resets, 1);
    assert.equal(transport.connections, 0);
    transport.send(addr, digest);
    for (let i = 0; i < 200 && got.length < 2; i++) await pause(10);
    assert.equal(got.length, 2);
    assert.equal(transport.stats.connects, 2);
  } finally {
    await transport.close();
    await server.close();
  }
});

/**
 * Unit tests of the gossip protocol core on the in-memory network: the same GossipNode the
 * daemon runs, with seeded randomness and virtual time.
 */
import assert from "node:assert/strict";
import {
  compareVersions,
  type GossipMessage,
  GossipNode,
  type GossipNodeOptions,
  LamportClock,
  MemberState,
  MemberTable,
  parseGossipMessage,
  seededRandom,
  simulate,
  VersionedStore,
  VirtualNetwork,
} from "../mod/gossip/mod.ts";
import { ProtocolError } from "../mod/wire/mod.ts";

interface Ev {
  node: string;
  ev: string;
  fields: Record<string, unknown>;
}

/** A virtual cluster of SWIM-enabled nodes; node 0 is everyone's seed. */
class VirtualCluster {
  readonly net: VirtualNetwork;
  readonly nodes = new Map<string, GossipNode>();
  readonly events: Ev[] = [];
  readonly random;
  now = 0;
  #options: Partial<GossipNodeOptions>;

  constructor(
    n: number,
    options: Partial<GossipNodeOptions> & { seed?: number; loss?: number } = {},
  ) {
    this.random = seededRandom(options.seed ?? 1);
    this.net = new VirtualNetwork({
      random: seededRandom((options.seed ?? 1) + 99),
      loss: options.loss,
    });
    this.#options = options;
    for (let i = 0; i < n; i++) this.add(`n${i}`);
  }

  add(name: string, extra: Partial<GossipNodeOptions> = {}): GossipNode {
    const node = new GossipNode({
      name,
      addr: name,
      transport: this.net.transport(name),
      random: this.random,
      gossipIntervalMs: 100,
      antiEntropyIntervalMs: 500,
      probeIntervalMs: 200,
      probeTimeoutMs: 80,
      suspectTimeoutMs: 600,
      seeds: name === "n0" ? [] : ["n0"],
      emit: (ev, fields) => this.events.push({ node: name, ev, fields }),
      ...this.#options,
      ...extra,
    });
    this.nodes.set(name, node);
    this.net.attach(name, node);
    node.start(this.now);
    return node;
  }

  /** Advances virtual time in 20 ms steps, delivering messages after each step. */
  run(ms: number, until?: () => boolean): number {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += 20;
      for (const [name, node] of this.nodes) if (!this.net.isDown(name)) node.tick(this.now);
      this.net.deliver(this.now);
      if (until?.()) return this.now;
    }
    return this.now;
  }

  live(): GossipNode[] {
    return [...this.nodes.entries()].filter(([n]) => !this.net.isDown(n)).map(([, x]) => x);
  }

  allAlive(count: number): boolean {
    return this.live().every((x) => x.memberCounts().alive === count);
  }
}

Deno.test("compareVersions() orders by Lamport clock, then node name, the same everywhere", () => {
  assert.ok(compareVersions({ clock: 2, node: "a" }, { clock: 1, node: "z" }) > 0);
  assert.ok(compareVersions({ clock: 3, node: "a" }, { clock: 3, node: "b" }) < 0);
  assert.equal(compareVersions({ clock: 3, node: "b" }, { clock: 3, node: "b" }), 0);
  const clock = new LamportClock();
  clock.observe(41);
  assert.equal(clock.tick(), 42);
  const store = new VersionedStore();
  assert.ok(store.apply({ key: "k", value: "old", version: { clock: 5, node: "b" }, hops: 0 }));
  assert.equal(
    store.apply({ key: "k", value: "older", version: { clock: 5, node: "a" }, hops: 0 }),
    false,
  );
  assert.ok(store.apply({ key: "k", value: "new", version: { clock: 6, node: "a" }, hops: 0 }));
  assert.equal(store.get("k")?.value, "new");
});

Deno.test("MemberTable.apply() follows SWIM precedence and refutes suspicion of itself", () => {
  const changes: string[] = [];
  const t = new MemberTable({ name: "me", addr: "me" }, {
    onChange: (c) => changes.push(`${c.peer}:${c.was}->${c.state}`),
  });
  const A = MemberState.Alive, S = MemberState.Suspect, D = MemberState.Dead;
  assert.ok(t.apply(["x", "x", A, 0], 0));
  assert.ok(t.apply(["x", "x", S, 0], 1)); // suspect(0) beats alive(0)
  assert.equal(t.apply(["x", "x", A, 0], 2), false); // alive(0) does not beat suspect(0)
  assert.ok(t.apply(["x", "x", A, 1], 3)); // refuted with a higher incarnation
  assert.ok(t.apply(["x", "x", D, 1], 4));
  assert.equal(t.apply(["x", "x", A, 1], 5), false); // dead(1) stays dead against alive(1)
  assert.ok(t.apply(["x", "x", A, 2], 6)); // taken back with a higher incarnation
  assert.deepEqual(changes, [
    "x:unknown->alive",
    "x:alive->suspect",
    "x:suspect->alive",
    "x:alive->dead",
    "x:dead->alive",
  ]);
  assert.equal(t.self.incarnation, 0);
  t.apply(["me", "me", S, 0], 7);
  assert.equal(t.self.incarnation, 1);
  assert.ok(t.piggyback().some((u) => u[0] === "me" && u[2] === A && u[3] === 1));
});

Deno.test("parseGossipMessage() rejects malformed frames with bad_field and unknown types", () => {
  const bad = [
    { t: "g.rumor", from: "a" },
    { t: "g.rumor", from: "a", e: [["k", "v", 0, "a", 0]] },
    { t: "g.rumor", from: "a", e: [["k", "v", 1, "a"]] },
    { t: "g.ping", from: "a", addr: "x", seq: -1 },
    { t: "g.digest", from: "", addr: "x", d: [] },
    { t: "g.delta", from: "a", e: [], m: [["a", "x", 7, 0]] },
    { t: "g.pingreq", from: "a", seq: 1, target: 3, taddr: "x" },
    { t: "g.rumor", from: "a", e: [["k".repeat(300), "v", 1, "a", 0]] },
  ];
  for (const msg of bad) {
    assert.throws(
      () => parseGossipMessage(msg),
      (e) => e instanceof ProtocolError && e.code === "bad_field",
    );
  }
  assert.throws(
    () => parseGossipMessage({ t: "g.nope", from: "a" }),
    (e) => e instanceof ProtocolError && e.code === "unknown_type",
  );
  const ok = parseGossipMessage({ t: "g.ack", from: "a", seq: 3, m: [["b", "b:1", 1, 2]] });
  assert.deepEqual(ok, { t: "g.ack", from: "a", seq: 3, m: [["b", "b:1", 1, 2]] });
});

Deno.test("GossipNode joins through one seed, spreads to all, and detects, then takes back, crashed members", () => {
  const c = new VirtualCluster(30);
  c.run(10_000, () => c.allAlive(30));
  assert.ok(c.allAlive(30), "all 30 should know each other");
  c.nodes.get("n3")!.spread("color", "blue");
  c.run(5_000, () => c.live().every((x) => x.get("color")?.value === "blue"));
  assert.ok(c.live().every((x) => x.get("color")?.value === "blue"));
  const learned = c.events.filter((e) => e.ev === "rumor.learned" && e.fields.key === "color");
  assert.equal(learned.length, 29);

  // crash two; the rest keep spreading and mark them down
  c.net.setDown("n28", true);
  c.net.setDown("n29", true);
  c.nodes.get("n0")!.spread("after", "crash");
  c.run(
    15_000,
    () => c.live().every((x) => x.get("after") !== undefined && x.memberCounts().dead === 2),
  );
  for (const x of c.live()) {
    assert.equal(x.get("after")?.value, "crash");
    assert.deepEqual(x.memberCounts(), { alive: 28, suspect: 0, dead: 2 });
  }
  // n29 comes back as a new process (incarnation 0) and is taken back everywhere
  c.net.setDown("n29", false);
  c.add("n29");
  c.run(15_000, () => c.live().every((x) => x.memberCounts().alive === 29));
  for (const x of c.live()) assert.equal(x.memberCounts().alive, 29, x.name);
  assert.equal(c.nodes.get("n29")!.get("after")?.value, "crash", "caught up by anti-entropy");
  assert.ok(c.nodes.get("n29")!.incarnation >= 1, "refuted its death with a higher incarnation");
});

Deno.test("GossipNode converges under 30% message loss through anti-entropy, even when rumors die at once", () => {
  const c = new VirtualCluster(25, { loss: 0.3, k: 1, seed: 5 });
  c.run(20_000, () => c.allAlive(25));
  for (let i = 0; i < 5; i++) c.nodes.get(`n${i * 5}`)!.spread(`key${i}`, `v${i}`);
  c.run(30_000, () => c.live().every((x) => x.keyCount === 5));
  for (const x of c.live()) assert.equal(x.keyCount, 5, x.name);
  assert.ok(c.events.some((e) => e.ev === "rumor.learned" && e.fields.via === "anti-entropy"));
});

Deno.test("GossipNode: a healed partition merges again (members believed dead are retried)", () => {
  const c = new VirtualCluster(10, { seed: 21 });
  c.run(10_000, () => c.allAlive(10));
  const left = ["n0", "n1", "n2", "n3", "n4"];
  const right = ["n5", "n6", "n7", "n8", "n9"];
  c.net.partition(left, right, true);
  c.run(20_000, () => c.live().every((x) => x.memberCounts().dead === 5));
  for (const x of c.live()) assert.equal(x.memberCounts().dead, 5, x.name);
  c.nodes.get("n1")!.spread("west", "1");
  c.nodes.get("n8")!.spread("east", "2");
  c.run(3_000);
  assert.equal(c.nodes.get("n6")!.get("west"), undefined, "nothing crosses the cut");
  c.net.partition(left, right, false);
  c.run(30_000, () => c.live().every((x) => x.memberCounts().alive === 10 && x.keyCount === 2));
  for (const x of c.live()) {
    assert.equal(x.memberCounts().alive, 10, x.name);
    assert.equal(x.get("west")?.value, "1", x.name);
    assert.equal(x.get("east")?.value, "2", x.name);
  }
});

Deno.test("GossipNode: concurrent writes of one key converge to the same version everywhere", () => {
  const c = new VirtualCluster(12, { seed: 3 });
  c.run(10_000, () => c.allAlive(12));
  const writes = [["n2", "red"], ["n7", "green"], ["n11", "blue"]].map(([n, v]) =>
    c.nodes.get(n)!.spread("color", v)
  );
  c.run(10_000, () => {
    const vs = c.live().map((x) => JSON.stringify(x.get("color")));
    return vs.every((v) => v === vs[0]);
  });
  const winner = writes.reduce((a, b) => (compareVersions(a.version, b.version) >= 0 ? a : b));
  for (const x of c.live()) assert.deepEqual(x.get("color"), winner, x.name);
});

Deno.test("GossipNode in an overlay sends only to its neighbours", () => {
  const n = 10;
  const ring = (i: number) => [`n${(i + 1) % n}`, `n${(i + n - 1) % n}`];
  const sent: [string, string, string][] = [];
  const net = new VirtualNetwork({ random: seededRandom(9) });
  const nodes: GossipNode[] = [];
  for (let i = 0; i < n; i++) {
    const inner = net.transport(`n${i}`);
    const node = new GossipNode({
      name: `n${i}`,
      addr: `n${i}`,
      random: seededRandom(i + 1),
      neighbours: ring(i),
      seeds: ring(i),
      gossipIntervalMs: 100,
      antiEntropyIntervalMs: 400,
      probeIntervalMs: 200,
      probeTimeoutMs: 80,
      transport: {
        send: (addr: string, msg: GossipMessage) => {
          sent.push([`n${i}`, addr, msg.t]);
          inner.send(addr, msg);
        },
      },
    });
    nodes.push(node);
    net.attach(`n${i}`, node);
    node.start(0);
  }
  for (let t = 20; t <= 2_000; t += 20) {
    for (const x of nodes) x.tick(t);
    net.deliver(t);
  }
  nodes[0].spread("k", "v");
  for (let t = 2_020; t <= 6_000; t += 20) {
    for (const x of nodes) x.tick(t);
    net.deliver(t);
  }
  assert.ok(nodes.every((x) => x.get("k")?.value === "v"));
  const gossip = sent.filter(([, , t]) => t !== "g.pingreq" && t !== "g.ack" && t !== "g.ping");
  for (const [from, to] of gossip) {
    assert.ok(ring(Number(from.slice(1))).includes(to), `${from} gossiped to ${to}`);
  }
});

Deno.test("simulate() is deterministic per seed and meets log2 N + ln N + 2 rounds at fanout 3", () => {
  const a = simulate({ nodes: 1000, fanout: 3, seed: 11 });
  const b = simulate({ nodes: 1000, fanout: 3, seed: 11 });
  assert.deepEqual(a.coverageByRound, b.coverageByRound);
  assert.ok(a.roundsToFullCoverage !== null);
  assert.ok(a.roundsToFullCoverage <= a.theoreticalRounds + 2);
  assert.equal(a.coverageByRound.at(-1), 1000);
  const crashed = simulate({ nodes: 1000, fanout: 3, crash: 0.3, seed: 11 });
  assert.equal(crashed.crashed, 300);
  assert.equal(crashed.coverageByRound.at(-1), 700, "every live node, and only those");
  const lossy = simulate({ nodes: 1000, fanout: 3, loss: 0.2, seed: 11 });
  assert.ok(lossy.roundsToFullCoverage !== null);
  assert.ok(lossy.messagesPerNode > 0);
});

Deno.test("GossipNode stop rules: counter k=1 stops at the first duplicate and spreads less than coin k=5", () => {
  const coin = simulate({ nodes: 2000, seed: 4, stopRule: "coin", k: 5 });
  const counter = simulate({ nodes: 2000, seed: 4, stopRule: "counter", k: 1 });
  assert.equal(counter.stopRule, "counter");
  assert.equal(counter.coverageByRound.at(-1), 2000, "anti-entropy covers the residue");
  assert.ok(counter.messagesPerNodeUntilQuiet < coin.messagesPerNodeUntilQuiet);
  assert.ok(counter.learnedByRumor < coin.learnedByRumor, "a shorter-lived rumor reaches fewer");
});

Deno.test("simulate() with SWIM: every node joins through s0, and every live node is covered after crashes", () => {
  const r = simulate({ nodes: 200, swim: true, crash: 0.1, loss: 0.05, seed: 2 });
  assert.equal(r.swim, true);
  assert.ok(r.joinRounds !== undefined && r.joinRounds > 0, "joined");
  assert.equal(r.crashed, 20);
  assert.ok(r.roundsToFullCoverage !== null);
  assert.equal(r.coverageByRound.at(-1), 180);
});

Deno.test("GossipNode asks its transport to reset the link to a member it declares dead", () => {
  const c = new VirtualCluster(0, { seed: 31 });
  const resets: string[] = [];
  const inner = c.net.transport("n0");
  c.add("n0", { transport: { send: (a, m) => inner.send(a, m), reset: (a) => resets.push(a) } });
  c.add("n1");
  c.add("n2");
  c.run(10_000, () => c.allAlive(3));
  assert.ok(c.allAlive(3));
  c.net.setDown("n2", true);
  c.run(10_000, () => c.nodes.get("n0")!.memberCounts().dead === 1);
  assert.equal(c.nodes.get("n0")!.memberCounts().dead, 1);
  assert.ok(resets.includes("n2"), `resets: ${resets.join(",")}`);
  assert.ok(!resets.includes("n1"), "a member that answers is never reset");
});

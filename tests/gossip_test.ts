/**
 * Integration tests of the gossip role: real processes on 127.0.0.1 talking TCP.
 */
import assert from "node:assert/strict";
import {
  type ClusterNode,
  LocalCluster,
  type LocalClusterOptions,
  type NodeSpec,
  peerdArgv,
  runPeerd,
  waitUntil,
} from "./harness/mod.ts";
import { RemoteError, RpcClient } from "../mod/wire/mod.ts";
import { WORDS } from "../mod/gossip/mod.ts";

/** Short intervals so 20 processes converge, detect and settle within the test budget. */
const FAST = [
  "--gossip-interval",
  "50",
  "--anti-entropy-interval",
  "300",
  "--probe-interval",
  "250",
  "--probe-timeout",
  "100",
  "--suspect-timeout",
  "1500",
];

/** LocalCluster.start, retried when another process took a port between pick and listen. */
async function startCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  for (let attempt = 1;; attempt++) {
    try {
      return await LocalCluster.start(options);
    } catch (err) {
      if (attempt >= 3 || !/address in use/.test(String(err))) throw err;
    }
  }
}

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `g${i + 1}`);
}

async function aliveCounts(nodes: ClusterNode[]): Promise<number[]> {
  return await Promise.all(
    nodes.map(async (n) => ((await n.ctl("status")).members as { alive: number }).alive),
  );
}

async function waitJoined(nodes: ClusterNode[], expected: number, timeoutMs = 30_000) {
  await waitUntil(
    async () => (await aliveCounts(nodes)).every((c) => c === expected),
    { timeoutMs, intervalMs: 100, what: `every node to see ${expected} members alive` },
  );
}

function learnedEvent(key: string, from: number) {
  return (n: ClusterNode) =>
    n.waitForEvent((e) => e.ev === "rumor.learned" && e.key === key, { timeoutMs: 15_000, from });
}

Deno.test("gossip: 20 processes join through one seed, spread, converge on concurrent writes, survive kill -9", async () => {
  const all = names(20);
  const specs: NodeSpec[] = all.map((name, i) => ({
    name,
    role: "gossip",
    args: [...FAST, ...(i === 0 ? [] : ["--seeds", "g1"])],
  }));
  await using cluster = await startCluster({ nodes: specs, readyTimeoutMs: 30_000 });
  const nodes = cluster.nodes;
  await waitJoined(nodes, 20);

  // 1. a key spread at one node is learned by all 20
  const origin = cluster.node("g7");
  const others = nodes.filter((n) => n !== origin);
  let marks = others.map((n) => n.mark());
  const spread = await origin.ctl("spread", ["motd", "hello", "world"]);
  assert.equal(spread.value, "hello world");
  const learned = await Promise.all(others.map((n, i) => learnedEvent("motd", marks[i])(n)));
  for (const e of learned) {
    assert.deepEqual(e.version, spread.version);
    assert.ok(Number(e.hops) >= 1);
    assert.ok(all.includes(String(e.from)));
  }
  const got = await Promise.all(nodes.map((n) => n.ctl("get", ["motd"])));
  for (const g of got) {
    assert.equal(g.value, "hello world");
    assert.deepEqual(g.version, spread.version);
  }

  // 2. concurrent writes of one key at different nodes converge to the same value everywhere
  const [a, b] = await Promise.all([
    cluster.node("g2").ctl("spread", ["color", "red"]),
    cluster.node("g15").ctl("spread", ["color", "blue"]),
  ]);
  const va = a.version as { clock: number; node: string };
  const vb = b.version as { clock: number; node: string };
  const winner = va.clock !== vb.clock
    ? (va.clock > vb.clock ? a : b)
    : (va.node > vb.node ? a : b);
  await waitUntil(async () => {
    const views = await Promise.all(nodes.map((n) => n.ctl("get", ["color"]).catch(() => null)));
    return views.every((v) =>
      v !== null && v.value === winner.value &&
      JSON.stringify(v.version) === JSON.stringify(winner.version)
    );
  }, { timeoutMs: 15_000, intervalMs: 100, what: "every node to hold the winning color" });

  // 3. kill -9 two nodes first; every survivor still learns a new key and marks both down
  const victims = [cluster.node("g19"), cluster.node("g20")];
  const survivors = nodes.filter((n) => !victims.includes(n));
  marks = survivors.map((n) => n.mark());
  for (const v of victims) await v.kill("SIGKILL");
  const origin2 = cluster.node("g1");
  await origin2.ctl("spread", ["after-crash", "still", "here"]);
  await Promise.all(
    survivors.filter((n) => n !== origin2).map((n) =>
      learnedEvent("after-crash", marks[survivors.indexOf(n)])(n)
    ),
  );
  await Promise.all(
    survivors.map((n, i) =>
      Promise.all(
        victims.map((v) =>
          n.waitForEvent((e) => e.ev === "member.down" && e.peer === v.name, {
            timeoutMs: 20_000,
            from: marks[i],
          })
        ),
      )
    ),
  );
  // g5's member list shows both dead and the 18 others alive (polled: a member falsely
  // suspected under load refutes it within a probe period)
  await waitUntil(async () => {
    const members = (await cluster.node("g5").ctl("members")).members as {
      name: string;
      state: string;
    }[];
    return members.length === 20 &&
      members.find((m) => m.name === "g19")?.state === "dead" &&
      members.find((m) => m.name === "g20")?.state === "dead" &&
      members.filter((m) => m.state === "alive").length === 18;
  }, { timeoutMs: 10_000, what: "g5 to list g19 and g20 dead, 18 alive" });

  // 4. a member that comes back is taken back, and catches up through anti-entropy
  const back = victims[1];
  marks = survivors.map((n) => n.mark());
  await back.start();
  await Promise.all(
    survivors.map((n, i) =>
      n.waitForEvent((e) => e.ev === "member.up" && e.peer === back.name && e.was === "dead", {
        timeoutMs: 15_000,
        from: marks[i],
      })
    ),
  );
  await waitUntil(
    async () => (await back.ctl("get", ["after-crash"]).catch(() => null))?.value === "still here",
    { timeoutMs: 10_000, what: `${back.name} to catch up` },
  );

  const codes = await cluster.stop();
  for (const [name, code] of codes) assert.equal(code, 0, `${name} exit code`);
});

Deno.test("gossip: a neighbours-only overlay (ring + chords, 20 processes) spreads to all, only along edges", async () => {
  const all = names(20);
  const n = all.length;
  const neighbours = (i: number) =>
    [...new Set([(i + 1) % n, (i + n - 1) % n, (i + 5) % n, (i + n - 5) % n])].map((j) => all[j]);
  const specs: NodeSpec[] = all.map((name, i) => ({
    name,
    role: "gossip",
    args: FAST,
    entry: { neighbours: neighbours(i) },
  }));
  await using cluster = await startCluster({ nodes: specs, readyTimeoutMs: 30_000 });
  const status = await cluster.node("g3").ctl("status");
  assert.equal(status.topology, "overlay");
  assert.deepEqual([...(status.neighbours as string[])].sort(), neighbours(2).sort());
  const origin = cluster.node("g1");
  // wait until g1 has heard back from its neighbours
  await waitUntil(
    async () => ((await origin.ctl("status")).members as { alive: number }).alive >= 5,
    { timeoutMs: 15_000, what: "g1 to know its neighbours" },
  );
  const others = cluster.nodes.filter((x) => x !== origin);
  const marks = others.map((x) => x.mark());
  await origin.ctl("spread", ["route", "ring-and-chords"]);
  const learned = await Promise.all(others.map((x, i) => learnedEvent("route", marks[i])(x)));
  for (let i = 0; i < others.length; i++) {
    const idx = all.indexOf(others[i].name);
    assert.ok(
      neighbours(idx).includes(String(learned[i].from)),
      `${others[i].name} learned from ${learned[i].from}, not a neighbour`,
    );
  }
  // g11 is as far from g1 as the overlay allows: it needs more than one hop
  assert.ok(Number(learned[others.findIndex((x) => x.name === "g11")].hops) >= 2);
  const values = await Promise.all(cluster.nodes.map((x) => x.ctl("get", ["route"])));
  for (const v of values) assert.equal(v.value, "ring-and-chords");
});

Deno.test("gossip: bad input gets error frames or discard events, never a crash", async () => {
  await using cluster = await startCluster({
    nodes: names(3).map((name) => ({
      name,
      role: "gossip",
      args: [...FAST, "--max-value", "1024"],
    })),
  });
  const [g1, g2, g3] = cluster.nodes;
  await waitJoined(cluster.nodes, 3);
  const addr = { hostname: "127.0.0.1", port: g1.port };

  // garbage bytes: an error frame, then the connection is closed
  const raw = await Deno.connect(addr);
  try {
    await raw.write(new Uint8Array([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
    const buf = new Uint8Array(4096);
    const n = await raw.read(buf);
    assert.ok(n !== null && n > 0, "expected an error frame");
  } finally {
    raw.close();
  }

  // a length prefix far over the frame limit: frame_too_large, and the connection closes
  const huge = await Deno.connect(addr);
  try {
    await huge.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff]));
    const buf = new Uint8Array(4096);
    let text = "";
    for (let i = 0; i < 20; i++) {
      const n = await huge.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(text, /frame_too_large/);
  } finally {
    huge.close();
  }

  const mallory = await RpcClient.connect(addr, { role: "gossip", name: "mallory" });
  try {
    // wrong field types → bad_field
    await assert.rejects(
      mallory.request({ t: "g.ping", from: "mallory", addr: 5, seq: "x" }),
      (err) => err instanceof RemoteError && err.code === "bad_field",
    );
    await assert.rejects(
      mallory.request({ t: "g.rumor", from: "mallory", e: [["k", 7, 1, "mallory", 0]] }),
      (err) => err instanceof RemoteError && err.code === "bad_field",
    );
    // a from that is not the hello's name
    await assert.rejects(
      mallory.request({ t: "g.rumor", from: "g2", e: [], m: [] }),
      (err) => err instanceof RemoteError && /hello/.test(err.message),
    );
    // unknown member → discarded, with an event
    let mark = g1.mark();
    mallory.send({ t: "g.rumor", from: "mallory", e: [["stolen", "v", 99, "mallory", 0]], m: [] });
    const unknown = await g1.waitForEvent((e) => e.ev === "gossip.discard", { from: mark });
    assert.equal(unknown.reason, "unknown_member");
    assert.equal(unknown.from, "mallory");
    await assert.rejects(
      g1.ctl("get", ["stolen"]),
      (e) => e instanceof RemoteError && e.code === "not_found",
    );

    // once known (it joined with a digest), an oversized value is discarded, not stored
    mallory.send({ t: "g.digest", from: "mallory", addr: "127.0.0.1:1", d: [], m: [] });
    await g1.waitForEvent((e) => e.ev === "member.up" && e.peer === "mallory", { from: mark });
    mark = g1.mark();
    mallory.send({
      t: "g.rumor",
      from: "mallory",
      e: [["huge", "x".repeat(5000), 3, "mallory", 0]],
      m: [],
    });
    const big = await g1.waitForEvent((e) => e.ev === "gossip.discard", { from: mark });
    assert.equal(big.reason, "value_too_large");
    assert.equal(big.key, "huge");
    await assert.rejects(
      g1.ctl("get", ["huge"]),
      (e) => e instanceof RemoteError && e.code === "not_found",
    );
  } finally {
    await mallory.close();
  }

  // oversized and malformed ctl commands: error replies, exit 1 / 2 from the CLI
  const tooBig = await runPeerd(["ctl", g2.address, "spread", "k", "y".repeat(2000)]);
  assert.equal(tooBig.code, 1);
  assert.match(tooBig.stderr, /value_too_large/);
  const missing = await runPeerd(["ctl", g2.address, "get", "nothing"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not_found/);
  const usage = await runPeerd(["ctl", g2.address, "spread", "only-key"]);
  assert.equal(usage.code, 1);

  // the node still serves and gossips
  const mark3 = g3.mark();
  const ok = await runPeerd(["ctl", g1.address, "spread", "fine", "yes", "--compact"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).value, "yes");
  await learnedEvent("fine", mark3)(g3);

  // a graceful stop says goodbye: the others mark it down at once, and it exits 0
  const mark1 = g1.mark();
  const stopped = await g3.stop();
  assert.equal(stopped.code, 0);
  assert.ok(stopped.ms < 5_000);
  await g1.waitForEvent((e) => e.ev === "member.down" && e.peer === "g3", {
    from: mark1,
    timeoutMs: 5_000,
  });
});

Deno.test("gossip: config errors exit 2 with one line; gossip-sim prints rounds beside log2 N + ln N", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gossip-cfg-" });
  try {
    const peers = `${dir}/peers.json`;
    await Deno.writeTextFile(
      peers,
      JSON.stringify({
        cluster: "t",
        nodes: [{ name: "g1", host: "127.0.0.1", port: 1, role: "gossip", neighbours: ["nope"] }],
      }),
    );
    const bad = await runPeerd(["--role", "gossip", "--name", "g1", "--peers", peers]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"nope"/);
    await Deno.writeTextFile(
      peers,
      JSON.stringify({
        cluster: "t",
        nodes: [{ name: "g1", host: "127.0.0.1", port: 1, role: "gossip" }],
      }),
    );
    const noList = await runPeerd([
      "--role",
      "gossip",
      "--name",
      "g1",
      "--peers",
      peers,
      "--topology",
      "overlay",
    ]);
    assert.equal(noList.code, 2);
    assert.match(noList.stderr, /no "neighbours"/);
    const badOpt = await runPeerd(["--role", "gossip", "--fanout", "0", "--listen", "127.0.0.1:0"]);
    assert.equal(badOpt.code, 2);
    assert.match(badOpt.stderr, /--fanout/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const sim = await runPeerd(["gossip-sim", "--nodes", "1000", "--fanout", "3", "--seed", "7"]);
  assert.equal(sim.code, 0, sim.stderr);
  assert.match(
    sim.stdout,
    /rounds to full coverage: \d+ rounds \(log2 N \+ ln N = 16\.87; target ≤ 18\.87: met\)/,
  );
  assert.match(sim.stdout, /messages per node/);
  const json = await runPeerd(["gossip-sim", "--nodes", "1000", "--loss", "0.2", "--json"]);
  const r = JSON.parse(json.stdout);
  assert.equal(r.nodes, 1000);
  assert.ok(r.roundsToFullCoverage > 0);
  const usage = await runPeerd(["gossip-sim", "--loss", "2"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--loss/);
});

Deno.test("gossip: --generate spreads random words as a Poisson process", async () => {
  await using cluster = await startCluster({
    nodes: [
      { name: "g1", role: "gossip", args: [...FAST, "--generate", "--generate-mean", "0.1"] },
      { name: "g2", role: "gossip", args: FAST },
    ],
  });
  const g2 = cluster.node("g2");
  const first = await g2.waitForEvent((e) => e.ev === "rumor.learned" && e.key === "g1/1", {
    timeoutMs: 10_000,
  });
  assert.ok(WORDS.includes(String((await g2.ctl("get", ["g1/1"])).value)));
  assert.equal(first.from, "g1");
  await g2.waitForEvent((e) => e.ev === "rumor.learned" && e.key === "g1/3", { timeoutMs: 10_000 });
});

Deno.test("gossip: the prompt (stdin a terminal) runs spread, get, members and quit", async () => {
  // util-linux `script` provides the pseudo-terminal; elsewhere there is none to test with
  const hasScript = await new Deno.Command("script", { args: ["--version"], stdout: "piped" })
    .output().then((o) => new TextDecoder().decode(o.stdout).includes("util-linux"), () => false);
  if (!hasScript) return;
  const argv = peerdArgv(["--role", "gossip", "--name", "solo", "--listen", "127.0.0.1:0"]);
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", quoted, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    const writer = child.stdin.getWriter();
    await writer.write(
      new TextEncoder().encode("spread color deep blue\nget color\nmembers\nnope\nquit\n"),
    );
    const out = await child.output();
    await writer.close().catch(() => {});
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text);
    assert.match(text, /"key":"color","value":"deep blue","version":\{"clock":1,"node":"solo"\}/);
    assert.match(text, /"members":\[\{"name":"solo"/);
    assert.match(text, /error: unknown command nope/);
  } finally {
    clearTimeout(timer);
  }
});

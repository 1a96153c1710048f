import assert from "node:assert/strict";
import { LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import { freePorts, hasExecutable, httpNodes } from "./harness/http.ts";
import { readSse } from "../mod/http/mod.ts";
import { writeAgencyFile } from "../mod/lottery/demo.ts";

const PROMTOOL = "/usr/bin/promtool";

/** A figure each role's /metrics must show (besides peerd_info and process_*). */
const EXPECTED: Record<string, string[]> = {
  echo: ["peerd_echo_echoed_total"],
  ring: ["peerd_ring_grants_total", "peerd_ring_lock_wait_seconds_bucket", "peerd_ring_token_here"],
  gossip: ['peerd_gossip_members{state="alive"}', "peerd_gossip_sent_bytes_total"],
  multicast: ["peerd_multicast_deliveries_total", "peerd_multicast_delivery_latency_seconds_count"],
  broker: ["peerd_broker_publications_in_total", 'peerd_broker_backlog{daemon="d1"}'],
  daemon: ["peerd_daemon_publications_in_total", "peerd_daemon_outbox_depth"],
  queue: ["peerd_queue_depth 1", "peerd_queue_published_total 1", "peerd_queue_unacked"],
  replica: ["peerd_replica_active 1", 'peerd_replica_peer_up{peer="rm'],
  frontend: ['peerd_frontend_replica_up{replica="rm1"} 1'],
  "lottery-server": ["peerd_lottery_agencies 2", "peerd_lottery_agencies_done 0"],
  leader: ["peerd_events_total"],
};

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
async function promtool(text: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("--http on every role: healthz, readyz, status, metrics accepted by promtool, events", async () => {
  const specs = httpNodes([
    { name: "e1", role: "echo" },
    { name: "n1", role: "ring" },
    { name: "n2", role: "ring" },
    { name: "n3", role: "ring" },
    { name: "g1", role: "gossip" },
    { name: "g2", role: "gossip" },
    { name: "m1", role: "multicast" },
    { name: "m2", role: "multicast" },
    { name: "b1", role: "broker" },
    { name: "d1", role: "daemon" },
    { name: "q1", role: "queue" },
    { name: "rm1", role: "replica" },
    { name: "rm2", role: "replica" },
    { name: "fe1", role: "frontend" },
    { name: "lottery", role: "lottery-server", args: ["--agencies", "2"] },
    { name: "lead", role: "leader", args: ["--followers", "2", "--final-timeout", "60000"] },
  ]);
  await using cluster = await LocalCluster.start({ nodes: specs });
  const http = (name: string) => `http://${specs.find((s) => s.name === name)!.http}`;

  // a live /events stream on m1 before anything is sent
  const events = new AbortController();
  const res = await fetch(`${http("m1")}/events?ev=mc.`, { signal: events.signal });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const stream = readSse(res.body!);
  try {
    // some work on each role, so counters and histograms have something to show
    await cluster.node("e1").ctl("status");
    await waitUntil(async () => (await cluster.node("n1").ctl("status")).alive, {
      what: "ring up",
    });
    const lock = await cluster.node("n2").ctl("lock", ["10"]);
    await cluster.node("n2").ctl("unlock", [String(lock.fence)]);
    await cluster.node("g1").ctl("spread", ["colour", "blue"]);
    await waitUntil(async () => (await cluster.node("m2").ctl("status")).state === "member", {
      what: "multicast view",
    });
    await cluster.node("m2").ctl("send", ["hello"]);
    await cluster.node("m1").ctl("send", ["hi there"]);
    await cluster.node("q1").ctl("declare", ["jobs"]);
    await cluster.node("q1").ctl("publish", ["", "jobs", "x"]);
    const d1 = cluster.node("d1").address;
    assert.equal((await runPeerd(["mom", "--daemon", d1, "create"])).code, 0);

    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const msg = (await stream.next()).value!;
      if (msg.event === "hello") continue;
      const e = JSON.parse(msg.data);
      assert.ok(String(e.ev).startsWith("mc."), e.ev);
      if (e.ev === "mc.delivered") seen.add(String(e.body));
    }
    assert.deepEqual([...seen].sort(), ["hello", "hi there"]);

    for (const spec of specs) {
      const base = http(spec.name);
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200, spec.name);
      assert.equal(await health.text(), "ok\n");
      await waitUntil(async () => {
        const r = await fetch(`${base}/readyz`);
        const body = await r.text();
        return r.status === 200 && body === "ready\n";
      }, { what: `${spec.name} ready`, timeoutMs: 15_000 });
      const status = await fetch(`${base}/status`);
      assert.equal(status.headers.get("content-type"), "application/json; charset=utf-8");
      const s = await status.json();
      assert.equal(s.role, spec.role);
      assert.equal(s.name, spec.name);
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      const text = await metrics.text();
      assert.match(
        text,
        new RegExp(`peerd_info\\{role="${spec.role}",name="${spec.name}",version="[^"]+"\\} 1`),
      );
      assert.match(text, /process_resident_memory_bytes \d+/);
      assert.match(text, /peerd_ready 1/);
      for (const want of EXPECTED[spec.role] ?? []) {
        if (want === "peerd_ring_grants_total" && spec.name !== "n2") continue;
        if (want === "peerd_ring_lock_wait_seconds_bucket" && spec.name !== "n2") continue;
        if (want.startsWith("peerd_multicast_delivery_latency") && spec.name === "e1") continue;
        assert.ok(text.includes(want), `${spec.name}: no ${want} in\n${text}`);
      }
      if (hasExecutable(PROMTOOL)) {
        const check = await promtool(text);
        assert.equal(check.code, 0, `${spec.name}: promtool: ${check.out}\n${text}`);
      }
    }
    if (!hasExecutable(PROMTOOL)) {
      console.log(`skipped: promtool check metrics (no ${PROMTOOL}; Debian package prometheus)`);
    }
  } finally {
    await stream.return(undefined);
    events.abort();
  }
});

Deno.test("--http readyz says why a node is not ready: a daemon without its broker", async () => {
  const specs = httpNodes([
    { name: "b1", role: "broker" },
    { name: "d1", role: "daemon" },
  ]);
  await using cluster = await LocalCluster.start({ nodes: specs });
  const base = `http://${specs[1].http}`;
  await waitUntil(async () => (await fetch(`${base}/readyz`).then((r) => r.text())) === "ready\n", {
    what: "daemon ready",
  });
  await cluster.node("b1").kill("SIGKILL");
  const body = await waitUntil(async () => {
    const r = await fetch(`${base}/readyz`);
    const text = await r.text();
    return r.status === 503 ? text : undefined;
  }, { what: "daemon not ready", timeoutMs: 15_000 });
  assert.match(body, /^not ready: broker link /);
  const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
  assert.match(metrics, /peerd_ready 0/);
  assert.match(metrics, /peerd_daemon_broker_link_up 0/);
});

Deno.test("--http with a cluster secret wants the bearer token that peerd http-token prints", async () => {
  const specs = httpNodes([{ name: "e1", role: "echo" }, { name: "n1", role: "ring" }]);
  await using cluster = await LocalCluster.start({ nodes: specs, secret: "s3cret" });
  const byFlag = await runPeerd(["http-token", "--secret", "s3cret"]);
  assert.equal(byFlag.code, 0, byFlag.stderr);
  const token = byFlag.stdout.trim();
  const byFile = await runPeerd(["http-token", "--peers", cluster.peersPath]);
  assert.equal(byFile.stdout.trim(), token);
  const byEnv = await runPeerd(["http-token"], { env: { PEERD_SECRET: "s3cret" } });
  assert.equal(byEnv.stdout.trim(), token);
  const none = await runPeerd(["http-token"], { env: { PEERD_SECRET: "" } });
  assert.equal(none.code, 2);
  for (const spec of specs) {
    const base = `http://${spec.http}`;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    for (const path of ["/status", "/metrics", "/readyz", "/events"]) {
      const r = await fetch(base + path);
      await r.body?.cancel();
      assert.equal(r.status, 401, `${spec.name} ${path}`);
      assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="peerd"');
    }
    const ok = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).name, spec.name);
    const wrong = await fetch(`${base}/status`, { headers: { authorization: "Bearer 00" } });
    await wrong.body?.cancel();
    assert.equal(wrong.status, 401);
  }
  // the ring serves its status through its own port, with the secret
  const ring = await fetch(`http://${specs[1].http}/status`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal((await ring.json()).role, "ring");
  await cluster.node("e1").ctl("status");
});

Deno.test("--http: a bad value exits 2 naming it, a taken port exits 1, PEERD_HTTP is read", async () => {
  const bad = await runPeerd(["--role", "echo", "--listen", "127.0.0.1:0", "--http", "nowhere"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--http: "nowhere" is not host:port or a port/);
  const [port, taken] = freePorts(2);
  const holder = Deno.listen({ hostname: "127.0.0.1", port: taken });
  try {
    const busy = await runPeerd([
      "--role",
      "echo",
      "--listen",
      `127.0.0.1:${port}`,
      "--http",
      `${taken}`,
    ]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, new RegExp(`Cannot listen on 127.0.0.1:${taken} \\(--http\\)`));
  } finally {
    holder.close();
  }
  const [p, h] = freePorts(2);
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "e1", role: "echo", port: p }],
    env: { PEERD_HTTP: `127.0.0.1:${h}` },
  });
  const r = await fetch(`http://127.0.0.1:${h}/status`);
  assert.equal((await r.json()).name, "e1");
  const listening = cluster.node("e1").events().find((e) => e.ev === "http.listening");
  assert.equal(listening?.address, `127.0.0.1:${h}`);
  const help = await runPeerd(["--role", "echo", "--help"]);
  assert.match(help.stdout, /--http <host:port>/);
});

/** Scrapes `http`'s /metrics until it holds every one of `want`; checks it with promtool. */
async function scrapeWhileRunning(name: string, http: string, want: string[]): Promise<string> {
  const text = await waitUntil(async () => {
    try {
      const body = await fetch(`http://${http}/metrics`).then((r) => r.text());
      return want.every((w) => body.includes(w)) ? body : undefined;
    } catch {
      return undefined; // not listening yet
    }
  }, { what: `${name} /metrics with ${want.join(", ")}`, timeoutMs: 20_000 });
  if (hasExecutable(PROMTOOL)) {
    const check = await promtool(text);
    assert.equal(check.code, 0, `${name}: promtool: ${check.out}\n${text}`);
  }
  return text;
}

Deno.test("--http on the short-lived roles: promtool accepts an agency's, the followers' and the leader's /metrics while they run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-http-short-" });
  const [a1Http, a2Http, f1Http, f2Http] = freePorts(4).map((p) => `127.0.0.1:${p}`);
  const specs = httpNodes([
    { name: "lottery", role: "lottery-server", args: ["--agencies", "3"] },
    { name: "lead", role: "leader", args: ["--followers", "2", "--turn-timeout", "10000"] },
  ]);
  const client = (name: string, role: string, http?: string) => ({
    name,
    role,
    unlisted: true,
    deferred: true,
    readyEvent: null,
    args: http ? ["--http", http] : [],
  });
  await using cluster = await LocalCluster.start({
    dir,
    nodes: [
      ...specs,
      client("a1", "agency", a1Http),
      client("a2", "agency", a2Http),
      client("a3", "agency"),
      client("f1", "follower", f1Http),
      client("f2", "follower", f2Http),
    ],
  });
  const server = cluster.node("lottery").address;
  for (const a of [1, 2, 3]) {
    await writeAgencyFile(`${dir}/agency-${a}.csv`, a, 10, []);
    const node = cluster.node(`a${a}`);
    node.spec.args = [
      ...node.spec.args!,
      "--agency",
      String(a),
      "--bets",
      `${dir}/agency-${a}.csv`,
      "--server",
      server,
    ];
  }
  // agencies 1 and 2 send their bets and wait for the draw, which waits for agency 3
  await cluster.node("a1").start();
  const a1 = await scrapeWhileRunning("a1", a1Http, [
    'peerd_info{role="agency",name="a1"',
    "peerd_agency_bets 10",
    "peerd_agency_round 1",
    "peerd_ready 1",
  ]);
  assert.match(a1, /peerd_events_total\{ev="round"\} 1/);
  await cluster.node("a2").start();
  await scrapeWhileRunning("a2", a2Http, ['peerd_info{role="agency",name="a2"', "peerd_ready 1"]);
  await scrapeWhileRunning("lottery", specs[0].http, ["peerd_lottery_agencies_done 2"]);
  await cluster.node("a3").start();
  assert.deepEqual(
    await Promise.all(["a1", "a2", "a3"].map((a) => cluster.node(a).exited(30_000))),
    [0, 0, 0],
  );

  // follower 1 asks for a turn; the leader waits for follower 2 before granting any
  const leader = cluster.node("lead").address;
  for (const f of ["f1", "f2"]) {
    const node = cluster.node(f);
    node.spec.args = [...node.spec.args!, "--queue", leader, "--write-delay", "1500"];
  }
  await cluster.node("f1").start();
  await scrapeWhileRunning("f1", f1Http, [
    'peerd_info{role="follower",name="f1"',
    "peerd_follower_values 0",
    "peerd_ready 1",
  ]);
  await scrapeWhileRunning("lead", specs[1].http, [
    "peerd_leader_followers 2",
    "peerd_leader_followers_requested 1",
  ]);
  await cluster.node("f2").start();
  // each turn holds for the write delay: the first grant is seen while the job runs
  await scrapeWhileRunning("lead", specs[1].http, ["peerd_leader_grants_total 1"]);
  await scrapeWhileRunning("f2", f2Http, ['peerd_info{role="follower",name="f2"']);
  assert.deepEqual(
    await Promise.all([cluster.node("f1").exited(30_000), cluster.node("f2").exited(30_000)]),
    [0, 0],
  );
});

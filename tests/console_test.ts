import assert from "node:assert/strict";
import { LocalCluster, peerdCommand, runPeerd, waitUntil } from "./harness/mod.ts";
import {
  ARTEFACTS,
  CHROMIUM,
  CHROMIUM_ARGS,
  freePorts,
  hasExecutable,
  httpNodes,
} from "./harness/http.ts";
import {
  layoutSpaceTime,
  networkOf,
  renderSpaceTimeSvg,
  streamQuery,
  unreachableFrom,
} from "../mod/console/mod.ts";
import type { EventRecord } from "../mod/events/mod.ts";
import { loadPeersFile } from "../mod/config/mod.ts";
import { startConsole } from "../mod/console/mod.ts";
import { FAST_GOSSIP_ARGS, Lab, labTest } from "./harness/lab.ts";

// the page's DOM, in functions that run in the browser
// deno-lint-ignore no-explicit-any
declare const document: any;

const FAST_MC = ["--heartbeat-ms", "50", "--fail-timeout-ms", "600"];

function ev(
  node: string,
  ts: number,
  name: string,
  fields: Record<string, unknown> = {},
): EventRecord {
  return { ts, node, role: "multicast", ev: name, ...fields };
}

Deno.test("layoutSpaceTime() draws one arrow per copy delivered elsewhere, and checks the orders", () => {
  const events = [
    ev("a", 1, "view.changed", { view: 1, members: ["a", "b", "c"] }),
    ev("a", 2, "mc.sent", { id: "a:1", lamport: 3 }),
    ev("b", 3, "mc.sent", { id: "b:1", lamport: 3 }),
    ...["a", "b", "c"].flatMap((n, i) => [
      ev(n, 10 + i, "mc.delivered", { id: "a:1", from: "a", lamport: 3, idx: 1 }),
      ev(n, 20 + i, "mc.delivered", { id: "b:1", from: "b", lamport: 3, idx: 2 }),
    ]),
    ev("c", 30, "stopped"),
  ];
  const layout = layoutSpaceTime(events, { nodes: ["a", "b", "c"] });
  assert.equal(layout.arrows.length, 4); // 2 messages × 2 other nodes
  assert.deepEqual(layout.lanes.map((l) => l.node), ["a", "b", "c"]);
  assert.equal(layout.sameOrder, true);
  assert.deepEqual(layout.orders.c, ["a:1", "b:1"]);
  assert.equal(layout.views.length, 1);
  assert.deepEqual(layout.ends.map((e) => [e.node, e.how]), [["c", "stopped"]]);
  const arrow = layout.arrows.find((a) => a.id === "b:1" && a.to === "c")!;
  assert.equal(arrow.y1, layout.lanes[1].y);
  assert.equal(arrow.y2, layout.lanes[2].y);
  assert.ok(arrow.x2 > arrow.x1, "arrows go forward in time");
  const svg = renderSpaceTimeSvg(layout);
  assert.equal(svg.match(/<line class="arrow"/g)?.length, 4);
  assert.match(svg, /orders identical/);
  assert.match(svg, /view 1 \{a,b,c\}/);

  // b delivers them the other way round: the diagram says so
  const swapped = events.map((e) =>
    e.node === "b" && e.ev === "mc.delivered" ? { ...e, idx: e.id === "a:1" ? 2 : 1 } : e
  );
  assert.equal(layoutSpaceTime(swapped).sameOrder, false);
  assert.match(renderSpaceTimeSvg(layoutSpaceTime(swapped)), /orders DIFFER/);

  // a window of the last messages; a node seen down gets a mark; time to scale
  const windowed = layoutSpaceTime(events, { maxMessages: 1, down: { c: 25 }, axis: "time" });
  assert.equal(windowed.sends.length, 1);
  assert.equal(windowed.arrows.length, 2);
  assert.ok(windowed.ends.some((e) => e.node === "c" && e.how === "down"));
  assert.equal(layoutSpaceTime([]).arrows.length, 0);
});

Deno.test("networkOf() tells cut links (both ends answer, one cannot reach the other) from down nodes", () => {
  const gossip = (name: string, states: Record<string, string>, up = true) => ({
    name,
    role: "gossip",
    up,
    status: up ? { members: {} } : undefined,
    extra: up
      ? { members: { members: Object.entries(states).map(([n, state]) => ({ name: n, state })) } }
      : undefined,
  });
  // g1 is cut off from g2 and g3 (it suspects them, they count it dead); g4 is down
  const nodes = [
    gossip("g1", { g1: "alive", g2: "suspect", g3: "dead", g4: "dead" }),
    gossip("g2", { g1: "dead", g2: "alive", g3: "alive", g4: "dead" }),
    gossip("g3", { g1: "dead", g2: "alive", g3: "alive", g4: "suspect" }),
    gossip("g4", {}, false),
    { name: "e1", role: "echo", up: true, status: {} },
  ];
  assert.deepEqual(unreachableFrom(nodes[0], nodes), ["g2", "g3", "g4"]);
  assert.equal(unreachableFrom(nodes[3], nodes), undefined);
  assert.equal(unreachableFrom(nodes[4], nodes), undefined);
  const net = networkOf(nodes);
  const state = Object.fromEntries(net.edges.map((e) => [`${e.a}-${e.b}`, e.state]));
  assert.deepEqual(state, {
    "g1-g2": "cut",
    "g1-g3": "cut",
    "g1-g4": "down",
    "g2-g3": "ok",
    "g2-g4": "down",
    "g3-g4": "down",
  });
  assert.deepEqual(net.groups, [["g1"], ["g2", "g3"]]);
  assert.deepEqual(net.cuts.find((e) => e.a === "g1" && e.b === "g2")?.by, ["g1", "g2"]);

  // one way: only n1 says n2 is down (the ring's own view); multicast by its view
  const ring = [
    { name: "n1", role: "ring", up: true, status: { down: ["n2"] } },
    { name: "n2", role: "ring", up: true, status: { down: [] } },
    { name: "m1", role: "multicast", up: true, status: { members: ["m1"], suspected: [] } },
    { name: "m2", role: "multicast", up: true, status: { members: ["m1", "m2"], suspected: [] } },
  ];
  const one = networkOf(ring);
  assert.deepEqual(one.cuts.map((e) => [e.a, e.b, e.by]), [["m1", "m2", ["m1"]], [
    "n1",
    "n2",
    ["n1"],
  ]]);
  assert.deepEqual(one.unreachable, { m1: ["m2"], n1: ["n2"] });
  // the MOM: a daemon whose broker link is down, a broker that lost it
  const mom = networkOf([
    { name: "b1", role: "broker", up: true, status: { daemons: { d1: { connected: false } } } },
    { name: "d1", role: "daemon", up: true, status: { link: "connecting" } },
  ]);
  assert.deepEqual(mom.cuts.map((e) => [e.a, e.b, e.by]), [["b1", "d1", ["b1", "d1"]]]);
});

Deno.test("streamQuery() asks each role for what its page draws; the ring's lock events thinned", () => {
  assert.equal(
    decodeURIComponent(streamQuery("ring")),
    "ev=lock.,token.,ready,stopped&thin=lock.&thin_keep=4",
  );
  assert.match(decodeURIComponent(streamQuery("multicast")), /^ev=mc\.sent,mc\.delivered,/);
  assert.equal(decodeURIComponent(streamQuery("queue")), "ev=ready,stopped");
});

/** Sends `perNode` messages from each node and waits until every node delivered them all. */
async function sendAndDeliver(cluster: LocalCluster, names: string[], perNode: number) {
  await waitUntil(
    async () =>
      (await Promise.all(names.map((n) => cluster.node(n).ctl("status")))).every((s) =>
        s.state === "member" && (s.members as string[]).length === names.length
      ),
    { what: "one view of every node", timeoutMs: 15_000 },
  );
  await Promise.all(names.map(async (n) => {
    for (let i = 1; i <= perNode; i++) await cluster.node(n).ctl("send", [`msg ${i} from ${n}`]);
  }));
  const total = names.length * perNode;
  await waitUntil(
    () =>
      names.every((n) =>
        cluster.node(n).events().filter((e) => e.ev === "mc.delivered").length >= total
      ),
    { what: "every message delivered everywhere", timeoutMs: 15_000 },
  );
  return total;
}

Deno.test("peerd trace --svg draws a multicast run: one arrow per remote copy, orders identical", async () => {
  await using cluster = await LocalCluster.start({
    nodes: ["m1", "m2", "m3"].map((name) => ({ name, role: "multicast", args: FAST_MC })),
  });
  const total = await sendAndDeliver(cluster, ["m1", "m2", "m3"], 4);
  const out = `${cluster.dir}/run.svg`;
  const files = cluster.nodes.map((n) => n.eventsPath);
  const r = await runPeerd(["trace", "--svg", out, ...files]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${total} messages, ${total * 2} arrows, orders identical`));
  const svg = Deno.readTextFileSync(out);
  assert.ok(svg.startsWith("<svg xmlns"));
  assert.equal(svg.match(/<line class="arrow"/g)?.length, total * 2);
  assert.equal(svg.match(/<g class="lane"/g)?.length, 3);
  await Deno.mkdir(ARTEFACTS, { recursive: true });
  Deno.copyFileSync(out, `${ARTEFACTS}/trace-multicast.svg`);
  const timed = await runPeerd(["trace", "--svg", `${cluster.dir}/t.svg`, "--time-axis", ...files]);
  assert.equal(timed.code, 0);
  const missing = await runPeerd(["trace", "--svg", `${cluster.dir}/x.svg`, "/nonexistent"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /peerd trace: .*nonexistent/);
  const badOut = await runPeerd(["trace", "--svg", "/nonexistent/dir/x.svg", ...files]);
  assert.equal(badOut.code, 1);
  assert.match(badOut.stderr, /Cannot write \/nonexistent\/dir\/x.svg/);
});

/** Starts `peerd console` as a user would; resolves with its URL and the process. */
async function startConsoleProcess(peersPath: string, port: number) {
  const child = peerdCommand(
    ["console", "--peers", peersPath, "--listen", `127.0.0.1:${port}`, "--interval-ms", "300"],
    { stdin: "null", stdout: "piped", stderr: "piped" },
  ).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 20_000;
  while (!/open (http:\S+)/.test(text) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const url = /open (http:\S+)/.exec(text)?.[1];
  const drain = (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch {
      // closed
    }
  })();
  const stderr = child.stderr.pipeTo(new WritableStream());
  if (!url) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`peerd console printed no URL: ${text}`);
  }
  return {
    url,
    async stop(): Promise<number> {
      child.kill("SIGTERM");
      const status = await child.status;
      await drain;
      await stderr.catch(() => {});
      return status.code;
    },
  };
}

Deno.test("console in Chromium: every node, live kill, multicast arrows, ring token", async (t) => {
  if (!hasExecutable(CHROMIUM)) {
    console.log(`skipped: console browser test (no ${CHROMIUM}; Debian package chromium)`);
    return;
  }
  const { chromium } = await import("playwright-core");
  const specs = httpNodes([
    { name: "n1", role: "ring" },
    { name: "n2", role: "ring" },
    { name: "n3", role: "ring" },
    { name: "m1", role: "multicast", args: FAST_MC },
    { name: "m2", role: "multicast", args: FAST_MC },
    { name: "m3", role: "multicast", args: FAST_MC },
    { name: "g1", role: "gossip" },
    { name: "g2", role: "gossip" },
    { name: "q1", role: "queue" },
  ]);
  // one node without HTTP: the console polls its status over its own port
  const nodes = [...specs, { name: "e1", role: "echo" }];
  await using cluster = await LocalCluster.start({ nodes });
  const [port] = freePorts(1);
  const web = await startConsoleProcess(cluster.peersPath, port);
  const profile = await Deno.makeTempDir({ prefix: "peerd-chromium-" });
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 1800 },
  });
  await Deno.mkdir(ARTEFACTS, { recursive: true });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e: Error) => errors.push(e.message));
    const res = await page.goto(web.url);
    assert.equal(res?.status(), 200);
    assert.equal(res?.headers()["content-type"], "text/html; charset=utf-8");
    await page.waitForSelector("body[data-loaded=true]", { timeout: 15_000 });

    await t.step("shows every node, all up", async () => {
      await page.waitForFunction(
        (n: number) => document.querySelectorAll('.node-card[data-up="true"]').length === n,
        nodes.length,
        { timeout: 20_000 },
      );
      const names = await Promise.all(
        (await page.locator(".node-card").all()).map((l) => l.getAttribute("data-node")),
      );
      assert.deepEqual(names.sort(), nodes.map((n) => n.name).sort());
      assert.match(await page.textContent("#summary") ?? "", /10 nodes, 10 up, 0 down/);
    });

    await t.step("draws the multicast diagram with one arrow per remote delivery", async () => {
      const total = await sendAndDeliver(cluster, ["m1", "m2", "m3"], 3);
      await page.waitForFunction(
        (want: number) =>
          document.querySelectorAll("#role-multicast svg line.arrow").length === want,
        total * 2,
        { timeout: 15_000 },
      );
      const same = await page.getAttribute("#role-multicast .diagram", "data-same-order");
      assert.equal(same, "true");
      assert.match(
        await page.textContent("#role-multicast svg text") ?? "",
        /delivery orders identical/,
      );
    });

    await t.step("shows the ring's token and the holder with its fence", async () => {
      const lock = await cluster.node("n2").ctl("lock", ["10"]);
      await page.waitForFunction(
        () => document.querySelector("#role-ring svg")?.textContent?.includes("held by n2"),
        undefined,
        { timeout: 15_000 },
      );
      assert.match(await page.textContent("#role-ring") ?? "", new RegExp(`fence ${lock.fence}`));
      await page.screenshot({ path: `${ARTEFACTS}/console-all-up.png`, fullPage: true });
      await cluster.node("n2").ctl("unlock", [String(lock.fence)]);
      // grants in a burst reach the page thinned (one summary per window), counted exactly
      for (let i = 0; i < 60; i++) {
        const l = await cluster.node("n2").ctl("lock", ["10"]);
        await cluster.node("n2").ctl("unlock", [String(l.fence)]);
      }
      await page.waitForFunction(
        () => document.querySelector('#role-ring tr[data-node="n2"] .grants')?.textContent === "61",
        undefined,
        { timeout: 15_000 },
      );
    });

    await t.step("a killed node turns down as it happens", async () => {
      await cluster.node("m3").kill("SIGKILL");
      await cluster.node("e1").kill("SIGKILL");
      await page.waitForSelector('.node-card[data-node="m3"][data-up="false"]', {
        timeout: 15_000,
      });
      await page.waitForSelector('.node-card[data-node="e1"][data-up="false"]', {
        timeout: 15_000,
      });
      assert.match(await page.textContent("#summary") ?? "", /10 nodes, 8 up, 2 down/);
      // the survivors' new view shows in the diagram
      await page.waitForFunction(
        () => document.querySelector("#role-multicast svg")?.textContent?.includes("{m1,m2}"),
        undefined,
        { timeout: 15_000 },
      );
      await page.screenshot({ path: `${ARTEFACTS}/console-node-killed.png`, fullPage: true });
    });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    assert.equal(await web.stop(), 0);
  }
});

Deno.test("console server: snapshot API, stream, 404, and a node without HTTP polled over ctl", async () => {
  const specs = httpNodes([{ name: "m1", role: "multicast", args: FAST_MC }]);
  await using cluster = await LocalCluster.start({
    nodes: [...specs, { name: "e1", role: "echo" }],
  });
  const [port] = freePorts(1);
  const web = await startConsoleProcess(cluster.peersPath, port);
  try {
    const snap = await waitUntil(async () => {
      const s = await fetch(`${web.url}api/snapshot`).then((r) => r.json());
      // up, and the node's recent past replayed once its stream connected: its ready event
      const replayed = s.events.some((e: EventRecord) => e.node === "m1" && e.ev === "ready");
      return s.nodes.every((n: { up: boolean }) => n.up) && replayed ? s : undefined;
    }, { what: "both nodes up in the console, m1's past replayed", timeoutMs: 15_000 });
    assert.equal(snap.cluster, "test");
    const e1 = snap.nodes.find((n: { name: string }) => n.name === "e1");
    assert.equal(e1.http, undefined);
    assert.equal(e1.status.role, "echo");
    const m1 = snap.nodes.find((n: { name: string }) => n.name === "m1");
    assert.equal(m1.http, specs[0].http);
    assert.equal(snap.nodes.find((n: { name: string }) => n.name === "m1").streaming, true);
    const nf = await fetch(`${web.url}nope`);
    assert.equal(nf.status, 404);
    await nf.body?.cancel();
    for (
      const [path, type] of [
        ["app.js", "text/javascript; charset=utf-8"],
        ["spacetime.js", "text/javascript; charset=utf-8"],
        ["style.css", "text/css; charset=utf-8"],
      ]
    ) {
      const r = await fetch(web.url + path);
      assert.equal(r.headers.get("content-type"), type);
      assert.ok((await r.text()).length > 100);
    }
    const c = new AbortController();
    const stream = await fetch(`${web.url}api/stream`, { signal: c.signal });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("event: snapshot")) text += (await reader.read()).value ?? "";
    await cluster.node("m1").ctl("send", ["hello console"]);
    while (!text.includes("hello console")) text += (await reader.read()).value ?? "";
    await reader.cancel();
    c.abort();
  } finally {
    assert.equal(await web.stop(), 0);
  }
  const usage = await runPeerd(["console"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--peers/);
});

Deno.test("peerd --role demo --console prints the URL, serves the demo's nodes, stops on SIGTERM", async () => {
  const child = peerdCommand(
    ["--role", "demo", "--console", "--console-listen", "127.0.0.1:0", "--only", "multicast"],
    { stdin: "null", stdout: "piped", stderr: "piped" },
  ).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = child.stderr.pipeTo(new WritableStream());
  let text = "";
  try {
    const deadline = Date.now() + 60_000;
    while (!text.includes("keep running") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const url = /console on (http:\S+)/.exec(text)?.[1];
    assert.ok(url, text);
    assert.match(text, /1 of 1 steps ok; the nodes keep running/);
    const snap = await fetch(`${url}api/snapshot`).then((r) => r.json());
    const mc = snap.nodes.filter((n: { role: string }) => n.role === "multicast");
    assert.ok(mc.length >= 3, JSON.stringify(snap.nodes));
    // the demo kills one multicast node: the console shows it down, the rest up
    await waitUntil(async () => {
      const s = await fetch(`${url}api/snapshot`).then((r) => r.json());
      const m = s.nodes.filter((n: { role: string }) => n.role === "multicast");
      return m.filter((n: { up: boolean }) => !n.up).length === 1 &&
        m.filter((n: { up: boolean }) => n.up).length === m.length - 1;
    }, { what: "one multicast node down", timeoutMs: 15_000 });
  } finally {
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const status = await child.status;
    await stderr.catch(() => {});
    assert.equal(status.code, 0, text);
  }
});

labTest(
  "console in Chromium shows a lab partition as cut links and groups, apart from a node that is down",
  async () => {
    if (!hasExecutable(CHROMIUM)) {
      console.log(`skipped: console partition test (no ${CHROMIUM}; Debian package chromium)`);
      return;
    }
    const { chromium } = await import("playwright-core");
    await using lab = await Lab.up({
      prefix: "avc1",
      peers: ["g1", "g2", "g3"].map((name) => ({
        name,
        role: "gossip",
        port: 7201,
        args: [...FAST_GOSSIP_ARGS],
      })),
    });
    // the console in the root namespace reaches every node over the lab's bridge; the cuts
    // are between the nodes' namespaces only
    const stop = new AbortController();
    const web = await startConsole(loadPeersFile(lab.peersPath), {
      listen: { hostname: "127.0.0.1", port: 0 },
      intervalMs: 300,
      signal: stop.signal,
    });
    const profile = await Deno.makeTempDir({ prefix: "peerd-chromium-" });
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1200, height: 1000 },
    });
    await Deno.mkdir(ARTEFACTS, { recursive: true });
    const edge = (a: string, b: string, state: string) =>
      `#network line.net-edge[data-a="${a}"][data-b="${b}"][data-state="${state}"]`;
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e: Error) => errors.push(e.message));
      await page.goto(web.url);
      await page.waitForSelector("body[data-loaded=true]", { timeout: 15_000 });
      await page.waitForFunction(
        () =>
          document.querySelectorAll('#network line.net-edge[data-state="ok"]').length === 3 &&
          document.querySelector("#network")?.dataset.partitioned === "false",
        undefined,
        { timeout: 20_000 },
      );

      await lab.isolate("g1");
      for (const selector of [edge("g1", "g2", "cut"), edge("g1", "g3", "cut")]) {
        await page.waitForSelector(selector, { timeout: 20_000, state: "attached" });
      }
      await page.waitForSelector('#partitions[data-groups="g1|g2,g3"]', {
        timeout: 20_000,
        state: "attached",
      });
      // a partition, not a crash: every node still answers and is shown up
      assert.equal(await page.locator('.node-card[data-up="true"]').count(), 3);
      // g1's own view follows once its probes time out
      await page.waitForSelector('.node-card[data-node="g1"][data-cannot-reach="g2,g3"]', {
        timeout: 20_000,
        state: "attached",
      }).catch(async (err) => {
        // what g1 and the console said, for the failure's report
        const snap = await fetch(`${web.url}api/snapshot`).then((r) => r.json());
        const g1 = snap.nodes.find((n: { name: string }) => n.name === "g1");
        const card = await page.locator('.node-card[data-node="g1"]').evaluate((e: {
          outerHTML: string;
        }) => e.outerHTML).catch(() => "(no card)");
        throw new Error(`${err}\ng1 in the console: ${JSON.stringify(g1)}\ncard: ${card}`);
      });
      assert.equal(await page.locator(edge("g2", "g3", "ok")).count(), 1);
      assert.match(await page.textContent("#network h2") ?? "", /partitioned: 2 links cut/);
      await page.screenshot({ path: `${ARTEFACTS}/console-partition.png`, fullPage: true });

      // a node that is down is drawn as down, its links dotted, not as one more cut
      await lab.kill("g3");
      await page.waitForSelector('.node-card[data-node="g3"][data-up="false"]', {
        timeout: 15_000,
      });
      await page.waitForSelector(edge("g2", "g3", "down"), { timeout: 15_000, state: "attached" });
      await page.waitForSelector(edge("g1", "g3", "down"), { timeout: 15_000, state: "attached" });
      assert.equal(await page.locator(edge("g1", "g2", "cut")).count(), 1);
      await page.screenshot({
        path: `${ARTEFACTS}/console-partition-and-down.png`,
        fullPage: true,
      });

      // healed: g1 and g2 reach each other again
      await lab.heal();
      await page.waitForSelector(edge("g1", "g2", "ok"), { timeout: 30_000, state: "attached" });
      await page.waitForFunction(
        () => document.querySelector("#network")?.dataset.partitioned === "false",
        undefined,
        { timeout: 30_000 },
      );
      await page.screenshot({ path: `${ARTEFACTS}/console-partition-healed.png`, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      stop.abort();
      await web.close();
    }
  },
  { timeoutMs: 150_000 },
);

/**
 * The protocol tables of docs/*.md against the frame catalogues of mod/*\/protocol.ts, both
 * ways, and the catalogues against the handlers the servers really install. When a table
 * is out of date, `deno run -A tests/protocol_docs_test.ts --write` rewrites it from the
 * catalogue (then `deno fmt docs/`).
 */
import assert from "node:assert/strict";
import { EventSink, Logger } from "../mod/events/mod.ts";
import {
  GOSSIP_FRAMES,
  GOSSIP_ROUTE,
  type GossipMessage,
  GossipType,
  parseGossipMessage,
} from "../mod/gossip/mod.ts";
import { type JobMessage, LEADER_JOB_FRAMES } from "../mod/leader/mod.ts";
import {
  MEMBER_FRAME_TYPES,
  MULTICAST_FRAMES,
  MULTICAST_ROUTE,
  SimGroup,
} from "../mod/multicast/mod.ts";
import { FENCE_BASE, RING_FRAMES, RING_ROUTES, RingNode } from "../mod/ring/mod.ts";
import { Broker, MOM_FRAMES, MOM_ROUTES, MomDaemon } from "../mod/mom/mod.ts";
import { BrokerStore } from "../mod/mom/broker_store.ts";
import { DaemonStore } from "../mod/mom/daemon_store.ts";
import type { RoleContext } from "../mod/process/mod.ts";
import { QUEUE_FRAMES, QUEUE_ROUTES, QueueEngine, queueService } from "../mod/queue/mod.ts";
import { RATINGS_FRAMES } from "../mod/ratings/mod.ts";
import {
  type FrameMismatch,
  frameProblems,
  framesOf,
  type FrameSpec,
  type Message,
  type PeerSession,
  ProtocolError,
  repliesOf,
} from "../mod/wire/mod.ts";
import { chaos } from "./ring_sim.ts";

/** Each catalogue and the docs page whose table shows it. */
const TABLES: ReadonlyArray<{ name: string; doc: string; frames: readonly FrameSpec[] }> = [
  { name: "mom", doc: "docs/mom.md", frames: MOM_FRAMES },
  { name: "queue", doc: "docs/queue.md", frames: QUEUE_FRAMES },
  { name: "ratings", doc: "docs/ratings.md", frames: RATINGS_FRAMES },
  { name: "gossip", doc: "docs/gossip.md", frames: GOSSIP_FRAMES },
  { name: "multicast", doc: "docs/multicast.md", frames: MULTICAST_FRAMES },
  { name: "ring", doc: "docs/ring.md", frames: RING_FRAMES },
  { name: "leader", doc: "docs/queue.md", frames: LEADER_JOB_FRAMES },
];

const HEADER = ["`t`", "from → to", "fields", "reply", "what"];
const START = (name: string) => `<!-- frames: ${name} -->`;
const END = "<!-- /frames -->";

/** The cells of one catalogue entry, as the table shows them. */
function rowOf(f: FrameSpec): string[] {
  return [`\`${f.t}\``, f.route, f.fields || "—", f.reply ? `\`${f.reply}\`` : "—", f.note || "—"];
}

/** The table of a catalogue, in markdown. */
function tableOf(frames: readonly FrameSpec[]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(HEADER), line(HEADER.map(() => "---")), ...frames.map((f) => line(rowOf(f)))]
    .join("\n");
}

/** The rows of the table between the markers of `name` in `text` (cells trimmed), or undefined. */
function parseTable(text: string, name: string): string[][] | undefined {
  const start = text.indexOf(START(name));
  if (start < 0) return undefined;
  const end = text.indexOf(END, start);
  assert.ok(end > start, `${name}: "${END}" after the table`);
  const rows = text.slice(start + START(name).length, end).split("\n")
    .map((l) => l.trim()).filter((l) => l.startsWith("|"))
    .map((l) => splitRow(l));
  assert.deepEqual(rows[0], HEADER, `${name}: the table's header`);
  assert.ok(rows[1].every((c) => /^:?-+:?$/.test(c)), `${name}: the header's rule`);
  return rows.slice(2);
}

/** The cells of a table row; `\|` inside a cell is a bar, not a border. */
function splitRow(line: string): string[] {
  return line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\s+/g, " "));
}

const key = (cells: string[]) => `${cells[0]} ${cells[1]}`;

/** What differs between a docs table and its catalogue, one line each ([] when none). */
function drift(docRows: string[][], frames: readonly FrameSpec[]): string[] {
  const want = new Map(
    frames.map((f) => [key(rowOf(f)), rowOf(f).map((c) => c.replace(/\s+/g, " "))]),
  );
  const have = new Map(docRows.map((r) => [key(r), r]));
  const out: string[] = [];
  for (const [k, cells] of want) {
    const got = have.get(k);
    if (!got) out.push(`missing in the docs: ${k}`);
    else if (got.join(" | ") !== cells.join(" | ")) {
      out.push(`differs: ${k}\n  docs: ${got.join(" | ")}\n  code: ${cells.join(" | ")}`);
    }
  }
  for (const k of have.keys()) if (!want.has(k)) out.push(`in the docs only: ${k}`);
  if (out.length === 0 && docRows.map(key).join() !== [...want.keys()].join()) {
    out.push("the rows are in another order than the catalogue");
  }
  return out;
}

for (const { name, doc, frames } of TABLES) {
  Deno.test(`${doc}: the frames table is the catalogue of mod/${name}/protocol.ts, row for row`, () => {
    const rows = parseTable(Deno.readTextFileSync(doc), name);
    assert.ok(rows, `${doc} has no "${START(name)}" table`);
    const problems = drift(rows, frames);
    assert.deepEqual(
      problems,
      [],
      `${doc} and the catalogue differ; \`deno run -A tests/protocol_docs_test.ts --write\` ` +
        `writes:\n${tableOf(frames)}`,
    );
  });
}

Deno.test("drift() finds a frame missing from the docs, one only in the docs, and changed fields", () => {
  const frames: FrameSpec[] = [
    { t: "a", route: "x → y", fields: "n", reply: "a.ok", note: "" },
    { t: "b", route: "x → y", fields: "", reply: "", note: "one" },
  ];
  const rows = [
    ["`a`", "x → y", "n, m?", "`a.ok`", "—"],
    ["`c`", "x → y", "—", "—", "—"],
  ];
  const found = drift(rows, frames);
  assert.equal(found.length, 3, found.join("\n"));
  assert.match(found[0], /^differs: `a` x → y/);
  assert.equal(found[1], "missing in the docs: `b` x → y");
  assert.equal(found[2], "in the docs only: `c` x → y");
  const table = tableOf(frames);
  assert.deepEqual(parseTable(`${START("t")}\n${table}\n${END}`, "t"), frames.map(rowOf));
});

/** A role context for servers built in process (no sockets: only their handler maps are read). */
function inProcessContext(role: string, dir: string): RoleContext {
  return {
    role,
    name: `${role}1`,
    listen: { hostname: "127.0.0.1", port: 0 },
    dataDir: dir,
    maxFrame: 1 << 20,
    logLevel: "error",
    events: new EventSink({ node: `${role}1`, role }),
    log: new Logger({ node: `${role}1`, role, level: "error" }),
    signal: new AbortController().signal,
    options: {},
    interactive: false,
  };
}

Deno.test("the MOM broker and daemon handle exactly the frames the catalogue routes to them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-protocol-docs-" });
  const brokerStore = new BrokerStore(`${dir}/broker.sqlite`);
  const daemonStore = new DaemonStore(`${dir}/daemon.sqlite`);
  const broker = new Broker(inProcessContext("broker", dir), brokerStore);
  const daemon = new MomDaemon(inProcessContext("daemon", dir), daemonStore, {
    hostname: "127.0.0.1",
    port: 1,
  });
  try {
    assert.deepEqual(
      Object.keys(broker.handlers()).sort(),
      framesOf(MOM_FRAMES, MOM_ROUTES.toBroker).sort(),
    );
    assert.deepEqual(
      Object.keys(daemon.handlers()).sort(),
      framesOf(MOM_FRAMES, MOM_ROUTES.app).sort(),
    );
  } finally {
    await daemon.close();
    broker.close();
    daemonStore.close();
    brokerStore.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the queue server handles exactly the client frames of the catalogue", () => {
  const engine = new QueueEngine();
  try {
    assert.deepEqual(
      Object.keys(queueService(engine).handlers).sort(),
      framesOf(QUEUE_FRAMES, QUEUE_ROUTES.client).sort(),
    );
  } finally {
    engine.close();
  }
});

Deno.test("frameProblems() finds an unknown type, a missing and an undeclared field; repliesOf() reads replies", () => {
  const frames: FrameSpec[] = [
    { t: "a", route: "x → y", fields: "n, m?", reply: "a.ok {id}", note: "" },
    { t: "b", route: "y → x", fields: "…", reply: "b.ok", note: "" },
  ];
  assert.deepEqual(frameProblems(frames, { t: "a", n: 1, rid: 3 }), []);
  assert.deepEqual(frameProblems(frames, { t: "a", n: 1, m: 2 }, { routes: ["x → y"] }), []);
  assert.deepEqual(frameProblems(frames, { t: "a", m: 2, z: 0 }), [
    "a: field n missing",
    "a: field z not in the catalogue",
  ]);
  assert.deepEqual(frameProblems(frames, { t: "a", n: 1 }, { routes: ["y → x"] }), [
    "a: not in the catalogue on y → x",
  ]);
  assert.deepEqual(frameProblems(frames, { t: "b", anything: 1 }), []);
  assert.deepEqual(frameProblems(frames, { type: "c" }, { key: "type" }), [
    "c: not in the catalogue",
  ]);
  assert.deepEqual(
    repliesOf(frames).map((f) => [f.t, f.fields]),
    [["a.ok", "id"], ["b.ok", ""]],
  );
});

Deno.test("the gossip and leader catalogues are the message types the code sends, field for field", () => {
  // Type errors here name the drift (`g.ping: the required fields differ`).
  const gossip: [FrameMismatch<typeof GOSSIP_FRAMES, GossipMessage>] extends [never] ? true
    : FrameMismatch<typeof GOSSIP_FRAMES, GossipMessage> = true;
  const job: [FrameMismatch<typeof LEADER_JOB_FRAMES, JobMessage, "type">] extends [never] ? true
    : FrameMismatch<typeof LEADER_JOB_FRAMES, JobMessage, "type"> = true;
  assert.ok(gossip && job);
  // …and the check is not vacuous: a catalogue that lacks a field or a type is a mismatch.
  type Short = readonly [{ t: "g.ack"; route: ""; fields: "from, seq"; reply: ""; note: "" }];
  const short: FrameMismatch<Short, GossipMessage> = "g.ack: the required fields differ";
  const missing: Extract<FrameMismatch<Short, GossipMessage>, `g.ping${string}`> =
    "g.ping: a message type missing in the catalogue";
  assert.ok(short && missing);
});

Deno.test("the gossip role handles exactly the catalogue's messages, and parses each of them", () => {
  assert.deepEqual(
    framesOf(GOSSIP_FRAMES, GOSSIP_ROUTE).sort(),
    Object.values(GossipType).sort(),
  );
  const samples: GossipMessage[] = [
    { t: GossipType.Rumor, from: "a", e: [["k", "v", 1, "a", 0]], m: [["a", "h:1", 0, 1]] },
    { t: GossipType.Digest, from: "a", addr: "h:1", d: [["k", 1, "a"]], m: [] },
    { t: GossipType.Delta, from: "a", e: [], want: ["k"], m: [] },
    { t: GossipType.Ping, from: "a", addr: "h:1", seq: 1, m: [] },
    { t: GossipType.Ack, from: "a", seq: 1, m: [] },
    { t: GossipType.PingReq, from: "a", seq: 1, target: "b", taddr: "h:2" },
  ];
  assert.deepEqual(samples.map((m) => m.t).sort(), Object.values(GossipType).sort());
  for (const m of samples) {
    assert.deepEqual(parseGossipMessage(m as unknown as Message), m);
    assert.deepEqual(frameProblems(GOSSIP_FRAMES, m), [], m.t);
  }
});

Deno.test("every frame multicast members send in a run with crashes, partitions and rejoins is in the catalogue", () => {
  const problems = new Set<string>();
  const seen = new Set<string>();
  const onFrame = (_from: string, _to: string, frame: Message) => {
    seen.add(frame.t);
    for (const p of frameProblems(MULTICAST_FRAMES, frame)) problems.add(p);
  };
  for (let seed = 10; seed < 16; seed++) {
    const n = seed % 2 === 0 ? 3 : 5;
    const g = new SimGroup({ n, seed, onFrame });
    g.runUntil(() => g.settled(), `seed ${seed}: the first view`);
    const r = g.random;
    for (let round = 0; round < 4; round++) {
      const victim = g.names[Math.floor(r() * n)];
      const others = g.names.filter((x) => x !== victim);
      if (round % 2 === 0) g.net.partition([victim], others, r() < 0.5 ? "hold" : "reset");
      else g.crash(victim);
      g.run(1_500, { sendEveryMs: 25 });
      g.net.healAll();
      for (const d of [...g.down]) g.restart(d);
      g.runUntil(() => g.settled(), `seed ${seed} round ${round}: one view again`, 60_000);
    }
    g.members.get(g.names[0])!.leave();
  }
  assert.deepEqual([...problems], []);
  assert.deepEqual([...seen].sort(), MULTICAST_FRAMES.map((f) => f.t).sort());
});

Deno.test("a multicast member dispatches every catalogue frame (and refuses other types)", () => {
  assert.deepEqual(
    [...MEMBER_FRAME_TYPES].sort(),
    framesOf(MULTICAST_FRAMES, MULTICAST_ROUTE).sort(),
  );
  const g = new SimGroup({ n: 3, seed: 1 });
  g.runUntil(() => g.settled(), "the first view");
  const m1 = g.members.get("m1")!;
  const codeOf = (t: string) => {
    try {
      m1.receive("m2", { t }, g.now);
      return "accepted";
    } catch (err) {
      return err instanceof ProtocolError ? err.code : String(err);
    }
  };
  for (const t of MEMBER_FRAME_TYPES) assert.notEqual(codeOf(t), "unknown_type", t);
  assert.equal(codeOf("mc.nonsense"), "unknown_type");
});

Deno.test("every frame the ring cores send, and every reply, in randomized partitions, pauses and crashes is in the catalogue", () => {
  const problems = new Set<string>();
  const seen = new Set<string>();
  const member = [...RING_FRAMES, ...repliesOf(RING_FRAMES)]
    .filter((f) => f.route === RING_ROUTES.member);
  for (let seed = 1; seed <= 4; seed++) {
    chaos(seed, undefined, (_from, _to, msg) => {
      seen.add(msg.t);
      for (const p of frameProblems(member, msg)) problems.add(p);
    });
  }
  assert.deepEqual([...problems], []);
  // ring.ping/pong are the links' heartbeat, which the simulation does not run.
  assert.deepEqual(
    [...seen].sort(),
    member.map((f) => f.t).filter((t) => !t.startsWith("ring.p") || t.startsWith("ring.prep"))
      .sort(),
  );
});

Deno.test("the ring node handles exactly the catalogue's member frames, and its replies match it", async () => {
  const members = ["n1", "n2", "n3"].map((name, i) => ({
    name,
    hostname: "127.0.0.1",
    port: 1 + i,
    options: {},
  }));
  const node = new RingNode({
    self: "n1",
    members,
    events: new EventSink({ node: "n1", role: "ring" }),
    log: new Logger({ node: "n1", role: "ring", level: "error" }),
    maxFrame: 1 << 20,
  });
  try {
    const handlers = node.handlers();
    assert.deepEqual(
      Object.keys(handlers).sort(),
      framesOf(RING_FRAMES, RING_ROUTES.member).sort(),
    );
    // A session as the server hands one to a handler: only the hello's name is read.
    const session = { peer: { name: "n2", role: "ring" } } as unknown as PeerSession;
    const replies = repliesOf(RING_FRAMES);
    const requests: Message[] = [
      { t: "ring.ping" },
      { t: "ring.lease", gen: 1, round: 1 },
      { t: "ring.prepare", ballot: 2, reason: "lost" },
      { t: "ring.token", gen: 3, fence: 3 * FENCE_BASE, hops: 0, want: [], from: "n2" },
    ];
    for (const req of requests) {
      assert.deepEqual(frameProblems(RING_FRAMES, req), [], req.t);
      const reply = await handlers[req.t](req, session) as Message;
      const want = RING_FRAMES.find((f) => f.t === req.t)!.reply.split(" ")[0];
      assert.equal(reply.t, want, req.t);
      assert.deepEqual(frameProblems(replies, reply), [], `${req.t}: ${JSON.stringify(reply)}`);
    }
  } finally {
    await node.close();
  }
});

if (import.meta.main && Deno.args.includes("--write")) {
  for (const { name, doc, frames } of TABLES) {
    const text = Deno.readTextFileSync(doc);
    const start = text.indexOf(START(name));
    const end = text.indexOf(END, start);
    if (start < 0 || end < 0) {
      console.error(
        `${doc}: no "${START(name)}" … "${END}" markers; add them where the table goes`,
      );
      Deno.exitCode = 1;
      continue;
    }
    Deno.writeTextFileSync(
      doc,
      `${text.slice(0, start)}${START(name)}\n\n${tableOf(frames)}\n\n${text.slice(end)}`,
    );
    console.log(`${doc}: table written (${frames.length} frames)`);
  }
}

/**
 * The protocol tables of docs/*.md against the frame catalogues of mod/*\/protocol.ts, both
 * ways, and the catalogues against the handlers the servers really install. When a table
 * is out of date, `deno run -A tests/protocol_docs_test.ts --write` rewrites it from the
 * catalogue (then `deno fmt docs/`).
 */
import assert from "node:assert/strict";
import { EventSink, Logger } from "../mod/events/mod.ts";
import { Broker, MOM_FRAMES, MOM_ROUTES, MomDaemon } from "../mod/mom/mod.ts";
import { BrokerStore } from "../mod/mom/broker_store.ts";
import { DaemonStore } from "../mod/mom/daemon_store.ts";
import type { RoleContext } from "../mod/process/mod.ts";
import { QUEUE_FRAMES, QUEUE_ROUTES, QueueEngine, queueService } from "../mod/queue/mod.ts";
import { RATINGS_FRAMES } from "../mod/ratings/mod.ts";
import { framesOf, type FrameSpec } from "../mod/wire/mod.ts";

/** Each catalogue and the docs page whose table shows it. */
const TABLES: ReadonlyArray<{ name: string; doc: string; frames: readonly FrameSpec[] }> = [
  { name: "mom", doc: "docs/mom.md", frames: MOM_FRAMES },
  { name: "queue", doc: "docs/queue.md", frames: QUEUE_FRAMES },
  { name: "ratings", doc: "docs/ratings.md", frames: RATINGS_FRAMES },
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

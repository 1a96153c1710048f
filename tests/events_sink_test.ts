import assert from "node:assert/strict";
import { EventLog, EventSink } from "../mod/events/mod.ts";

Deno.test("EventSink.holdUntil() writes nothing until its promise settles; listeners hear at once", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-events-" });
  const path = `${dir}/n1.events.jsonl`;
  const heard: string[] = [];
  const sink = new EventSink({ node: "n1", role: "echo", path, listener: (e) => heard.push(e.ev) });
  try {
    let open: () => void = () => {};
    sink.holdUntil(new Promise<void>((r) => (open = r)));
    sink.holdUntil(Promise.reject(new Error("a listener that failed still releases")));
    sink.emit("ready", { port: 1 });
    await new Promise((r) => setTimeout(r, 0));
    const log = new EventLog(path);
    assert.deepEqual(log.all(), [], "held: nothing written");
    assert.deepEqual(heard, ["ready"]);
    open();
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(log.all().map((e) => e.ev), ["ready"]);
    sink.emit("after");
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(log.all().map((e) => e.ev), ["ready", "after"]);
  } finally {
    sink.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("EventSink.close() writes what a hold kept back", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-events-" });
  const path = `${dir}/n1.events.jsonl`;
  const sink = new EventSink({ node: "n1", role: "echo", path });
  sink.holdUntil(new Promise(() => {}));
  sink.emit("stopped");
  sink.close();
  assert.deepEqual(new EventLog(path).all().map((e) => e.ev), ["stopped"]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("EventSink writes plain fields as they are and converts bigint, bytes, Map and Set (one line each, listeners get the same line)", () => {
  const dir = Deno.makeTempDirSync({ prefix: "peerd-events-" });
  const path = `${dir}/n1.events.jsonl`;
  const lines: Array<string | undefined> = [];
  const sink = new EventSink({
    node: "n1",
    role: "daemon",
    path,
    listener: (_e, l) => lines.push(l),
  });
  try {
    sink.emit("msg.delivered", { id: "d1:7", user: 3, topic: "a/b", ok: true, none: null });
    sink.emit("odd", {
      n: 5n,
      payload: new Uint8Array(9),
      seen: new Map([["d1", 2]]),
      set: new Set([1, 2]),
      nested: { big: 6n },
      skipped: undefined,
    });
    sink.close();
    const written = Deno.readTextFileSync(path).trim().split("\n");
    assert.deepEqual(written, lines);
    const [plain, odd] = written.map((l) => JSON.parse(l));
    assert.deepEqual(
      { ...plain, ts: 0 },
      {
        ts: 0,
        node: "n1",
        role: "daemon",
        ev: "msg.delivered",
        id: "d1:7",
        user: 3,
        topic: "a/b",
        ok: true,
        none: null,
      },
    );
    assert.ok(typeof plain.ts === "number" && plain.ts > 0);
    assert.deepEqual(
      { ...odd, ts: 0 },
      {
        ts: 0,
        node: "n1",
        role: "daemon",
        ev: "odd",
        n: 5,
        payload: { bytes: 9 },
        seen: { d1: 2 },
        set: [1, 2],
        nested: { big: 6 },
      },
    );
  } finally {
    sink.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

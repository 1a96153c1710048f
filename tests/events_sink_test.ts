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

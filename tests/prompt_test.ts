import assert from "node:assert/strict";
import { runCommandPrompt } from "../mod/process/mod.ts";

function linesStream(text: string, close = true): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      // split mid-line to check that lines are reassembled
      controller.enqueue(bytes.subarray(0, 5));
      controller.enqueue(bytes.subarray(5));
      if (close) controller.close();
    },
  });
}

Deno.test("runCommandPrompt: runs commands, prints JSON or errors, stops at quit", async () => {
  let out = "";
  const seen: string[][] = [];
  await runCommandPrompt({
    name: "t",
    help: "commands: echo, fail, quit",
    commands: {
      echo: (args) => {
        seen.push(args);
        return { args };
      },
      fail: () => {
        throw new Error("it failed");
      },
      later: () => Promise.resolve(7),
    },
    signal: new AbortController().signal,
    input: linesStream("echo a  b\n\nnope x\nfail\nlater\nquit\necho never\n"),
    write: (s) => out += s,
  });
  assert.deepEqual(seen, [["a", "b"]]);
  assert.equal(
    out,
    [
      "t> commands: echo, fail, quit",
      't> {"args":["a","b"]}',
      "t> t> error: unknown command nope; commands are echo, fail, later",
      "t> error: it failed",
      "t> 7",
      "t> ",
    ].join("\n"),
  );
});

Deno.test("runCommandPrompt: ends at the end of input, and when the signal aborts", async () => {
  let out = "";
  await runCommandPrompt({
    name: "t",
    help: "h",
    commands: {},
    signal: new AbortController().signal,
    input: linesStream("partial line without newline"),
    write: (s) => out += s,
  });
  assert.equal(out, "t> h\nt> ");
  const stop = new AbortController();
  const input = linesStream("", false); // stays open
  const running = runCommandPrompt({
    name: "t",
    help: "h",
    commands: {},
    signal: stop.signal,
    input,
    write: () => {},
  });
  stop.abort();
  await running;
});

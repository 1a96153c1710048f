import assert from "node:assert/strict";
import { LocalCluster, runPeerd } from "./harness/mod.ts";
import { ctlCommand, ctlHandler, ctlUsage, parseCtlArgs } from "../mod/ctl/mod.ts";
import { parseLockArgs } from "../mod/ring/mod.ts";
import { type Message, type PeerSession, ProtocolError } from "../mod/wire/mod.ts";

const PUBLISH = {
  summary: "publish",
  args: {
    exchange: { type: "string", help: "" },
    key: { type: "string", default: "", optional: true, help: "" },
    text: { type: "string", rest: true, optional: true, help: "" },
  },
  flags: {
    transient: { type: "bool", help: "" },
    "max-length": { type: "int", min: 0, default: 0, help: "" },
    ttl: { type: "float", arg: "s", help: "" },
  },
} as const;

/** The message of the `bad_field` error `fn` throws. */
function badField(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, String(err));
    assert.equal(err.code, "bad_field");
    return err.message;
  }
  assert.fail("no error");
}

Deno.test("parseCtlArgs() fills positional arguments in order, the rest, flags in every form, and defaults", () => {
  const a = parseCtlArgs("publish", PUBLISH, [
    "ex",
    "--transient",
    "k",
    "hello",
    "--max-length=5",
    "big",
    "--ttl",
    "2.5",
    "world",
  ]);
  assert.deepEqual(a, {
    exchange: "ex",
    key: "k",
    text: "hello big world",
    transient: true,
    "max-length": 5,
    ttl: 2.5,
  });
  // typed: the values are what the declaration says (these lines compile only if so)
  const text: string | undefined = a.text;
  const max: number = a["max-length"];
  assert.equal(`${text}/${max}`, "hello big world/5");
  assert.deepEqual(parseCtlArgs("publish", PUBLISH, ["ex"]), {
    exchange: "ex",
    key: "",
    text: undefined,
    transient: false,
    "max-length": 0,
    ttl: undefined,
  });
  // a command without flags takes every word as it is
  const say = { summary: "", args: { text: { type: "string", rest: true, help: "" } } } as const;
  assert.equal(parseCtlArgs("say", say, ["--not-a-flag", "x"]).text, "--not-a-flag x");
});

Deno.test("parseCtlArgs() refuses with one bad_field line naming the argument and the usage", () => {
  const usage = "(usage: publish <exchange> [key] [text…] [--transient] [--max-length <int>] " +
    "[--ttl <s>])";
  assert.equal(
    badField(() => parseCtlArgs("publish", PUBLISH, [])),
    `Cannot publish: missing <exchange> ${usage}`,
  );
  assert.equal(
    badField(() => parseCtlArgs("publish", PUBLISH, ["ex", "--max-length=-1"])),
    `Cannot publish: --max-length must be an integer, at least 0, got "-1" ${usage}`,
  );
  assert.equal(
    badField(() => parseCtlArgs("publish", PUBLISH, ["ex", "--ttl"])),
    `Cannot publish: --ttl needs a value ${usage}`,
  );
  assert.equal(
    badField(() => parseCtlArgs("publish", PUBLISH, ["ex", "--colour=red"])),
    `Cannot publish: unknown flag --colour; flags are --transient, --max-length, --ttl ${usage}`,
  );
  const one = {
    summary: "",
    args: { n: { type: "int", min: 1, optional: true, help: "" } },
  } as const;
  assert.equal(
    badField(() => parseCtlArgs("history", one, ["1", "2"])),
    'Cannot history: unexpected argument "2" (usage: history [n])',
  );
  assert.equal(
    badField(() => parseCtlArgs("history", one, ["lots"])),
    'Cannot history: n must be an integer, at least 1, got "lots" (usage: history [n])',
  );
});

Deno.test("ring's lock takes [<s>] or --timeout <s>, both checked by one declaration", () => {
  assert.equal(parseLockArgs([]), undefined);
  assert.equal(parseLockArgs(["5"]), 5000);
  assert.equal(parseLockArgs(["--timeout", "0.5"]), 500);
  assert.equal(parseLockArgs(["--timeout=2"]), 2000);
  assert.match(badField(() => parseLockArgs(["0"])), /seconds must be a number, above 0/);
  assert.match(badField(() => parseLockArgs(["--timeout=1e9"])), /at most 86400/);
});

Deno.test("ctlHandler() answers help with every command's usage; an unknown command points to it", async () => {
  const handler = ctlHandler({
    status: () => ({}),
    bind: ctlCommand("bind", {
      summary: "bind a queue",
      args: {
        queue: { type: "string", help: "" },
        key: { type: "string", optional: true, help: "" },
      },
    }, (a) => ({ ...a })),
  });
  const session = {} as PeerSession;
  const help = await handler({ t: "ctl", cmd: "help" }, session) as Message;
  assert.deepEqual(help.commands, [{ usage: "bind <queue> [key]", summary: "bind a queue" }, {
    usage: "status",
  }]);
  const bound = await handler({ t: "ctl", cmd: "bind", args: ["q", "k"] }, session) as Message;
  assert.deepEqual([bound.queue, bound.key], ["q", "k"]);
  await assert.rejects(
    async () => await handler({ t: "ctl", cmd: "bnid" }, session),
    /unknown command; commands are bind, status \(help lists their arguments\)/,
  );
  assert.equal(
    ctlUsage("x", { summary: "", flags: { n: { type: "int", help: "" } } }),
    "x [--n <int>]",
  );
});

Deno.test("peerd ctl: help lists a role's commands with their arguments; a bad argument is exit 1 with the usage", async () => {
  await using cluster = await LocalCluster.start({ nodes: [{ name: "q1", role: "queue" }] });
  const address = cluster.node("q1").address;
  const help = await runPeerd(["ctl", address, "help", "--compact"]);
  assert.equal(help.code, 0, help.stderr);
  const usages = (JSON.parse(help.stdout).commands as Array<{ usage: string }>).map((c) => c.usage);
  assert.ok(
    usages.includes("declare <queue> [--transient] [--auto-delete] [--max-length <int>]"),
    usages.join("\n"),
  );
  assert.ok(usages.includes("status"), usages.join("\n"));
  const missing = await runPeerd(["ctl", address, "declare"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot declare: missing <queue> \(usage: declare <queue> /);
  const bad = await runPeerd(["ctl", address, "declare", "jobs", "--max-length=many"]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /Cannot declare: --max-length must be an integer, at least 0, got "many"/,
  );
  const ok = await runPeerd(["ctl", address, "declare", "jobs", "--max-length", "3", "--compact"]);
  assert.equal(ok.code, 0, ok.stderr);
  const declared = JSON.parse(ok.stdout);
  assert.deepEqual([declared.name, declared.maxLength, declared.durable], ["jobs", 3, true]);
});

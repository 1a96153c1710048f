import assert from "node:assert/strict";
import { runPeerd } from "./harness/mod.ts";
import { roleOptionValues, toCommanderOption } from "../mod/cli/options.ts";
import { nodeOptionValues } from "../mod/cli/node_options.ts";
import { ROLES } from "../mod/cli/registry.ts";
import {
  checkValueJson,
  describeValue,
  parsePeersJson,
  parseValueText,
  ValueError,
} from "../mod/config/mod.ts";
import { optionEnv, optionFlag, type OptionValues, UsageError } from "../mod/process/mod.ts";
import { ringRole } from "../mod/ring/mod.ts";
import { gossipRole } from "../mod/gossip/mod.ts";

Deno.test("parseValueText() parses each type and names what it wanted and what it got", () => {
  assert.equal(parseValueText({ type: "int", help: "" }, "42"), 42);
  assert.equal(parseValueText({ type: "int", help: "", min: 1 }, " 7 "), 7);
  assert.equal(parseValueText({ type: "float", help: "" }, "2.5"), 2.5);
  assert.equal(parseValueText({ type: "size", help: "" }, "16MiB"), 16 * 1024 * 1024);
  assert.equal(parseValueText({ type: "size", help: "" }, "512k"), 512 * 1024);
  assert.equal(parseValueText({ type: "choice", choices: ["a", "b"], help: "" }, "b"), "b");
  assert.equal(parseValueText({ type: "string", help: "" }, " x "), " x ");
  assert.equal(parseValueText({ type: "bool", help: "" }, "false"), false);
  const cases: Array<[Parameters<typeof parseValueText>[0], string, string]> = [
    [{ type: "int", help: "" }, "1.5", 'must be an integer, got "1.5"'],
    [{ type: "int", help: "" }, "", 'must be an integer, got ""'],
    [{ type: "int", help: "", min: 1 }, "0", 'must be an integer, at least 1, got "0"'],
    [{ type: "int", help: "", min: 1, max: 9 }, "10", 'must be an integer, 1 to 9, got "10"'],
    [{ type: "int", help: "", max: 9 }, "10", 'must be an integer, at most 9, got "10"'],
    [{ type: "float", help: "" }, "fast", 'must be a number, got "fast"'],
    [
      { type: "float", help: "", min: 0, exclusiveMin: true },
      "0",
      'must be a number, above 0, got "0"',
    ],
    [{ type: "size", help: "" }, "lots", 'must be a size like 16MiB or 65536, got "lots"'],
    [{ type: "choice", choices: ["a", "b"], help: "" }, "c", 'must be one of a, b, got "c"'],
    [{ type: "bool", help: "" }, "maybe", 'must be true or false, got "maybe"'],
  ];
  for (const [spec, text, message] of cases) {
    assert.throws(() => parseValueText(spec, text), (err: unknown) => {
      assert.ok(err instanceof ValueError);
      assert.equal(err.message, message);
      return true;
    });
  }
});

Deno.test("checkValueJson() takes JSON values of the declared type only, with the same bounds", () => {
  assert.equal(checkValueJson({ type: "int", help: "", min: 1 }, 3), 3);
  assert.equal(checkValueJson({ type: "size", help: "" }, "1k"), 1024);
  assert.equal(checkValueJson({ type: "size", help: "" }, 2048), 2048);
  assert.equal(checkValueJson({ type: "bool", help: "" }, true), true);
  assert.throws(
    () => checkValueJson({ type: "int", help: "" }, "3"),
    /must be an integer, got "3"/,
  );
  assert.throws(() => checkValueJson({ type: "int", help: "", min: 1 }, 0), /at least 1, got 0/);
  assert.throws(() => checkValueJson({ type: "string", help: "" }, 5), /must be a string, got 5/);
  assert.throws(() => checkValueJson({ type: "bool", help: "" }, "yes"), /true or false/);
  assert.equal(
    describeValue({ type: "int", help: "", min: 100, max: 600 }),
    "an integer, 100 to 600",
  );
});

Deno.test("every role's options: defaults fit their own declarations, flags and env names are unique", () => {
  for (const role of ROLES) {
    const flags = new Set<string>();
    for (const [key, spec] of Object.entries(role.options ?? {})) {
      const where = `${role.name} ${key}`;
      assert.match(key, /^[a-z][a-zA-Z0-9]*$/, where);
      assert.ok(spec.help.length > 0, `${where}: help`);
      if (spec.default !== undefined) checkValueJson(spec, spec.default);
      const option = toCommanderOption(key, spec);
      assert.equal(option.long, optionFlag(key), where);
      assert.equal(option.attributeName(), key, `${where}: commander attribute`);
      assert.equal(option.envVar, optionEnv(key, spec), where);
      assert.ok(!flags.has(option.long!), `${where}: duplicate flag`);
      flags.add(option.long!);
    }
  }
});

Deno.test("roleOptionValues() parses flag and env text, keeps defaults, and names the source of a bad value", () => {
  const schema = ringRole.options!;
  const typed: OptionValues<typeof schema> = roleOptionValues(
    schema,
    { heartbeatMs: "250", failAfter: 3, passTimeoutMs: "900", lease: 3000 },
    (a) => a === "heartbeatMs" ? "cli" : a === "passTimeoutMs" ? "env" : "default",
  );
  assert.deepEqual(typed, { heartbeatMs: 250, failAfter: 3, passTimeoutMs: 900, lease: 3000 });
  // the type the role receives: numbers, not unknown (this line does not compile otherwise)
  const lease: number = typed.lease;
  assert.equal(lease, 3000);
  assert.throws(
    () => roleOptionValues(schema, { lease: "50" }, () => "cli"),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message === '--lease must be an integer, 100 to 600000, got "50"',
  );
  assert.throws(
    () => roleOptionValues(schema, { failAfter: "x" }, () => "env"),
    /^UsageError: PEERD_FAIL_AFTER \(--fail-after\) must be an integer, at least 1, got "x"$/,
  );
  const gossip = roleOptionValues(gossipRole.options!, {}, () => undefined);
  assert.equal(gossip.generate, false, "a switch not given is false");
  const rule: "coin" | "counter" | undefined = gossip.stopRule;
  assert.equal(rule, undefined);
});

Deno.test("nodeOptionValues() checks a peers.json option against the same declaration", () => {
  const c = parsePeersJson(
    JSON.stringify({
      nodes: [{ name: "n1", host: "127.0.0.1", port: 1, role: "ring", lease: 50 }],
    }),
    "p.json",
  );
  assert.throws(
    () => nodeOptionValues(ringRole, c.nodes[0], c, () => "default"),
    /^ConfigError: p\.json: nodes\[0\]\.lease: must be an integer, 100 to 600000, got 50$/,
  );
});

Deno.test("peerd --role X --help lists X's options with type, bounds, default and env; bad values exit 2 with one line", async () => {
  const help = await runPeerd(["--role", "ring", "--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Common options \(every role\):\n\s+--role <role>/);
  assert.match(help.stdout, /Options of --role ring:\n\s+--heartbeat-ms <ms>/);
  assert.match(help.stdout, /--lease <ms>\s+holder lease:[^]*\(100 to 600000\)[^]*default:\s+3000/);
  assert.match(help.stdout, /env:\s+PEERD_FAIL_AFTER/);
  const global = await runPeerd(["--help"]);
  assert.match(
    global.stdout,
    /\n {2}--max-frame <size> +largest frame accepted \(1KiB to 4294967295\) \(default 16MiB\)\n/,
  );
  assert.match(
    global.stdout,
    /\n {2}--log-level <level> +log level \(debug, info, warn, error\) \(default info\)\n/,
  );
  const gossipHelp = await runPeerd(["--role", "gossip", "--help"]);
  assert.match(gossipHelp.stdout, /--topology <mode>[^]*\(auto, full, overlay\)/);
  const dir = await Deno.makeTempDir({ prefix: "peerd-options-" });
  try {
    const peers = `${dir}/peers.json`;
    Deno.writeTextFileSync(
      peers,
      JSON.stringify({
        nodes: [{ name: "n1", host: "127.0.0.1", port: 1, role: "ring", "pass-timeout-ms": 0 }],
      }),
    );
    const ring = ["--role", "ring", "--name", "n1", "--peers", "machines.txt"];
    const cases: Array<[string[], Record<string, string>, string]> = [
      [[...ring, "--lease", "5"], {}, 'peerd: --lease must be an integer, 100 to 600000, got "5"'],
      [
        [...ring, "--heartbeat-ms=fast"],
        {},
        'peerd: --heartbeat-ms must be an integer, at least 1, got "fast"',
      ],
      [
        ring,
        { PEERD_FAIL_AFTER: "-1" },
        'peerd: PEERD_FAIL_AFTER (--fail-after) must be an integer, at least 1, got "-1"',
      ],
      [
        ["--role", "ring", "--name", "n1", "--peers", peers],
        {},
        `peerd: ${peers}: nodes[0].pass-timeout-ms: must be an integer, at least 1, got 0`,
      ],
      [
        ["--role", "echo", "--listen", "127.0.0.1:0", "--max-frame", "1000"],
        {},
        'peerd: --max-frame must be a size like 16MiB or 65536, 1KiB to 4294967295, got "1000"',
      ],
      [
        ["--role", "echo", "--listen", "127.0.0.1:0"],
        { PEERD_LOG_LEVEL: "loud" },
        'peerd: PEERD_LOG_LEVEL (--log-level) must be one of debug, info, warn, error, got "loud"',
      ],
      [
        ["--role", "gossip", "--stop-rule", "never"],
        {},
        'peerd: --stop-rule must be one of coin, counter, got "never"',
      ],
      [
        ["--role", "multicast", "--name", "m1", "--peers", "peers.json", "--generate", "-1"],
        {},
        'peerd: --generate must be a number, at least 0, got "-1"',
      ],
    ];
    const results = await Promise.all(cases.map(([args, env]) => runPeerd(args, { env })));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i][0].join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), cases[i][2]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

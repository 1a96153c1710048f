import assert from "node:assert/strict";
import { LocalCluster, runPeerd } from "./harness/mod.ts";
import { ProtocolError, RemoteError, RpcClient } from "../mod/wire/mod.ts";

Deno.test("echo role answers echo frames and ctl status as a real process", async () => {
  await using cluster = await LocalCluster.start({ nodes: [{ name: "e1", role: "echo" }] });
  const node = cluster.node("e1");
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: node.port }, { name: "t" });
  try {
    const reply = await client.request({ t: "echo", data: { a: [1, 2, "x"] } });
    assert.equal(reply.t, "echo.ok");
    assert.deepEqual(reply.data, { a: [1, 2, "x"] });
  } finally {
    await client.close();
  }
  const ctl = await runPeerd(["ctl", node.address, "status", "--compact"]);
  assert.equal(ctl.code, 0, ctl.stderr);
  const status = JSON.parse(ctl.stdout);
  assert.equal(status.role, "echo");
  assert.equal(status.echoed, 1);
  const bad = await runPeerd(["ctl", node.address, "nosuch"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown_command/);
  const usage = await runPeerd(["ctl", node.address]);
  assert.equal(usage.code, 2);
});

Deno.test("echo role and a wrong-secret client refuse each other; the right secret is served", async () => {
  await using cluster = await LocalCluster.start({
    nodes: [{ name: "e1", role: "echo" }],
    secret: "s3cret",
  });
  const node = cluster.node("e1");
  const addr = { hostname: "127.0.0.1", port: node.port };
  let refused: unknown;
  try {
    const c = await RpcClient.connect(addr, { secret: "wrong" });
    await c.close();
  } catch (err) {
    refused = err;
  }
  // the server proves itself first: a client with another secret finds the proof wrong
  assert(refused instanceof ProtocolError, `expected ProtocolError, got ${String(refused)}`);
  assert.equal(refused.code, "impostor");
  let noSecret: unknown;
  try {
    const c = await RpcClient.connect(addr, {});
    await c.close();
  } catch (err) {
    noSecret = err;
  }
  assert(noSecret instanceof RemoteError, `expected RemoteError, got ${String(noSecret)}`);
  assert.equal(noSecret.code, "unauthorized");
  const good = await RpcClient.connect(addr, { secret: "s3cret" });
  try {
    assert.equal((await good.request({ t: "echo", data: 7 })).data, 7);
  } finally {
    await good.close();
  }
  const ctl = await runPeerd(["ctl", node.address, "status"], { env: { PEERD_SECRET: "s3cret" } });
  assert.equal(ctl.code, 0, ctl.stderr);
});

Deno.test("a garbage-sending client is disconnected while another client keeps being served", async () => {
  await using cluster = await LocalCluster.start({ nodes: [{ name: "e1", role: "echo" }] });
  const node = cluster.node("e1");
  const good = await RpcClient.connect({ hostname: "127.0.0.1", port: node.port });
  try {
    const bad = await Deno.connect({ hostname: "127.0.0.1", port: node.port });
    try {
      await bad.write(crypto.getRandomValues(new Uint8Array(4096)));
      const buf = new Uint8Array(65536);
      let total = 0;
      for (let i = 0; i < 100; i++) {
        const n = await bad.read(buf);
        if (n === null) break;
        total += n;
      }
      assert(total > 0, "expected an error frame before the close");
    } finally {
      bad.close();
    }
    for (let i = 0; i < 10; i++) assert.equal((await good.request({ t: "echo", data: i })).data, i);
  } finally {
    await good.close();
  }
  const problems = node.events().filter((e) => e.ev === "wire.error");
  assert(problems.length >= 1);
});

Deno.test("SIGTERM makes the echo process exit 0 within 5 s", async () => {
  await using cluster = await LocalCluster.start({ nodes: [{ name: "e1", role: "echo" }] });
  const { code, ms } = await cluster.node("e1").stop();
  assert.equal(code, 0);
  assert(ms < 5000, `took ${ms} ms`);
});

Deno.test("a broken peers.json exits 2 with one line naming the problem", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: Array<[string, string, RegExp]> = [
      ["bad.json", "{ nodes: [", /bad JSON/],
      [
        "dup.json",
        JSON.stringify({
          nodes: [{ name: "a", host: "h", port: 1 }, { name: "a", host: "h", port: 2 }],
        }),
        /duplicate node name "a"/,
      ],
      [
        "port.json",
        JSON.stringify({ nodes: [{ name: "a", host: "h", port: 70000 }] }),
        /nodes\[0\]\.port: port 70000 is out of range/,
      ],
      [
        "ok.json",
        JSON.stringify({ nodes: [{ name: "a", host: "127.0.0.1", port: 1 }] }),
        /unknown --name "zz"; nodes are a/,
      ],
    ];
    for (const [file, text, re] of cases) {
      await Deno.writeTextFile(`${dir}/${file}`, text);
      const r = await runPeerd(["--role", "echo", "--name", "zz", "--peers", `${dir}/${file}`]);
      assert.equal(r.code, 2, `${file}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], re);
      assert.match(lines[0], new RegExp(file.replace(".", "\\.")));
    }
    const missing = await runPeerd(["--role", "echo", "--peers", `${dir}/nope.json`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.json: cannot read: no such file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("peerd --help lists roles and --role X --help lists its options; unknown role exits 2", async () => {
  const help = await runPeerd(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Roles:[\s\S]*echo/);
  const roleHelp = await runPeerd(["--role", "echo", "--help"]);
  assert.equal(roleHelp.code, 0);
  assert.match(roleHelp.stdout, /--max-frame/);
  const unknown = await runPeerd(["--role", "nosuch"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown role "nosuch"/);
});

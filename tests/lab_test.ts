import assert from "node:assert/strict";
import { Lab, labTest } from "./harness/lab.ts";
import { runPeerd } from "./harness/mod.ts";
import { listNetns, runTool } from "../mod/lab/net.ts";
import { readState } from "../mod/lab/mod.ts";

/** What of a lab with `prefix` is left on the host: namespaces, links, processes. */
async function leftovers(prefix: string, dir: string): Promise<string[]> {
  const left: string[] = [];
  for (const ns of await listNetns()) if (ns.startsWith(`peerd-${prefix}-`)) left.push(ns);
  const links = JSON.parse((await runTool("ip", ["-j", "link", "show"])).stdout) as Array<
    { ifname: string }
  >;
  for (const l of links) if (l.ifname.startsWith(`${prefix}-`)) left.push(l.ifname);
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmd.includes(`${dir}/`) && cmd.includes("--events")) left.push(`pid ${entry.name}`);
    } catch {
      // gone
    }
  }
  return left;
}

/** Whether `from`'s namespace reaches `to` (a ctl status from inside the namespace). */
async function reaches(lab: Lab, from: string, to: string): Promise<boolean> {
  const out = await runTool("ip", [
    "netns",
    "exec",
    `peerd-${lab.prefix}-${from}`,
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    new URL("../main.ts", import.meta.url).pathname,
    "ctl",
    lab.address(to),
    "status",
    "--timeout",
    "1.5",
    "--compact",
  ], { allowFail: true });
  return out.ok;
}

labTest(
  "Lab.up() gives each node its own IP; partition, oneway and heal cut and restore links",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "peerd-labt-" });
    const prefix = "lt1";
    try {
      {
        await using lab = await Lab.up({
          prefix,
          dir,
          peers: [
            { name: "e1", role: "echo" },
            { name: "e2", role: "echo" },
            { name: "e3", role: "echo" },
          ],
        });
        const ips = lab.names.map((n) => lab.ip(n));
        assert.equal(new Set(ips).size, 3);
        for (const n of lab.names) {
          const s = await lab.ctl(n, "status");
          assert.equal(s.name, n);
          assert.equal(s.listen, lab.address(n));
        }
        const peers = JSON.parse(await Deno.readTextFile(lab.peersPath));
        assert.deepEqual(peers.nodes.map((n: { host: string }) => n.host), ips);
        assert.ok(await reaches(lab, "e1", "e2"));

        await lab.partition(["e1"], ["e2", "e3"]);
        assert.deepEqual(lab.status().cuts, ["e1>e2", "e1>e3", "e2>e1", "e3>e1"]);
        assert.ok(!await reaches(lab, "e1", "e2"));
        assert.ok(!await reaches(lab, "e2", "e1"));
        assert.ok(await reaches(lab, "e2", "e3"));
        // the host still reaches every node (to observe them)
        assert.equal((await lab.ctl("e1", "status")).name, "e1");

        await lab.heal();
        assert.deepEqual(lab.status().cuts, []);
        assert.ok(await reaches(lab, "e1", "e2"));

        // one way: e1's packets to e2 are dropped; a TCP connection needs both ways, so
        // neither side connects, but e1 → e3 still works
        await lab.oneway("e1", "e2");
        assert.deepEqual(lab.status().cuts, ["e1>e2"]);
        assert.ok(!await reaches(lab, "e1", "e2"));
        assert.ok(await reaches(lab, "e1", "e3"));
        await lab.heal();

        await lab.pause("e2");
        assert.equal(lab.status().nodes.find((n) => n.name === "e2")?.state, "paused");
        await lab.resume("e2");
        assert.equal((await lab.ctl("e2", "status")).name, "e2");

        const pid = lab.status().nodes.find((n) => n.name === "e3")?.pid;
        await lab.kill("e3");
        assert.equal(lab.status().nodes.find((n) => n.name === "e3")?.state, "stopped");
        await assert.rejects(lab.ctl("e3", "status", [], { timeoutMs: 1_000 }));
        await lab.restart("e3");
        const again = lab.status().nodes.find((n) => n.name === "e3");
        assert.equal(again?.state, "running");
        assert.notEqual(again?.pid, pid);
        assert.equal(lab.events("e3").filter((e) => e.ev === "ready").length, 2);
      }
      assert.deepEqual(await leftovers(prefix, dir), []);
      assert.equal(readState(dir), undefined);
    } finally {
      await runPeerd(["lab", "down", "--dir", dir, "--prefix", prefix]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

labTest(
  "peerd lab up/partition/status/down from the command line, and down after the lab's process is gone",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "peerd-labc-" });
    const prefix = "lt2";
    try {
      const peers = `${dir}/in.txt`;
      await Deno.writeTextFile(peers, "x1 127.0.0.1:7101\nx2 127.0.0.1:7102\n");
      const labDir = `${dir}/lab`;
      const up = await runPeerd([
        "lab",
        "up",
        "--peers",
        peers,
        "--role",
        "echo",
        "--prefix",
        prefix,
        "--dir",
        labDir,
      ]);
      assert.equal(up.code, 0, up.stderr);
      const status = JSON.parse(up.stdout);
      assert.equal(status.nodes.length, 2);
      assert.ok(status.nodes.every((n: { state: string }) => n.state === "running"));
      // a second lab with the same prefix is refused with exit 2
      const twice = await runPeerd([
        "lab",
        "up",
        "--peers",
        peers,
        "--role",
        "echo",
        "--prefix",
        prefix,
        "--dir",
        `${dir}/other`,
      ]);
      assert.equal(twice.code, 2, twice.stderr);
      assert.match(twice.stderr, /another lab with this prefix/);

      const cut = await runPeerd([
        "lab",
        "partition",
        "x1",
        "x2",
        "--prefix",
        prefix,
        "--dir",
        labDir,
      ]);
      assert.equal(cut.code, 0, cut.stderr);
      assert.deepEqual(JSON.parse(cut.stdout).cuts, ["x1>x2", "x2>x1"]);
      const kill = await runPeerd(["lab", "kill", "x2", "--prefix", prefix, "--dir", labDir]);
      assert.equal(JSON.parse(kill.stdout).state, "stopped");
      const bad = await runPeerd(["lab", "kill", "nope", "--prefix", prefix, "--dir", labDir]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /Cannot find node "nope"/);
      const st = await runPeerd([
        "lab",
        "status",
        "--compact",
        "--prefix",
        prefix,
        "--dir",
        labDir,
      ]);
      const parsed = JSON.parse(st.stdout);
      assert.deepEqual(parsed.cuts, ["x1>x2", "x2>x1"]);
      assert.equal(parsed.nodes[0].state, "running");

      // the `up` process is long gone: down works from the state file alone, and twice
      const down = await runPeerd(["lab", "down", "--prefix", prefix, "--dir", labDir]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(JSON.parse(down.stdout).netns, 2);
      const again = await runPeerd(["lab", "down", "--prefix", prefix, "--dir", labDir]);
      assert.equal(again.code, 0);
      assert.deepEqual(await leftovers(prefix, labDir), []);
    } finally {
      await runPeerd(["lab", "down", "--dir", `${dir}/lab`, "--prefix", prefix]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

labTest(
  "two labs at once take different subnets and names; Lab.live() lists them until down",
  async () => {
    const spec = [{ name: "e1", role: "echo" }];
    const [a, b] = await Promise.all([
      Lab.up({ prefix: "lt3", peers: spec }),
      Lab.up({ prefix: "lt4", peers: spec }),
    ]);
    try {
      assert.notEqual(a.subnet, b.subnet);
      assert.notEqual(a.ip("e1"), b.ip("e1"));
      assert.equal((await a.ctl("e1", "status")).listen, a.address("e1"));
      assert.equal((await b.ctl("e1", "status")).listen, b.address("e1"));
      assert.ok(Lab.live().includes(a) && Lab.live().includes(b));
    } finally {
      await a.down();
      await b.down();
    }
    assert.ok(!Lab.live().includes(a) && !Lab.live().includes(b));
    assert.deepEqual([...await leftovers("lt3", a.dir), ...await leftovers("lt4", b.dir)], []);
  },
);

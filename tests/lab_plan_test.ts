import assert from "node:assert/strict";
import {
  addCuts,
  candidateSubnets,
  checkPrefix,
  chooseSubnet,
  cidrsOverlap,
  cutKey,
  expandArg,
  isolateCuts,
  LabUsageError,
  nftScript,
  onewayCut,
  parseGroups,
  parseRoleArgs,
  partitionCuts,
  planLab,
} from "../mod/lab/mod.ts";

Deno.test("planLab() names every interface within 15 characters and gives one IP a node", () => {
  const nodes = Array.from({ length: 240 }, (_, i) => `node-${i}`);
  const plan = planLab("abcdefgh", nodes, "10.201.3.0/24");
  assert.equal(plan.bridge, "abcdefgh-br");
  assert.equal(plan.bridgeIp, "10.201.3.1");
  assert.equal(plan.nodes[0].ip, "10.201.3.10");
  assert.equal(plan.nodes[239].ip, "10.201.3.249");
  assert.equal(plan.nodes[239].hostVeth, "abcdefgh-h239");
  for (const n of plan.nodes) {
    assert.ok(n.hostVeth.length <= 15 && n.peerVeth.length <= 15, n.hostVeth);
    assert.ok(n.netns.startsWith("peerd-abcdefgh-"));
  }
  assert.equal(new Set(plan.nodes.map((n) => n.ip)).size, 240);
});

Deno.test("planLab() refuses bad prefixes, duplicate or too many nodes, a bad subnet", () => {
  for (const bad of ["", "A", "1ab", "abcdefghi", "a-b", "a b"]) {
    assert.throws(() => checkPrefix(bad), LabUsageError, bad);
  }
  assert.throws(() => planLab("ok", ["a", "a"], "10.200.0.0/24"), /duplicate/);
  assert.throws(() => planLab("ok", [], "10.200.0.0/24"), /no nodes/);
  assert.throws(
    () => planLab("ok", Array.from({ length: 241 }, (_, i) => `n${i}`), "10.200.0.0/24"),
    /at most 240/,
  );
  assert.throws(() => planLab("ok", ["a"], "192.168.1.0/24"), /10\.X\.Y\.0\/24/);
  assert.throws(() => planLab("ok", ["a/b"], "10.200.0.0/24"), /bad node name/);
});

Deno.test("candidateSubnets() stays in 10.200.0.0/13, is distinct, and differs by prefix", () => {
  const a = candidateSubnets("alpha", 2048);
  assert.equal(new Set(a).size, 2048);
  for (const s of a) assert.ok(cidrsOverlap(s, "10.200.0.0/13"), s);
  assert.notEqual(candidateSubnets("ring")[0], candidateSubnets("mc")[0]);
});

Deno.test("chooseSubnet() skips every subnet that overlaps one in use", () => {
  const [first, second, third] = candidateSubnets("av");
  assert.equal(chooseSubnet("av", []), first);
  assert.equal(chooseSubnet("av", [first.replace(".0/24", ".1/24")]), second);
  assert.equal(chooseSubnet("av", [], [first, second]), third);
  assert.throws(() => chooseSubnet("av", ["10.0.0.0/8"]), /no free \/24/);
  assert.ok(cidrsOverlap("10.200.5.0/24", "10.200.5.77/32"));
  assert.ok(!cidrsOverlap("10.200.5.0/24", "10.200.6.0/24"));
  assert.ok(cidrsOverlap("0.0.0.0/0", "10.200.6.0/24"));
});

Deno.test("partitionCuts() cuts every cross-group pair both ways and nothing inside a group", () => {
  const known = ["a", "b", "c", "d", "e"];
  const cuts = partitionCuts(parseGroups(["a,b", "c,d,e"]), known).map(cutKey);
  assert.equal(cuts.length, 12);
  for (const x of ["a", "b"]) {
    for (const y of ["c", "d", "e"]) {
      assert.ok(cuts.includes(`${x}>${y}`) && cuts.includes(`${y}>${x}`));
    }
  }
  assert.ok(!cuts.includes("a>b") && !cuts.includes("c>d"));
  // a node in no group keeps its links
  assert.deepEqual(partitionCuts([["a"], ["b"]], known).map(cutKey), ["a>b", "b>a"]);
  assert.throws(() => partitionCuts([["a"]], known), /two groups/);
  assert.throws(() => partitionCuts([["a"], ["a", "b"]], known), /two groups/);
  assert.throws(() => partitionCuts([["a"], ["zz"]], known), /unknown node "zz"/);
  assert.equal(isolateCuts("c", known).length, 8);
});

Deno.test("onewayCut() is one direction; addCuts() keeps one of each", () => {
  const known = ["a", "b"];
  const cut = onewayCut("a", "b", known);
  assert.deepEqual(cut, { from: "a", to: "b" });
  assert.throws(() => onewayCut("a", "a", known), /itself/);
  assert.equal(addCuts([cut], [cut, { from: "b", to: "a" }]).length, 2);
});

Deno.test("nftScript() drops at the receiver's input only the senders cut towards it", () => {
  const ips: Record<string, string> = { a: "10.200.0.10", b: "10.200.0.11", c: "10.200.0.12" };
  const cuts = [{ from: "a", to: "c" }, { from: "b", to: "c" }, { from: "c", to: "a" }];
  const atC = nftScript("c", cuts, (n) => ips[n]);
  assert.match(atC, /ip saddr \{ 10\.200\.0\.10, 10\.200\.0\.11 \} drop/);
  assert.match(atC, /^table inet peerd_lab\ndelete table inet peerd_lab\n/);
  assert.match(nftScript("a", cuts, (n) => ips[n]), /ip saddr \{ 10\.200\.0\.12 \} drop/);
  assert.doesNotMatch(nftScript("b", cuts, (n) => ips[n]), /drop/);
});

Deno.test("expandArg() fills {addr:N}, {ip:N} and {dir}", () => {
  const lookup = {
    dir: "/tmp/x",
    ip: (n: string) => (n === "s" ? "10.200.0.10" : (() => {
      throw new LabUsageError(`unknown ${n}`);
    })()),
    address: (n: string) => `${lookup.ip(n)}:7601`,
  };
  assert.equal(expandArg("{addr:s}", lookup), "10.200.0.10:7601");
  assert.equal(expandArg("--x={ip:s}/{dir}", lookup), "--x=10.200.0.10//tmp/x");
  assert.throws(() => expandArg("{addr:q}", lookup), /unknown q/);
});

Deno.test("parseRoleArgs() splits ROLE=ARGS, repeats add up, a missing = is a usage error", () => {
  assert.deepEqual(
    parseRoleArgs(["lottery-server=--agencies 5", "gossip=--fanout 2", "gossip=--k 3"]),
    {
      "lottery-server": ["--agencies", "5"],
      gossip: ["--fanout", "2", "--k", "3"],
    },
  );
  assert.throws(() => parseRoleArgs(["--agencies 5"]), LabUsageError);
});

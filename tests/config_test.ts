import assert from "node:assert/strict";
import {
  ConfigError,
  findNode,
  parseHostPort,
  parseMachinesText,
  parsePeersJson,
} from "../mod/config/mod.ts";

Deno.test("parseMachinesText() reads names and addresses in file order, skipping comments", () => {
  const c = parseMachinesText(
    "# ring\nn1 127.0.0.1:7101\n\n n2   127.0.0.1:7102  # second\r\n",
    "machines.txt",
  );
  assert.deepEqual(c.nodes.map((n) => [n.name, n.hostname, n.port]), [["n1", "127.0.0.1", 7101], [
    "n2",
    "127.0.0.1",
    7102,
  ]]);
});

Deno.test("parseMachinesText() names the line of a bad port or duplicate", () => {
  assert.throws(
    () => parseMachinesText("a h:1\nb h:99999\n", "m.txt"),
    /m\.txt:2: port 99999 is out of range/,
  );
  assert.throws(
    () => parseMachinesText("a h:1\na h:2\n", "m.txt"),
    /m\.txt:2: duplicate node name "a" \(first on line 1\)/,
  );
  assert.throws(
    () => parseMachinesText("a nohostport\n", "m.txt"),
    /m\.txt:1: "nohostport" is not host:port/,
  );
  assert.throws(() => parseMachinesText("# nothing\n", "m.txt"), ConfigError);
});

Deno.test("parsePeersJson() keeps role, neighbours and extra options", () => {
  const c = parsePeersJson(
    JSON.stringify({
      cluster: "c",
      secret: "s",
      nodes: [{ name: "g1", host: "h", port: 1, role: "gossip", neighbours: ["g2"], weight: 3 }, {
        name: "g2",
        host: "h",
        port: 2,
      }],
    }),
    "p.json",
  );
  assert.equal(c.cluster, "c");
  assert.equal(c.secret, "s");
  assert.deepEqual(c.nodes[0].neighbours, ["g2"]);
  assert.deepEqual(c.nodes[0].options, { weight: 3 });
  assert.equal(findNode(c, "g2").port, 2);
  assert.throws(() => findNode(c, "g9"), /unknown --name "g9"; nodes are g1, g2/);
});

Deno.test("parsePeersJson() names the key of each problem", () => {
  const bad = (doc: unknown) => () => parsePeersJson(JSON.stringify(doc), "p.json");
  assert.throws(() => parsePeersJson("{", "p.json"), /p\.json: bad JSON/);
  assert.throws(bad({ nodes: {} }), /key "nodes" must be an array/);
  assert.throws(
    bad({ nodes: [{ name: "a", host: "h", port: "1" }] }),
    /nodes\[0\]\.port: port "1" is out of range/,
  );
  assert.throws(
    bad({ nodes: [{ name: "a", host: "h", port: 1, neighbours: ["zz"] }] }),
    /unknown node "zz"/,
  );
  assert.throws(bad({ nodes: [{ host: "h", port: 1 }] }), /nodes\[0\]\.name/);
});

Deno.test("parseHostPort() accepts IPv4, names and [IPv6], refuses the rest", () => {
  assert.deepEqual(parseHostPort("localhost:80"), { hostname: "localhost", port: 80 });
  assert.deepEqual(parseHostPort("[::1]:7000"), { hostname: "::1", port: 7000 });
  assert.throws(() => parseHostPort("1.2.3.4"), ConfigError);
  assert.throws(() => parseHostPort("h:0"), /out of range/);
  assert.deepEqual(parseHostPort("h:0", "x", { allowZero: true }), { hostname: "h", port: 0 });
});

import assert from "node:assert/strict";
import { runPeerd } from "./harness/mod.ts";
import { checkNodeKeys, nodeOptionValues } from "../mod/cli/node_options.ts";
import { ROLES } from "../mod/cli/registry.ts";
import {
  ConfigError,
  findNode,
  loadPeersFile,
  loadTlsFiles,
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
    /nodes\[0\]\.port: port must be a number, got the string "1"/,
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

Deno.test("parseMachinesText() refuses a duplicate address and a third field, naming the lines", () => {
  assert.throws(
    () => parseMachinesText("n1 127.0.0.1:7101\nn2 127.0.0.1:7102\nn3 127.0.0.1:7101\n", "m.txt"),
    /m\.txt:3: node "n3" has the address 127\.0\.0\.1:7101 of node "n1" \(line 1\)/,
  );
  assert.throws(
    () => parseMachinesText("n1 127.0.0.1:7101 ring\n", "m.txt"),
    /m\.txt:1: expected "name host:port", got 3 fields \("ring" is too many/,
  );
});

Deno.test("parsePeersJson() refuses a duplicate address naming both nodes, and ports as strings", () => {
  const doc = {
    nodes: [
      { name: "n1", host: "127.0.0.1", port: 7101 },
      { name: "n2", host: "127.0.0.1", port: 7102 },
      { name: "n3", host: "127.0.0.1", port: 7101 },
    ],
  };
  assert.throws(
    () => parsePeersJson(JSON.stringify(doc), "p.json"),
    /p\.json: nodes\[2\]: node "n3" has the address 127\.0\.0\.1:7101 of nodes\[0\] "n1"/,
  );
  assert.throws(
    () =>
      parsePeersJson(
        JSON.stringify({ nodes: [{ name: "n1", host: "h", port: "7101" }] }),
        "p.json",
      ),
    /port must be a number, got the string "7101"/,
  );
  // the same port on another host is fine
  const ok = parsePeersJson(
    JSON.stringify({
      nodes: [{ name: "a", host: "10.0.0.1", port: 7000 }, {
        name: "b",
        host: "10.0.0.2",
        port: 7000,
      }],
    }),
    "p.json",
  );
  assert.equal(ok.nodes.length, 2);
});

Deno.test("peerd refuses config mistakes with exit 2 and one line naming the file, key or option", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-auth-config-" });
  try {
    const write = (name: string, text: string) => {
      Deno.writeTextFileSync(`${dir}/${name}`, text);
      return `${dir}/${name}`;
    };
    const node = (extra: Record<string, unknown> = {}) => ({
      name: "n1",
      host: "127.0.0.1",
      port: 7101,
      role: "ring",
      ...extra,
    });
    const cases: Array<[string[], RegExp]> = [
      [
        [
          "--role",
          "ring",
          "--name",
          "n1",
          "--peers",
          write("dup.txt", "n1 127.0.0.1:7101\nn2 127.0.0.1:7101\n"),
        ],
        /dup\.txt:2: node "n2" has the address 127\.0\.0\.1:7101 of node "n1"/,
      ],
      [
        [
          "--role",
          "ring",
          "--name",
          "n1",
          "--peers",
          write("third.txt", "n1 127.0.0.1:7101 extra\n"),
        ],
        /third\.txt:1: expected "name host:port", got 3 fields/,
      ],
      [
        [
          "--role",
          "ring",
          "--name",
          "n1",
          "--peers",
          write("str.json", JSON.stringify({ nodes: [node({ port: "7101" })] })),
        ],
        /str\.json: nodes\[0\]\.port: port must be a number, got the string "7101"/,
      ],
      [
        [
          "--role",
          "ring",
          "--name",
          "n1",
          "--peers",
          write("key.json", JSON.stringify({ nodes: [node({ fanuot: 3 })] })),
        ],
        /key\.json: nodes\[0\] "n1": unknown key "fanuot"; a node takes name, host, port, role, neighbours, http and the options of role ring \(heartbeat-ms/,
      ],
      [
        [
          "--role",
          "ring",
          "--name",
          "n1",
          "--peers",
          write("kind.json", JSON.stringify({ nodes: [node({ "fail-after": "x" })] })),
        ],
        /kind\.json: nodes\[0\]\.fail-after: must be an integer, at least 1, got "x"/,
      ],
      [
        [
          "--role",
          "ring",
          "--name",
          "n1",
          "--peers",
          write("role.json", JSON.stringify({ nodes: [node({ role: "rnig" })] })),
        ],
        /role\.json: nodes\[0\] "n1": unknown role "rnig"/,
      ],
      [
        ["--role", "echo", "--listen", "nohost.invalid:7000"],
        /^peerd: --listen nohost\.invalid:7000: cannot listen on "nohost\.invalid"/,
      ],
      [
        ["--role", "echo", "--listen", "192.0.2.77:7000"],
        /--listen 192\.0\.2\.77:7000: .*not an address of this machine/,
      ],
    ];
    const results = await Promise.all(
      cases.map(([args]) => runPeerd([...args, "--log-level", "error"])),
    );
    results.forEach((r, i) => {
      const lines = r.stderr.trim().split("\n");
      assert.equal(r.code, 2, `${cases[i][0].join(" ")}: ${r.stderr}`);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], cases[i][1]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nodeOptionValues() applies a node's role options from peers.json unless a flag set them; checkNodeKeys() passes the repo's files", () => {
  const queue = ROLES.find((r) => r.name === "queue")!;
  const doc = (sync: unknown) =>
    parsePeersJson(
      JSON.stringify({ nodes: [{ name: "q1", host: "127.0.0.1", port: 1, role: "queue", sync }] }),
      "p.json",
    );
  const c = doc("full");
  checkNodeKeys(c, queue, ROLES);
  assert.deepEqual(nodeOptionValues(queue, c.nodes[0], c, () => "default"), { sync: "full" });
  assert.deepEqual(nodeOptionValues(queue, c.nodes[0], c, () => "cli"), {});
  assert.deepEqual(nodeOptionValues(queue, c.nodes[0], c, () => "env"), {});
  const bad = doc("sideways");
  assert.throws(
    () => nodeOptionValues(queue, bad.nodes[0], bad, () => "default"),
    /p\.json: nodes\[0\]\.sync: must be one of normal, full/,
  );
  for (const file of ["peers.json", "machines.txt"]) {
    const cluster = loadPeersFile(file);
    for (const role of ROLES) checkNodeKeys(cluster, role, ROLES);
  }
});

Deno.test("loadTlsFiles() reads PEM files and names the option of each problem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "peerd-auth-config-" });
  try {
    const pem = (kind: string) => `-----BEGIN ${kind}-----\nAAAA\n-----END ${kind}-----\n`;
    Deno.writeTextFileSync(`${dir}/c.pem`, pem("CERTIFICATE"));
    Deno.writeTextFileSync(`${dir}/k.pem`, pem("PRIVATE KEY"));
    Deno.writeTextFileSync(`${dir}/junk.pem`, "not a pem");
    assert.equal(loadTlsFiles({}, { node: true }), undefined);
    const tls = loadTlsFiles(
      { tlsCert: `${dir}/c.pem`, tlsKey: `${dir}/k.pem`, tlsCa: `${dir}/c.pem` },
      { node: true },
    );
    assert.equal(tls?.caCerts?.length, 1);
    assert.match(tls?.key ?? "", /PRIVATE KEY/);
    assert.throws(() => loadTlsFiles({ tlsCert: `${dir}/c.pem` }, { node: true }), /go together/);
    assert.throws(
      () => loadTlsFiles({ tlsCa: `${dir}/c.pem` }, { node: true }),
      /--tls-ca needs --tls-cert and --tls-key on a node/,
    );
    assert.equal(loadTlsFiles({ tlsCa: `${dir}/c.pem` }, { node: false })?.caCerts?.length, 1);
    assert.throws(
      () => loadTlsFiles({ tlsCa: `${dir}/nope.pem` }, { node: false }),
      /--tls-ca .*nope\.pem: cannot read/,
    );
    assert.throws(
      () => loadTlsFiles({ tlsCa: `${dir}/junk.pem` }, { node: false }),
      /--tls-ca .*junk\.pem: not a PEM file/,
    );
    assert.throws(
      () => loadTlsFiles({ tlsCert: `${dir}/c.pem`, tlsKey: `${dir}/c.pem` }, { node: true }),
      /--tls-key .*: not a PEM file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

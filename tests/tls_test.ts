/**
 * TLS on real processes, with certificates made by `openssl` here: a broker and two
 * daemons working over mutual TLS with a secret, a recording proxy on the wire that never
 * sees a payload in the clear, and plaintext or certificate-less clients refused.
 */
import assert from "node:assert/strict";
import { freePort, LocalCluster, runPeerd, waitUntil } from "./harness/mod.ts";
import { MomClient, type MomMessage } from "../mod/mom/mod.ts";
import { RpcClient, type TlsConfig } from "../mod/wire/mod.ts";
import { haveOpenssl, makeCertificates } from "./harness/certs.ts";

/**
 * Runs `fn` with a CA, node and client certificates made by openssl in a temp dir (removed
 * after), and a reader of those files; says skipped when openssl is missing.
 */
async function withCertificates(
  fn: (dir: string, read: (file: string) => string) => Promise<void>,
): Promise<void> {
  if (!(await haveOpenssl())) {
    console.log("skipped: openssl is not installed");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "peerd-auth-tls-" });
  try {
    await makeCertificates(dir);
    await fn(dir, (f) => Deno.readTextFileSync(`${dir}/${f}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const decoder = new TextDecoder();

/** A TCP proxy that forwards both ways and keeps every byte it saw. */
class RecordingProxy {
  readonly port = freePort();
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #loop: Promise<void>;
  #seen: Uint8Array[] = [];
  bytes = 0;

  constructor(readonly target: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.#loop = this.#accept();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let a: Deno.Conn;
      try {
        a = await this.#listener.accept();
      } catch {
        return;
      }
      let b: Deno.Conn;
      try {
        b = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
      } catch {
        a.close();
        continue;
      }
      this.#conns.add(a).add(b);
      const task = Promise.allSettled([this.#pipe(a, b), this.#pipe(b, a)]).finally(() => {
        for (const c of [a, b]) {
          this.#conns.delete(c);
          try {
            c.close();
          } catch {
            // closed
          }
        }
      });
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (let i = 0; i < 1_000_000; i++) {
        const n = await from.read(buf);
        if (n === null) break;
        this.#seen.push(buf.slice(0, n));
        this.bytes += n;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } finally {
      try {
        to.closeWrite();
      } catch {
        // closed
      }
    }
  }

  /** Whether `text` appears in the recorded bytes (as UTF-8). */
  saw(text: string): boolean {
    const all = new Uint8Array(this.bytes);
    let at = 0;
    for (const c of this.#seen) {
      all.set(c, at);
      at += c.length;
    }
    return decoder.decode(all).includes(text);
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#loop;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await Promise.allSettled([...this.#tasks]);
  }
}

Deno.test("broker and daemons over mutual TLS with a secret: payloads never cross the wire in the clear; plaintext and certificate-less clients are refused", async () => {
  await withCertificates(async (dir, read) => {
    const clientTls: TlsConfig = {
      caCerts: [read("ca.crt")],
      cert: read("client.crt"),
      key: read("client.key"),
    };
    const nodeArgs = [
      "--tls-cert",
      `${dir}/node.crt`,
      "--tls-key",
      `${dir}/node.key`,
      "--tls-ca",
      `${dir}/ca.crt`,
    ];
    // the daemons reach the broker through the proxy: the peers file gives the proxy's
    // port, the broker listens behind it
    const brokerPort = freePort();
    const proxy = new RecordingProxy(brokerPort);
    try {
      await using cluster = await LocalCluster.start({
        nodes: [
          {
            name: "b1",
            role: "broker",
            port: proxy.port,
            args: [...nodeArgs, "--listen", `127.0.0.1:${brokerPort}`],
          },
          { name: "d1", role: "daemon", args: nodeArgs },
          { name: "d2", role: "daemon", args: nodeArgs },
        ],
        secret: "tls-s3cret",
        tls: clientTls,
      });
      const [d1, d2] = [cluster.node("d1"), cluster.node("d2")];
      for (const d of [d1, d2]) {
        await waitUntil(async () => (await d.ctl("status")).link === "up", {
          timeoutMs: 15_000,
          what: `${d.name} link up over TLS`,
        });
      }
      const options = { secret: "tls-s3cret", tls: clientTls };
      const pub = await MomClient.connect({ hostname: "127.0.0.1", port: d1.port }, options);
      const sub = await MomClient.connect({ hostname: "127.0.0.1", port: d2.port }, options);
      try {
        const publisher = await pub.create();
        const subscriber = await sub.create();
        await subscriber.subscribe("vault/#");
        const marker = "TOPSECRET-PAYLOAD-7f3a9c";
        for (let i = 0; i < 20; i++) await publisher.publish(`vault/${i}`, `${marker}-${i}`);
        const got: MomMessage[] = [];
        await waitUntil(async () => {
          got.push(...await subscriber.receiveBatch({ timeout: 300 }));
          return got.length >= 20;
        }, { timeoutMs: 20_000, what: "20 publications over TLS" });
        await subscriber.ack();
        assert.equal(new Set(got.map((m) => decoder.decode(m.payload))).size, 20);
        // the publications went daemon → proxy → broker → proxy → daemon, all encrypted
        assert(proxy.bytes > 2_000, `the proxy saw only ${proxy.bytes} bytes`);
        assert(!proxy.saw(marker), "a payload crossed the proxy in the clear");
        assert(!proxy.saw("vault/"), "a topic crossed the proxy in the clear");
      } finally {
        await pub.close();
        await sub.close();
      }

      // a plaintext client never reaches the frame protocol
      const mark = d1.mark();
      await assert.rejects(
        RpcClient.connect({ hostname: "127.0.0.1", port: d1.port }, {
          secret: "tls-s3cret",
          timeoutMs: 3_000,
        }),
      );
      await d1.waitForEvent((e) => e.ev === "wire.error" && e.what === "tls", { from: mark });
      // TLS without a client certificate: the mutual TLS server refuses it
      await assert.rejects(
        RpcClient.connect({ hostname: "127.0.0.1", port: d1.port }, {
          secret: "tls-s3cret",
          tls: { caCerts: clientTls.caCerts },
          timeoutMs: 3_000,
        }),
      );
      // peerd ctl with the CA and a client certificate works; without --tls-ca it fails
      const ok = await runPeerd([
        "ctl",
        d1.address,
        "status",
        "--secret",
        "tls-s3cret",
        "--tls-ca",
        `${dir}/ca.crt`,
        "--tls-cert",
        `${dir}/client.crt`,
        "--tls-key",
        `${dir}/client.key`,
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(JSON.parse(ok.stdout).role, "daemon");
      const plain = await runPeerd(["ctl", d1.address, "status", "--secret", "tls-s3cret"]);
      assert.equal(plain.code, 1);
      // so does the mom command
      const mom = await runPeerd([
        "mom",
        "--daemon",
        d1.address,
        "--secret",
        "tls-s3cret",
        "--tls-ca",
        `${dir}/ca.crt`,
        "--tls-cert",
        `${dir}/client.crt`,
        "--tls-key",
        `${dir}/client.key`,
        "create",
      ]);
      assert.equal(mom.code, 0, mom.stderr);
      // a node started with half the TLS options is a usage error naming them
      const half = await runPeerd([
        "--role",
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        `${dir}/node.crt`,
      ]);
      assert.equal(half.code, 2);
      assert.match(half.stderr, /--tls-cert and --tls-key/);
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("the recording proxy does see plaintext payloads without TLS (the check above can fail)", async () => {
  const echoPort = freePort();
  const proxy = new RecordingProxy(echoPort);
  try {
    await using cluster = await LocalCluster.start({
      nodes: [{ name: "e1", role: "echo", port: echoPort }],
    });
    const client = await RpcClient.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      await client.request({ t: "echo", data: "PLAINTEXT-MARKER-51c2" });
    } finally {
      await client.close();
    }
    assert.equal(cluster.nodes.length, 1);
    await waitUntil(() => proxy.saw("PLAINTEXT-MARKER-51c2"), { what: "the marker at the proxy" });
  } finally {
    await proxy.close();
  }
});

Deno.test("a TLS dial to a server that accepts TCP and never answers TLS ends with the dial's timeout", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const loop = (async () => {
    for (;;) {
      try {
        accepted.push(await silent.accept());
      } catch {
        return;
      }
    }
  })();
  try {
    // the dial must end by itself (its 300 ms timeout); the 30 s guard only keeps a
    // regression from hanging the suite
    let guard: ReturnType<typeof setTimeout> | undefined;
    const dial = RpcClient.connect({ hostname: "127.0.0.1", port: silent.addr.port }, {
      tls: {},
      timeoutMs: 300,
    });
    const outcome = await Promise.race([
      dial.then(() => "connected", () => "refused"),
      new Promise<string>((resolve) => guard = setTimeout(() => resolve("hung"), 30_000)),
    ]);
    clearTimeout(guard);
    assert.equal(outcome, "refused");
  } finally {
    silent.close();
    await loop;
    for (const c of accepted) c.close();
  }
});

Deno.test("a token ring over mutual TLS: every node sees the others alive and a lock is granted; a plaintext member is never alive", async () => {
  await withCertificates(async (dir, read) => {
    const tlsArgs = [
      "--tls-cert",
      `${dir}/node.crt`,
      "--tls-key",
      `${dir}/node.key`,
      "--tls-ca",
      `${dir}/ca.crt`,
    ];
    await using cluster = await LocalCluster.start({
      nodes: [
        { name: "n1", role: "ring", args: tlsArgs },
        { name: "n2", role: "ring", args: tlsArgs },
        { name: "n3", role: "ring", args: tlsArgs },
        // a member that serves plaintext: the others' TLS dials to it fail
        { name: "n4", role: "ring" },
      ],
      secret: "ring-tls",
      tls: { caCerts: [read("ca.crt")], cert: read("client.crt"), key: read("client.key") },
    });
    const tlsNodes = ["n1", "n2", "n3"].map((n) => cluster.node(n));
    await waitUntil(async () => {
      for (const n of tlsNodes) {
        const alive = (await n.ctl("status")).alive as string[];
        if (alive.slice().sort().join() !== "n1,n2,n3") return false;
      }
      return true;
    }, { timeoutMs: 20_000, what: "n1..n3 alive to each other over TLS" });
    const lock = await cluster.node("n2").ctl("lock", ["5"], { timeoutMs: 20_000 });
    assert.equal(lock.t, "ctl.ok");
    await cluster.node("n2").ctl("unlock");
    await cluster.node("n1").waitForEvent((e) =>
      e.ev === "wire.error" && e.what === "tls" && e.remote === cluster.node("n4").address
    );
    for (const n of tlsNodes) {
      assert(!((await n.ctl("status")).alive as string[]).includes("n4"));
    }
  });
});

Deno.test("a TLS node says ready only once it accepts connections: a ctl right after ready is never refused", async () => {
  await withCertificates(async (dir, read) => {
    const tlsArgs = ["--tls-cert", `${dir}/node.crt`, "--tls-key", `${dir}/node.key`];
    await using cluster = await LocalCluster.start({
      nodes: ["e1", "e2", "e3", "e4"].map((name) => ({ name, role: "echo", args: tlsArgs })),
      tls: { caCerts: [read("ca.crt")] },
    });
    // LocalCluster.start returned on each node's ready event: each must answer now
    for (const name of ["e1", "e2", "e3", "e4"]) {
      assert.equal((await cluster.node(name).ctl("status")).t, "ctl.ok", name);
    }
  });
});

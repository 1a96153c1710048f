/**
 * Authentication and TLS benchmark against a real `peerd --role echo`, in three setups:
 * plain, with a cluster secret (mutual HMAC handshake), and with mutual TLS and a secret
 * (certificates made by `openssl` for the run).
 *
 * - connect: dial + handshake + one echo + close, one after another: p50/p99 µs;
 * - echo: 100-byte round trips with 500 in flight on one connection: round trips/s.
 *
 * Prints one JSON line per figure. `deno run -A bench/auth_bench.ts [--connects N] [--echoes N]`
 *
 * @module
 */
import { LocalCluster } from "../mod/harness/mod.ts";
import { RpcClient, type TlsConfig } from "../mod/wire/mod.ts";
import { haveOpenssl, makeCertificates } from "../tests/harness/certs.ts";

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const CONNECTS = Number(argValue("--connects", "300"));
const ECHOES = Number(argValue("--echoes", "100000"));
const DATA = new Uint8Array(91).fill(7);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(
  setup: string,
  port: number,
  dial: { secret?: string; tls?: TlsConfig },
): Promise<void> {
  const address = { hostname: "127.0.0.1", port };
  // warm-up
  for (let i = 0; i < 20; i++) {
    const c = await RpcClient.connect(address, dial);
    await c.request({ t: "echo", data: DATA });
    await c.close();
  }
  const times: number[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const t0 = performance.now();
    const c = await RpcClient.connect(address, dial);
    await c.request({ t: "echo", data: DATA });
    await c.close();
    times.push((performance.now() - t0) * 1000);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({
    bench: "auth",
    figure: "connect_handshake_echo_us",
    setup,
    p50: Math.round(quantile(times, 0.5)),
    p99: Math.round(quantile(times, 0.99)),
    n: CONNECTS,
  }));
  const client = await RpcClient.connect(address, dial);
  try {
    const window = 500;
    let sent = 0;
    const t0 = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    while (sent < ECHOES) {
      while (inFlight.size < window && sent < ECHOES) {
        const p = client.request({ t: "echo", data: DATA });
        inFlight.add(p);
        p.finally(() => inFlight.delete(p));
        sent++;
      }
      await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const s = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({
      bench: "auth",
      figure: "echo_round_trips_per_s",
      setup,
      value: Math.round(ECHOES / s),
      in_flight: window,
      n: ECHOES,
    }));
  } finally {
    await client.close();
  }
}

const dir = await Deno.makeTempDir({ prefix: "peerd-auth-bench-" });
try {
  const tls = await haveOpenssl();
  if (tls) await makeCertificates(dir);
  const tlsArgs = tls
    ? ["--tls-cert", `${dir}/node.crt`, "--tls-key", `${dir}/node.key`, "--tls-ca", `${dir}/ca.crt`]
    : [];
  await using cluster = await LocalCluster.start({
    nodes: [
      { name: "plain", role: "echo" },
      { name: "secret", role: "echo", args: ["--secret", "bench-s3cret"] },
      ...(tls
        ? [{ name: "tls", role: "echo", args: ["--secret", "bench-s3cret", ...tlsArgs] }]
        : []),
    ],
    logLevel: "warn",
  });
  await measure("plain", cluster.node("plain").port, {});
  await measure("secret", cluster.node("secret").port, { secret: "bench-s3cret" });
  if (tls) {
    const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
    await measure("tls+secret", cluster.node("tls").port, {
      secret: "bench-s3cret",
      tls: { caCerts: [read("ca.crt")], cert: read("client.crt"), key: read("client.key") },
    });
  } else {
    console.error("auth bench: openssl missing, TLS setup skipped");
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

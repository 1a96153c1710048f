/**
 * CPU per request through two request/reply links, in one process, alternating: the
 * ratings `PeerLink` of a tree from before the shared link (`mod/ratings/peer_link.ts`) and
 * the shared wire `PeerLink` of a tree after it. Both talk to one echo `FrameServer` with
 * 256 requests in flight; the figure is the process's CPU time (`/proc/self/stat`, client and
 * server together) divided by the requests. Needs two checkouts:
 *
 *     git worktree add ../before <commit-before> && git worktree add ../after <commit-after>
 *     deno run -A bench/link_compare.ts ../before ../after [requests]
 *
 * @module
 */
const [beforeDir, afterDir, count] = Deno.args;
if (!beforeDir || !afterDir) {
  console.error("usage: deno run -A bench/link_compare.ts BEFORE_TREE AFTER_TREE [requests]");
  Deno.exit(2);
}
const N = Number(count ?? 400_000);
const WINDOW = 256;
const ROUNDS = 4;
const abs = (dir: string, path: string) => new URL(path, `file://${Deno.realPathSync(dir)}/`).href;
const oldMod = await import(abs(beforeDir, "mod/ratings/peer_link.ts"));
const newMod = await import(abs(afterDir, "mod/wire/mod.ts"));

/** CPU µs (user + system) this process has used. */
function cpuMicros(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

type Request = (n: number) => Promise<unknown>;

/** CPU µs per request for N requests, WINDOW in flight. */
async function measure(request: Request): Promise<number> {
  let next = 0;
  const c0 = cpuMicros();
  await Promise.all(Array.from({ length: WINDOW }, async () => {
    while (next < N) await request(next++);
  }));
  return (cpuMicros() - c0) / N;
}

const server = new newMod.FrameServer({
  listen: { hostname: "127.0.0.1", port: 0 },
  identity: { role: "bench", name: "s" },
  handlers: { "b.echo": (m: { n: unknown }) => ({ t: "b.ok", n: m.n }) },
});
const before = new oldMod.PeerLink("127.0.0.1", server.port, { role: "bench", name: "old" });
const after = new newMod.PeerLink({ hostname: "127.0.0.1", port: server.port }, {
  role: "bench",
  name: "new",
});
try {
  const oldRequest: Request = (n) => before.request({ t: "b.echo", n }, 30_000);
  const newRequest: Request = (n) => after.request({ t: "b.echo", n }, { timeoutMs: 30_000 });
  await measure(oldRequest); // warm-up
  await measure(newRequest);
  const runs = { before: [] as number[], after: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) {
    runs.before.push(await measure(oldRequest));
    runs.after.push(await measure(newRequest));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const r = (x: number) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({
    bench: "link_compare",
    figure: "cpu_us_per_request",
    before: r(median(runs.before)),
    after: r(median(runs.after)),
    ratio: r(median(runs.after) / median(runs.before)),
    runs: { before: runs.before.map(r), after: runs.after.map(r) },
    requests: N,
    in_flight: WINDOW,
  }));
} finally {
  await before.close();
  await after.close();
  await server.close();
}

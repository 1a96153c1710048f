/**
 * The token ring under network faults, in the lab (one network namespace and IP per node,
 * nftables cuts, SIGSTOP pauses): the holder isolated (the scenario of issue 14), the ring
 * cut into halves, one-way loss from the holder, the holder paused past its lease, and the
 * holder killed and restarted. Each checks, over every node's events (one clock for all
 * namespaces), that no two nodes' [lock.acquired, lock.released | lock.lost lease end]
 * intervals overlap and fences increase, that the cut-off holder is told, and that exactly
 * one token exists after the heal.
 */
import assert from "node:assert/strict";
import { Lab, type LabNodeSpec, labTest } from "./harness/lab.ts";
import { waitUntil } from "./harness/mod.ts";
import { mutualExclusion } from "../mod/lab/checkers.ts";
import { type Message, RemoteError, RpcClient } from "../mod/wire/mod.ts";

const LEASE_MS = 1_500;

function ring(n: number): LabNodeSpec[] {
  const args = ["--lease", String(LEASE_MS), "--heartbeat-ms", "250", "--fail-after", "3"];
  return Array.from({ length: n }, (_, i) => ({
    name: `n${i + 1}`,
    role: "ring",
    port: 7101,
    args,
  }));
}

/** Every node sees every other one, and the first token exists. */
async function ready(lab: Lab): Promise<void> {
  await waitUntil(async () => {
    const st = await Promise.all(lab.names.map((n) => lab.ctl(n, "status")));
    return st.every((s) => (s.alive as string[]).length === lab.names.length) &&
      st.some((s) => Number(s.gen) > 0);
  }, { timeoutMs: 20_000, intervalMs: 100, what: "ring meshed with a token" });
}

/** Exactly one node holds the token, none is passing one, nobody waits (polled). */
async function oneToken(lab: Lab, names = lab.names): Promise<Message[]> {
  let last: Message[] = [];
  try {
    return await waitUntil(async () => {
      last = await Promise.all(names.map((n) => lab.ctl(n, "status")));
      const quiet = last.every((s) => s.passing === false && s.waiting === 0);
      return quiet && last.filter((s) => s.token === true).length === 1 ? last : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100, what: "exactly one token" });
  } catch (err) {
    throw new Error(
      `${err}: ${JSON.stringify(last.map((s) => [s.name, s.token, s.passing, s.gen]))}`,
    );
  }
}

/** A ctl connection from the host that stays open (it is told if its lock is lost). */
async function holderClient(lab: Lab, node: string) {
  const client = await RpcClient.connect(lab.hostPort(node), { role: "ctl", name: "lab-test" });
  const notices: Message[] = [];
  client.onMessage = (m) => notices.push(m);
  return {
    client,
    notices,
    lock: (timeoutS = 10) =>
      client.request({ t: "ctl", cmd: "lock", args: ["--timeout", String(timeoutS)] }, {
        timeoutMs: timeoutS * 1000 + 5_000,
      }),
    unlock: (fence: unknown) =>
      client.request({ t: "ctl", cmd: "unlock", args: [String(fence)] }, { timeoutMs: 5_000 }),
  };
}

/** Lock/unlock loops at `nodes` until `signal`; a minority's timeouts are expected. */
function contend(lab: Lab, nodes: string[], signal: AbortSignal): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => {
    let granted = 0;
    for (let i = 0; i < 200 && !signal.aborted; i++) {
      try {
        const got = await lab.ctl(n, "lock", ["--timeout", "2"], { timeoutMs: 6_000 });
        granted++;
        await lab.ctl(n, "unlock", [String(got.fence)]).catch(() => {});
      } catch {
        // not acquired in time (a minority, or the lease being waited out)
      }
    }
    return granted;
  }));
}

function assertSafe(lab: Lab, ends: Record<string, number> = {}): void {
  assert.deepEqual(mutualExclusion(lab.allEvents(), ends), []);
}

/** The cut-off holder was told: event, status, the notice on its ctl connection, unlock. */
async function assertTold(
  lab: Lab,
  node: string,
  held: Message,
  holder: Awaited<ReturnType<typeof holderClient>>,
  from: number,
): Promise<Message> {
  const lost = await lab.waitForEvent(node, (e) => e.ev === "lock.lost" && e.fence === held.fence, {
    from,
    timeoutMs: LEASE_MS * 4,
  });
  await waitUntil(() => holder.notices.find((m) => m.t === "lock.lost"), {
    what: "lock.lost notice on the holder's connection",
  });
  const st = await lab.ctl(node, "status");
  assert.equal(st.held, false);
  assert.equal((st.lost as Message).fence, held.fence);
  await assert.rejects(
    holder.unlock(held.fence),
    (e: unknown) => e instanceof RemoteError && /was lost/.test(e.message),
  );
  return lost as unknown as Message;
}

labTest(
  "lab ring: lock at n1, isolate n1: n1 loses it at its lease end, n2 after; one token after heal",
  async () => {
    await using lab = await Lab.up({ prefix: "rg1", peers: ring(3) });
    await ready(lab);
    const holder = await holderClient(lab, "n1");
    try {
      const held = await holder.lock();
      const from = lab.mark("n1");
      await lab.isolate("n1");
      // n1 cannot keep its lease; the other two wait it out and go on.
      const minority = lab.ctl("n1", "lock", ["--timeout", "2"], { timeoutMs: 6_000 });
      const got = await lab.ctl("n2", "lock", ["--timeout", "10"], { timeoutMs: 15_000 });
      assert.ok(Number(got.fence) > Number(held.fence));
      assert.ok(Number(got.gen) > Number(held.gen), "regenerated with a higher generation");
      await assert.rejects(minority, /no majority/);
      await lab.ctl("n2", "unlock", [String(got.fence)]);
      const lost = await assertTold(lab, "n1", held, holder, from);
      const acquired = lab.events("n2").find((e) =>
        e.ev === "lock.acquired" && e.fence === got.fence
      )!;
      assert.ok(Number(lost.lease_end) <= acquired.ts, "n1's lease ended before n2 acquired");
      await lab.heal();
      const statuses = await oneToken(lab);
      assert.ok(statuses.every((s) => s.held === false));
      const back = await lab.ctl("n1", "lock", ["--timeout", "10"], { timeoutMs: 15_000 });
      assert.ok(Number(back.fence) > Number(got.fence));
      await lab.ctl("n1", "unlock");
      await oneToken(lab);
      assertSafe(lab);
    } finally {
      await holder.client.close();
    }
  },
);

labTest(
  "lab ring: partition into halves: only the majority grants; after heal one token, everyone served",
  async () => {
    await using lab = await Lab.up({ prefix: "rg2", peers: ring(5) });
    await ready(lab);
    const holder = await holderClient(lab, "n1");
    const stop = new AbortController();
    try {
      const held = await holder.lock();
      const from = lab.mark("n1");
      await lab.partition(["n1", "n2"], ["n3", "n4", "n5"]);
      const load = contend(lab, ["n2", "n3", "n4", "n5"], stop.signal);
      await assertTold(lab, "n1", held, holder, from);
      await waitUntil(() => lab.events("n4").some((e) => e.ev === "lock.acquired"), {
        timeoutMs: LEASE_MS * 6,
        what: "a grant on the majority side",
      });
      const st2 = await lab.ctl("n2", "status");
      assert.equal(st2.quorum, false);
      stop.abort();
      const [n2, ...majority] = await load;
      assert.equal(n2, 0, "the minority never granted");
      assert.ok(majority.reduce((a, b) => a + b) > 0);
      await lab.heal();
      await oneToken(lab);
      for (const n of lab.names) {
        const got = await lab.ctl(n, "lock", ["--timeout", "10"], { timeoutMs: 15_000 });
        await lab.ctl(n, "unlock", [String(got.fence)]);
      }
      await oneToken(lab);
      assertSafe(lab);
    } finally {
      stop.abort();
      await holder.client.close();
    }
  },
);

labTest(
  "lab ring: one-way loss from the holder: it loses the lock, the others go on; one token after heal",
  async () => {
    await using lab = await Lab.up({ prefix: "rg3", peers: ring(3) });
    await ready(lab);
    const holder = await holderClient(lab, "n1");
    const stop = new AbortController();
    try {
      const held = await holder.lock();
      const from = lab.mark("n1");
      // n1 hears the others but nothing it sends arrives.
      await lab.oneway("n1", "n2");
      await lab.oneway("n1", "n3");
      const load = contend(lab, ["n2", "n3"], stop.signal);
      await assertTold(lab, "n1", held, holder, from);
      await waitUntil(
        () => lab.allEvents().some((e) => e.ev === "lock.acquired" && e.node !== "n1"),
        {
          timeoutMs: LEASE_MS * 6,
          what: "a grant at n2 or n3",
        },
      );
      stop.abort();
      await load;
      await lab.heal();
      await oneToken(lab);
      const back = await lab.ctl("n1", "lock", ["--timeout", "10"], { timeoutMs: 15_000 });
      await lab.ctl("n1", "unlock", [String(back.fence)]);
      await oneToken(lab);
      assertSafe(lab);
    } finally {
      stop.abort();
      await holder.client.close();
    }
  },
);

labTest(
  "lab ring: the holder paused past its lease, then resumed: lost at once, never used",
  async () => {
    await using lab = await Lab.up({ prefix: "rg4", peers: ring(3) });
    await ready(lab);
    const holder = await holderClient(lab, "n1");
    const stop = new AbortController();
    try {
      const held = await holder.lock();
      const from = lab.mark("n1");
      await lab.pause("n1");
      const load = contend(lab, ["n2", "n3"], stop.signal);
      await waitUntil(
        () =>
          lab.allEvents().filter((e) => e.ev === "lock.acquired" && e.node !== "n1").length >= 5,
        { timeoutMs: LEASE_MS * 8, what: "five grants while n1 is stopped" },
      );
      await lab.resume("n1");
      const lost = await assertTold(lab, "n1", held, holder, from);
      assert.ok(Number(lost.late_ms) > 0, "noticed after its lease ended");
      stop.abort();
      await load;
      await oneToken(lab);
      assertSafe(lab);
    } finally {
      stop.abort();
      await holder.client.close();
    }
  },
);

labTest(
  "lab ring: kill -9 of the holder and restart: regenerated after its lease; fences go on",
  async () => {
    await using lab = await Lab.up({ prefix: "rg5", peers: ring(3) });
    await ready(lab);
    const held = await lab.ctl("n1", "lock", ["--timeout", "10"]);
    await lab.kill("n1");
    const killedAt = Date.now();
    const got = await lab.ctl("n2", "lock", ["--timeout", "10"], { timeoutMs: 15_000 });
    assert.ok(Number(got.fence) > Number(held.fence));
    await lab.ctl("n2", "unlock");
    await lab.restart("n1");
    await ready(lab);
    const back = await lab.ctl("n1", "lock", ["--timeout", "10"], { timeoutMs: 15_000 });
    assert.ok(Number(back.fence) > Number(got.fence));
    await lab.ctl("n1", "unlock");
    // The restarted node kept its generation (no new "first" token), and one token is left.
    const all = lab.allEvents();
    assert.equal(all.filter((e) => e.ev === "token.created").length, 1);
    const regen = all.find((e) => e.ev === "token.regenerated")!;
    assert.ok(regen.ts >= killedAt + LEASE_MS * 0.5, "not before the dead holder's lease ran out");
    await oneToken(lab);
    assertSafe(lab, { n1: killedAt });
  },
);

import assert from "node:assert/strict";
import {
  Backoff,
  type Clock,
  RemoteError,
  retryConnect,
  type RetryFailure,
} from "../mod/wire/mod.ts";

/** A clock that only pretends: `sleep` records the delay and moves `now` on at once. */
class FakeClock implements Clock {
  t = 1_000;
  slept: number[] = [];
  onSleep?: () => void;
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    this.t += ms;
    this.onSleep?.();
    return Promise.resolve();
  }
}

/** A `connect` that fails `n` times (each attempt costs `costMs` of fake time), then works. */
function failing(clock: FakeClock, n: number, costMs = 0) {
  const calls = { count: 0 };
  const connect = () => {
    calls.count++;
    clock.t += costMs;
    return calls.count <= n
      ? Promise.reject(new Error(`refused ${calls.count}`))
      : Promise.resolve(`link ${calls.count}`);
  };
  return { calls, connect };
}

Deno.test("retryConnect waits the backoff's delays between failures and returns the link", async () => {
  const clock = new FakeClock();
  const { calls, connect } = failing(clock, 5);
  const failures: RetryFailure[] = [];
  const backoff = new Backoff({ initialMs: 50, maxMs: 500, random: () => 0.5 });
  const link = await retryConnect(connect, {
    backoff,
    clock,
    onFailure: (f) => failures.push(f),
  });
  assert.equal(link, "link 6");
  assert.equal(calls.count, 6);
  assert.deepEqual(clock.slept, [50, 100, 200, 400, 500]);
  assert.deepEqual(failures.map((f) => f.failures), [1, 2, 3, 4, 5]);
  assert.deepEqual(failures.map((f) => f.delayMs), clock.slept);
  assert.deepEqual(failures.map((f) => f.failingMs), [0, 50, 150, 350, 750]);
  assert.equal((failures[0].error as Error).message, "refused 1");
  assert.equal(backoff.failures, 0, "a success resets the caller's backoff");
});

Deno.test("retryConnect gives up with the last error once failing for giveUpAfterMs", async () => {
  const clock = new FakeClock();
  const { calls, connect } = failing(clock, Infinity, 10);
  await assert.rejects(
    retryConnect(connect, {
      backoff: { initialMs: 100, maxMs: 1_000, jitter: 0 },
      giveUpAfterMs: 2_000,
      clock,
    }),
    /refused 6/,
  );
  // failures at 0, 110, 320, 730, 1540 and 2550 ms after the first: the last is past 2 s
  assert.equal(calls.count, 6);
  assert.deepEqual(clock.slept, [100, 200, 400, 800, 1_000]);
});

Deno.test("retryConnect rethrows a fatal error at once and stops after maxAttempts", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const refused = new RemoteError({ t: "error", code: "unauthorized", message: "bad secret" });
  await assert.rejects(
    retryConnect(() => {
      calls++;
      return Promise.reject(refused);
    }, { clock, fatal: (err) => err instanceof RemoteError }),
    (err) => err === refused,
  );
  assert.equal(calls, 1);
  assert.deepEqual(clock.slept, []);

  const { calls: c2, connect } = failing(clock, Infinity);
  await assert.rejects(retryConnect(connect, { clock, maxAttempts: 3 }), /refused 3/);
  assert.equal(c2.count, 3);
  assert.equal(clock.slept.length, 2);
});

Deno.test("retryConnect rejects with the signal's reason when aborted before, during or between attempts", async () => {
  const clock = new FakeClock();
  const reason = new Error("stopping");
  await assert.rejects(
    retryConnect(() => Promise.resolve(1), { clock, signal: AbortSignal.abort(reason) }),
    (err) => err === reason,
  );

  const between = new AbortController();
  clock.onSleep = () => between.abort(reason);
  const { calls, connect } = failing(clock, Infinity);
  await assert.rejects(
    retryConnect(connect, { clock, signal: between.signal }),
    (err) => err === reason,
  );
  assert.equal(calls.count, 1, "no attempt after the abort");
  clock.onSleep = undefined;

  const during = new AbortController();
  await assert.rejects(
    retryConnect(() => {
      during.abort(reason);
      return Promise.reject(new Error("connect aborted"));
    }, { clock, signal: during.signal }),
    (err) => err === reason,
  );
});

Deno.test("retryConnect on the real clock: an aborted wait ends at once, leaving no timer", async () => {
  const ac = new AbortController();
  const t0 = performance.now();
  const attempt = retryConnect(() => Promise.reject(new Error("down")), {
    backoff: { initialMs: 60_000, maxMs: 60_000 },
    signal: ac.signal,
    onFailure: () => queueMicrotask(() => ac.abort()),
  });
  await assert.rejects(attempt, (err) => (err as Error).name === "AbortError");
  assert.ok(performance.now() - t0 < 30_000);
});

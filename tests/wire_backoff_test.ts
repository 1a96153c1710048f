import assert from "node:assert/strict";
import { Backoff, sleep } from "../mod/wire/mod.ts";

Deno.test("Backoff.next() doubles from initialMs up to maxMs, jittered within its spread", () => {
  const mid = new Backoff({ initialMs: 50, maxMs: 1_000, random: () => 0.5 });
  assert.deepEqual(
    Array.from({ length: 8 }, () => mid.next()),
    [50, 100, 200, 400, 800, 1_000, 1_000, 1_000],
  );
  assert.equal(mid.failures, 8);
  const low = new Backoff({ initialMs: 100, maxMs: 2_000, jitter: 0.25, random: () => 0 });
  const high = new Backoff({ initialMs: 100, maxMs: 2_000, jitter: 0.25, random: () => 0.999999 });
  assert.equal(low.next(), 75);
  assert.ok(Math.abs(high.next() - 125) < 0.001);
  for (let i = 0; i < 10; i++) high.next();
  assert.equal(high.next(), 2_000, "jitter never goes past the cap");
});

Deno.test("Backoff.reset() starts over after a success; bad options are refused", () => {
  const b = new Backoff({ initialMs: 10, maxMs: 100, jitter: 0 });
  b.next();
  b.next();
  assert.equal(b.next(), 40);
  b.reset();
  assert.equal(b.failures, 0);
  assert.equal(b.next(), 10);
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
  assert.throws(() => new Backoff({ jitter: 1 }), RangeError);
  const huge = new Backoff({ initialMs: 1, maxMs: 1e9, jitter: 0 });
  for (let i = 0; i < 2_000; i++) assert.ok(Number.isFinite(huge.next()));
});

Deno.test("sleep() resolves early when its signal aborts and leaves no timer behind", async () => {
  const ac = new AbortController();
  const t0 = performance.now();
  const slept = sleep(60_000, ac.signal);
  ac.abort();
  await slept;
  assert.ok(performance.now() - t0 < 1_000);
  await sleep(1_000, AbortSignal.abort()); // already aborted: at once
  await sleep(1);
});

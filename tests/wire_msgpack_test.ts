import assert from "node:assert/strict";
import { decode as referenceDecode, encode as referenceEncode } from "@msgpack/msgpack";
import { FastDecoder, FastEncoder, MsgpackDecodeError } from "../mod/wire/msgpack_fast.ts";

function randomValue(rand: () => number, depth: number): unknown {
  const kind = rand() % (depth > 3 ? 8 : 10);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rand() % 2 === 0;
    case 2: {
      // integers across every width boundary, both signs
      const widths = [0x7f, 0xff, 0xffff, 0xffffffff, 2 ** 53 - 1, 0x1f, 0x80, 0x8000, 0x80000000];
      const w = widths[rand() % widths.length];
      const n = rand() % 3 === 0 ? w : rand() % (w + 1);
      return rand() % 2 === 0 ? n : -n;
    }
    case 3:
      return (rand() - 2 ** 30) / 7.3;
    case 4: {
      const alphabet = ["a", "Z", "0", " ", "é", "✓", "😀", "ß", "\u0000"];
      const len = [0, 1, 5, 31, 32, 40, 255, 300][rand() % 8];
      let s = "";
      for (let i = 0; i < len; i++) s += alphabet[rand() % alphabet.length];
      return s;
    }
    case 5: {
      const len = [0, 1, 63, 64, 255, 256, 70000][rand() % 7];
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = rand() & 0xff;
      return b;
    }
    case 6:
    case 7:
      return `k${rand() % 50}`;
    case 8: {
      const n = [0, 1, 15, 16, 20][rand() % 5];
      return Array.from({ length: n }, () => randomValue(rand, depth + 1));
    }
    default: {
      const n = [0, 1, 15, 16, 18][rand() % 5];
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) o[`key${rand() % 40}_${i}`] = randomValue(rand, depth + 1);
      return o;
    }
  }
}

function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
}

Deno.test("FastEncoder output decodes with the reference codec, and reference output with FastDecoder", () => {
  const rand = seeded(7);
  const enc = new FastEncoder();
  const dec = new FastDecoder();
  for (let i = 0; i < 3000; i++) {
    const value = randomValue(rand, 0);
    const ours = enc.encode(value).slice();
    assert.deepEqual(referenceDecode(ours), value, `ours→reference, case ${i}`);
    const theirs = referenceEncode(value);
    assert.deepEqual(dec.decode(theirs), value, `reference→ours, case ${i}`);
    assert.deepEqual(dec.decode(ours), value, `ours→ours, case ${i}`);
  }
});

Deno.test("FastEncoder skips undefined map values like the reference (ignoreUndefined)", () => {
  const enc = new FastEncoder();
  assert.deepEqual(referenceDecode(enc.encode({ t: "x", gone: undefined, kept: 1 })), {
    t: "x",
    kept: 1,
  });
});

Deno.test("FastDecoder falls back to the reference for extension types (timestamps)", () => {
  const when = new Date(1_700_000_000_123);
  assert.deepEqual(new FastDecoder().decode(referenceEncode({ t: "d", when })), { t: "d", when });
});

Deno.test("FastDecoder rejects truncated input, trailing bytes, 0xc1 and __proto__ keys", () => {
  const dec = new FastDecoder();
  const full = referenceEncode({ t: "x", list: [1, 2, 3], s: "hello world" });
  for (let cut = 0; cut < full.length; cut++) {
    assert.throws(() => dec.decode(full.subarray(0, cut)), MsgpackDecodeError, `cut at ${cut}`);
  }
  assert.throws(() => dec.decode(new Uint8Array([0x01, 0x02])), /Extra 1 bytes/);
  assert.throws(() => dec.decode(new Uint8Array([0xc1])), MsgpackDecodeError);
  assert.throws(
    () => dec.decode(new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01])),
    /__proto__/,
  );
  // a huge declared array length with no data is refused before allocating it
  assert.throws(
    () => dec.decode(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])),
    /Insufficient data/,
  );
});

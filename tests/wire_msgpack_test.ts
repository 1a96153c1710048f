import assert from "node:assert/strict";
import { decode as referenceDecode, encode as referenceEncode } from "@msgpack/msgpack";
import {
  ENCODED,
  encodeValue,
  FrameDecoder,
  FrameEncoder,
  type Message,
  MsgpackDecodeError,
  MsgpackDecoder,
  MsgpackEncoder,
  type PreEncoded,
  ShapeCache,
} from "../mod/wire/mod.ts";

/** The encoder and decoder under test (`FastEncoder` / `FastDecoder` of old). */
const FastEncoder = MsgpackEncoder;
/** A decoder that learns key layouts, as a connection's does after its handshake. */
class FastDecoder extends MsgpackDecoder {
  constructor() {
    super({ shapes: new ShapeCache() });
  }
}

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

Deno.test("MsgpackDecoder reads extension types itself, as the reference does (timestamps)", () => {
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

Deno.test("FastDecoder reads repeated key layouts (shape readers) exactly like the reference", () => {
  const dec = new FastDecoder();
  const odd = ['q"uote', "back\\slash", "line\u2028sep", "é", "0", "12", "", "constructor"];
  const layouts: string[][] = [
    ["t", "d"],
    ["d", "t"], // same keys, other order: another layout
    ["t", "rid"],
    ["t", "x"],
    ["t", "y"],
    ["t", "z"],
    ["t", "w"], // five layouts of two keys: more than are tried first
    odd,
    ["t", "rid", "user", "topic", "payload", "id"],
  ];
  const rand = seeded(11);
  for (let i = 0; i < 4000; i++) {
    const keys = layouts[rand() % layouts.length];
    const value: Record<string, unknown> = {};
    for (const k of keys) {
      value[k] = rand() % 3 === 0 ? { t: "in", n: rand() % 100 } : rand() % 1000;
    }
    const bytes = referenceEncode(value);
    const back = dec.decode(bytes) as Record<string, unknown>;
    assert.deepEqual(back, referenceDecode(bytes), `case ${i}`);
    assert.deepEqual(Object.keys(back), Object.keys(referenceDecode(bytes) as object));
  }
  // a layout seen before with a key repeated: the later value wins, as in the reference
  const dup = new Uint8Array([0x82, 0xa1, 0x74, 0x01, 0xa1, 0x74, 0x02]);
  assert.deepEqual(dec.decode(dup), { t: 2 });
  assert.deepEqual(dec.decode(dup), { t: 2 });
  // after a layout is learned, a truncated map of that layout is still a decode error
  const full = referenceEncode({ t: "x", d: new Uint8Array(20) });
  dec.decode(full);
  for (let cut = 1; cut < full.length; cut++) {
    assert.throws(() => dec.decode(full.subarray(0, cut)), MsgpackDecodeError, `cut at ${cut}`);
  }
  // and __proto__ where a learned layout has another key is refused
  dec.decode(referenceEncode({ t: "x", a: 1 }));
  const proto = new Uint8Array([
    0x82,
    0xa1,
    0x74,
    0xa1,
    0x78,
    0xa9,
    ...new TextEncoder().encode("__proto__"),
    0x01,
  ]);
  assert.throws(() => dec.decode(proto), /__proto__/);
  assert.equal(
    Object.getPrototypeOf(dec.decode(referenceEncode({ t: "x", a: 1 }))),
    Object.prototype,
  );
});

Deno.test("FastEncoder writes own enumerable keys only, and widens the map header past 15 keys", () => {
  const enc = new FastEncoder();
  const dec = new FastDecoder();
  const bare = Object.assign(Object.create(null), { t: "n", a: 1 });
  assert.deepEqual(referenceDecode(enc.encode(bare)), { t: "n", a: 1 });
  const base = { inherited: 1 };
  const child = Object.assign(Object.create(base), { t: "c", own: 2 });
  assert.deepEqual(referenceDecode(enc.encode(child)), { t: "c", own: 2 });
  class Point {
    x = 1;
    y = 2;
    norm(): number {
      return this.x + this.y;
    }
  }
  assert.deepEqual(referenceDecode(enc.encode(new Point())), { x: 1, y: 2 });
  for (const n of [15, 16, 17, 255, 65535, 65536, 70000]) {
    const big: Record<string, unknown> = { t: "big" };
    for (let i = 1; i < n; i++) big[`k${i}`] = i % 3 === 0 ? undefined : i;
    const expected = Object.fromEntries(Object.entries(big).filter(([, v]) => v !== undefined));
    const bytes = enc.encode(big).slice();
    assert.deepEqual(referenceDecode(bytes), expected, `${n} keys`);
    assert.deepEqual(bytes, referenceEncode(expected), `${n} keys: same bytes as the reference`);
    assert.deepEqual(dec.decode(bytes), expected);
  }
});

Deno.test("a PreEncoded object is written as its bytes, wherever it appears, and decodes as the plain value", () => {
  let calls = 0;
  const plain = { seq: 7, id: "d1:7", payload: new Uint8Array([1, 2, 3]) };
  const bytes = encodeValue(plain);
  // class instances (a plain object's symbol keys are not looked at), as the daemon's
  // shared inbox entries are
  class Entry implements PreEncoded {
    [ENCODED](): Uint8Array {
      calls++;
      return bytes;
    }
  }
  const frame = { t: "messages", messages: [new Entry(), new Entry(), plain] };
  const enc = new FrameEncoder();
  const dec = new FrameDecoder();
  dec.push(enc.encode(frame as unknown as Message));
  const got = dec.next() as Message;
  assert.equal(calls, 2);
  assert.deepEqual(got.messages, [plain, plain, plain]);
  assert.deepEqual(referenceDecode(bytes), plain);
});

Deno.test("short strings decode right when the same length repeats: equal, differing at either end, non-ASCII", () => {
  const values = [
    "peersbench.fanout.123",
    "peersbench.fanout.123",
    "xeersbench.fanout.123", // differs at the start only
    "peersbench.fanout.124", // differs at the end only
    "peersbench.fanout.124",
    "péersbench.fanout.12", // same byte length, not ASCII
    "peersbench.fanout.124",
    "",
    "a",
    "b",
    "x".repeat(31),
    "y".repeat(31),
  ];
  const decoder = new FastDecoder();
  // one value at a time, then all in one array (as a batch of messages comes)
  for (const v of values) assert.equal(decoder.decode(referenceEncode(v)), v);
  assert.deepEqual(decoder.decode(referenceEncode(values)), values);
  const maps = values.map((topic, seq) => ({ seq, topic, id: `d1:${1795388805123456 + seq}` }));
  assert.deepEqual(decoder.decode(referenceEncode(maps)), maps);
});

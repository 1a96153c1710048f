/**
 * Property-based and hostile-input tests of the MessagePack codec: the encoder writes the
 * reference codec's bytes, the decoder reads them to the reference's values, and no input
 * costs more than a constant times its bytes (counted in decoded values, with generous
 * time bounds that are correctness bounds — an exponential decoder takes minutes — not
 * speed targets).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode as referenceDecode, encode as referenceEncode, ExtData } from "@msgpack/msgpack";
import {
  FrameDecoder,
  MAX_DEPTH,
  MAX_FRAME_ELEMENTS,
  type Message,
  MsgpackDecodeError,
  MsgpackDecoder,
  MsgpackEncodeError,
  MsgpackEncoder,
  ShapeCache,
  WireError,
} from "../mod/wire/mod.ts";

const REFERENCE_OPTIONS = { ignoreUndefined: true } as const;

/** Values inside what both codecs accept (MessagePack's data model, Date and ExtData). */
const valueArb: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.integer({ min: -0x80000000, max: 0xffffffff }),
    fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, -0x20, -0x21, -0x81, -0x8001),
    fc.double(),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.string({ unit: "binary-ascii", minLength: 30, maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.date({ noInvalidDate: true }),
    fc.record({ type: fc.integer({ min: 0, max: 127 }), data: fc.uint8Array({ maxLength: 20 }) })
      .map(({ type, data }) => new ExtData(type, data)),
    fc.array(tie("value"), { maxLength: 20 }),
    fc.dictionary(
      fc.oneof(fc.constantFrom("t", "rid", "d", "data", "id"), fc.string({ maxLength: 20 }))
        .filter((k) => k !== "__proto__"),
      tie("value"),
      { maxKeys: 18, noNullPrototype: false },
    ),
  ),
})).value;

Deno.test("MsgpackEncoder writes exactly the reference codec's bytes for every value both accept (fast-check)", () => {
  const ours = new MsgpackEncoder();
  fc.assert(
    fc.property(valueArb, (value) => {
      const bytes = ours.encode(value).slice();
      assert.deepEqual(bytes, referenceEncode(value, REFERENCE_OPTIONS));
    }),
    { numRuns: 1500, seed: 20 },
  );
});

Deno.test("MsgpackDecoder reads the reference's bytes to the reference's values, with and without learned layouts (fast-check)", () => {
  const plain = new MsgpackDecoder();
  const shaped = new MsgpackDecoder({ shapes: new ShapeCache() });
  fc.assert(
    fc.property(valueArb, (value) => {
      const bytes = referenceEncode(value, REFERENCE_OPTIONS);
      const expected = referenceDecode(bytes);
      assert.deepEqual(plain.decode(bytes), expected);
      // twice: the second time through the layouts learned the first time
      assert.deepEqual(shaped.decode(bytes), expected);
      assert.deepEqual(shaped.decode(bytes), expected);
      // decoding work is bounded by the input: every value needs at least one byte (5 units
      // at most: a one-byte container, 1 as an entry and 4 as a container)
      assert.ok(shaped.elements <= 5 * bytes.length, `${shaped.elements} values`);
    }),
    { numRuns: 1500, seed: 15 },
  );
});

Deno.test("MsgpackEncoder refuses what the reference refuses or would lose (bigint, Map, Set, ArrayBuffer, functions) and handles Date and ExtData as it does", () => {
  const ours = new MsgpackEncoder();
  // bigint: the reference refuses it too
  assert.throws(() => referenceEncode({ t: "x", n: 1n }));
  assert.throws(() => ours.encode({ t: "x", n: 1n }), MsgpackEncodeError);
  // Map, Set, ArrayBuffer: the reference writes an empty map (data silently lost); refused
  assert.deepEqual(referenceDecode(referenceEncode({ m: new Map([["a", 1]]) })), { m: {} });
  assert.throws(() => ours.encode({ t: "x", m: new Map([["a", 1]]) }), /Map/);
  assert.throws(() => ours.encode({ t: "x", s: new Set([1]) }), /Set/);
  assert.throws(() => ours.encode({ t: "x", b: new ArrayBuffer(4) }), /ArrayBuffer/);
  assert.throws(() => ours.encode({ t: "x", f: () => 1 }), MsgpackEncodeError);
  assert.throws(() => ours.encode({ t: "x", s: Symbol("s") }), MsgpackEncodeError);
  // ... wherever they appear (a Map beside a Date used to be emptied by a fallback)
  assert.throws(() => ours.encode({ t: "x", when: new Date(), m: new Map() }), /Map/);
  // Date and ExtData, and other typed arrays as binary: the same bytes as the reference
  for (
    const value of [
      { when: new Date(0) },
      { when: new Date(-1) },
      { when: new Date(1_700_000_000_123) },
      { when: new Date(8.64e15) },
      { ext: new ExtData(5, new Uint8Array(300)) },
      { ext: new ExtData(1, new Uint8Array(16)) },
      { i32: new Int32Array([1, -1]), f64: new Float64Array([0.5]) },
    ]
  ) {
    assert.deepEqual(ours.encode(value).slice(), referenceEncode(value), JSON.stringify(value));
  }
  assert.throws(() => ours.encode(new Date(NaN)), /invalid Date/);
});

/** `depth` arrays around `inner`: [[[…inner…]]]. */
function nested(depth: number, inner: unknown): unknown {
  let v = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

Deno.test("one depth limit for every value: encoder and decoder stop at MAX_DEPTH, extension values included", () => {
  const ours = new MsgpackEncoder();
  const dec = new MsgpackDecoder();
  const ext = new ExtData(3, new Uint8Array([1, 2, 3]));
  for (const inner of [1, "s", ext, new Date(5), {}]) {
    // the innermost value at level MAX_DEPTH (the root is level 1): accepted by both, as
    // by the reference
    const ok = nested(MAX_DEPTH - 1, inner);
    const bytes = ours.encode(ok).slice();
    assert.deepEqual(bytes, referenceEncode(ok));
    assert.deepEqual(dec.decode(bytes), referenceDecode(bytes));
    // one level more: refused by both sides, with no other decoder to fall back to
    const deep = nested(MAX_DEPTH, inner);
    assert.throws(() => referenceEncode(deep), /Too deep/);
    assert.throws(() => ours.encode(deep), /nesting deeper than 100 levels/);
    const deepBytes = new Uint8Array([0x91, ...bytes]);
    assert.throws(() => dec.decode(deepBytes), /Nesting deeper than 100 levels/);
  }
  // 100,000 levels with an extension value inside: refused at once, not decoded
  const levels = 100_000;
  const huge = new Uint8Array(levels + 4);
  huge.fill(0x91, 0, levels);
  huge.set([0xd4, 0x03, 0x01], levels);
  huge[levels + 3] = 0; // trailing byte: irrelevant, refused before
  const t0 = performance.now();
  assert.throws(() => dec.decode(huge), /Nesting deeper than 100 levels/);
  assert.ok(performance.now() - t0 < 1_000, "a deep frame is refused at the limit");
  // keys cannot smuggle nesting past the limit: a container as a key is refused unread
  assert.throws(
    () => dec.decode(new Uint8Array([0x81, 0x91, 0x91, 0x01, 0x01])),
    /type of key must be string or number/,
  );
});

Deno.test("random and mutated bytes: the decoder throws only MsgpackDecodeError, agrees with the reference when it succeeds, and does bounded work (fast-check)", () => {
  const dec = new MsgpackDecoder({ shapes: new ShapeCache() });
  const inputs = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 400 }),
    // valid encodings with a few bytes overwritten: near-valid input finds more paths
    fc.tuple(
      valueArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        maxLength: 4,
      }),
    ).map(([value, edits]) => {
      const bytes = referenceEncode(value, REFERENCE_OPTIONS).slice();
      for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
      return bytes;
    }),
  );
  fc.assert(
    fc.property(inputs, (bytes) => {
      const t0 = performance.now();
      let ours: unknown;
      let failed = false;
      try {
        ours = dec.decode(bytes);
      } catch (err) {
        assert.ok(err instanceof MsgpackDecodeError, `threw ${String(err)}`);
        failed = true;
      }
      // a correctness bound (exponential work takes minutes), not a speed target
      assert.ok(performance.now() - t0 < 1_000, `${bytes.length} bytes took too long`);
      if (!failed) {
        assert.ok(dec.elements <= 5 * bytes.length);
        assert.deepEqual(ours, referenceDecode(bytes));
      }
    }),
    { numRuns: 3000, seed: 2020 },
  );
});

Deno.test("the nesting bomb (duplicate keys under learned layouts) decodes in linear work, not 5× per level", () => {
  const dec = new MsgpackDecoder({ shapes: new ShapeCache() });
  // learn four layouts of two keys that all start with "a", and the hello layout
  for (const second of ["b", "c", "d", "e"]) dec.decode(referenceEncode({ a: 1, [second]: 2 }));
  dec.decode(referenceEncode({ t: "hello", v: 1, role: "ring", name: "n1" }));
  // {a: {a: {…, a: 1}, a: 1}, a: 1}: every level matches each layout's first key and
  // misses at the second; the old reader decoded the nested value again on every try
  const level = (inner: Uint8Array) => new Uint8Array([0x82, 0xa1, 0x61, ...inner, 0xa1, 0x61, 1]);
  let bytes = new Uint8Array([1]);
  for (let i = 0; i < 40; i++) bytes = level(bytes);
  const frame = new Uint8Array([
    0x84,
    ...referenceEncode("t"),
    ...referenceEncode("hello"),
    ...referenceEncode("v"),
    1,
    ...referenceEncode("role"),
    ...bytes,
    ...referenceEncode("name"),
    ...referenceEncode("n1"),
  ]);
  assert.ok(frame.length < 400, `${frame.length} bytes`);
  const t0 = performance.now();
  const value = dec.decode(frame) as Record<string, unknown>;
  const ms = performance.now() - t0;
  assert.equal(value.t, "hello");
  assert.ok(dec.elements <= 5 * frame.length, `${dec.elements} values decoded`);
  // 5^40 tries before; a correctness bound, not a speed target
  assert.ok(ms < 1_000, `${ms} ms for a ${frame.length}-byte frame`);
  // and through the frame decoder before the handshake (no layouts at all): same answer
  const fd = new FrameDecoder();
  const framed = new Uint8Array(4 + frame.length);
  new DataView(framed.buffer).setUint32(0, frame.length);
  framed.set(frame, 4);
  fd.push(framed);
  assert.equal(fd.learnsShapes, false);
  assert.deepEqual(fd.next(), value);
});

function framed(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

Deno.test("a 16 MiB frame of empty maps is refused within the element budget, not turned into 16M objects", () => {
  const size = 16 * 1024 * 1024 - 16;
  const before = Deno.memoryUsage().rss;
  // one array of 16M empty maps: its count alone is over the budget, refused before allocating
  const one = new Uint8Array(size);
  one.set([0x81, 0xa1, 0x74, 0xdd, 0x00, 0xff, 0xff, 0xf0]);
  one.fill(0x80, 8);
  // 256 arrays of 64K empty maps each: refused once a million values have been decoded
  const many = new Uint8Array(size);
  many.set([0x81, 0xa1, 0x74, 0xdc, 0x01, 0x00]);
  let p = 6;
  for (let a = 0; a < 256 && p + 3 + 0xffff <= size; a++) {
    many.set([0xdc, 0xff, 0xff], p);
    p += 3;
    many.fill(0x80, p, p + 0xffff);
    p += 0xffff;
  }
  for (const payload of [one, many]) {
    const fd = new FrameDecoder();
    fd.push(framed(payload));
    const t0 = performance.now();
    assert.throws(
      () => fd.next(),
      (e: unknown) =>
        e instanceof WireError && e.code === "bad_msgpack" && !e.fatal &&
        /More than 1048576 values|Insufficient data/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 5_000, "refused in bounded time");
  }
  // memory: the budget (about a million small objects) plus the two 16 MiB inputs, not GBs
  const grown = Deno.memoryUsage().rss - before;
  assert.ok(grown < 400 * 1024 * 1024, `RSS grew by ${Math.round(grown / 2 ** 20)} MiB`);
  assert.equal(MAX_FRAME_ELEMENTS, 1_048_576);
});

Deno.test("container counts are checked against the bytes left before anything is allocated", () => {
  const dec = new MsgpackDecoder();
  for (
    const bytes of [
      [0xdd, 0xff, 0xff, 0xff, 0xff], // array of 4G, no data
      [0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x01], // map of 2G, 2 bytes
      [0xdc, 0x00, 0x03, 0x01, 0x01], // array of 3, 2 bytes
      [0x83, 0xa1, 0x61, 0x01, 0xa1], // map of 3, 5 bytes
    ]
  ) {
    assert.throws(() => dec.decode(new Uint8Array(bytes)), /Insufficient data/);
  }
});

Deno.test("FrameDecoder learns layouts only once told to (after the handshake), and each decoder has its own", () => {
  const a = new FrameDecoder();
  const b = new FrameDecoder();
  const frame: Message = { t: "x", a: 1, b: 2 };
  const bytes = framed(new MsgpackEncoder().encode(frame).slice());
  for (let i = 0; i < 3; i++) {
    a.push(bytes.slice());
    assert.deepEqual(a.next(), frame);
  }
  assert.equal(a.learnsShapes, false);
  a.learnShapes();
  assert.equal(a.learnsShapes, true);
  assert.equal(b.learnsShapes, false);
  for (let i = 0; i < 3; i++) {
    a.push(bytes.slice());
    assert.deepEqual(a.next(), frame);
  }
  // the layouts are bounded per decoder: 16 key counts × 4 layouts
  const cache = new ShapeCache();
  const dec = new MsgpackDecoder({ shapes: cache });
  for (let i = 0; i < 500; i++) dec.decode(referenceEncode({ [`k${i}`]: 1, [`j${i}`]: 2 }));
  assert.ok(cache.size <= 4, `${cache.size} layouts of two keys`);
});

Deno.test("layout readers that miss after some values finish key by key exactly as the reference decodes (fast-check)", () => {
  // few keys and counts, so learned layouts often match a prefix and then miss
  const key = fc.constantFrom("t", "a", "b", "c", "rid");
  const mapArb: fc.Arbitrary<unknown> = fc.letrec<{ map: unknown }>((tie) => ({
    map: fc.array(
      fc.tuple(key, fc.oneof({ depthSize: "small" }, fc.integer(), fc.string(), tie("map"))),
      { minLength: 1, maxLength: 4 },
    ).map((pairs) => pairs),
  })).map;
  /** Encodes a list of pairs as a map, duplicate keys included (as a hostile peer may). */
  const encodePairs = (pairs: unknown): Uint8Array => {
    const list = pairs as Array<[string, unknown]>;
    const parts: number[] = [0x80 | list.length];
    for (const [k, v] of list) {
      parts.push(...referenceEncode(k));
      parts.push(...(Array.isArray(v) ? encodePairs(v) : referenceEncode(v)));
    }
    return new Uint8Array(parts);
  };
  const dec = new MsgpackDecoder({ shapes: new ShapeCache() });
  fc.assert(
    fc.property(fc.array(mapArb, { minLength: 1, maxLength: 8 }), (maps) => {
      for (const pairs of maps) {
        const bytes = encodePairs(pairs);
        assert.deepEqual(dec.decode(bytes), referenceDecode(bytes));
        assert.ok(dec.elements <= 5 * bytes.length);
      }
    }),
    { numRuns: 1500, seed: 415 },
  );
});

import assert from "node:assert/strict";
import { encode as msgpackEncode } from "@msgpack/msgpack";
import {
  ByteBuffer,
  FrameDecoder,
  FrameEncoder,
  type Message,
  WireError,
} from "../mod/wire/mod.ts";

const encoder = new FrameEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function drain(decoder: FrameDecoder): Message[] {
  const out: Message[] = [];
  for (let m = decoder.next(); m !== undefined; m = decoder.next()) out.push(m);
  return out;
}

function rawFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

const sample: Message[] = [
  { t: "a" },
  { t: "hello", v: 1, role: "ring", name: "n1" },
  { t: "bytes", data: new Uint8Array([0, 1, 2, 255]), n: 2 ** 40, neg: -5, f: 1.5 },
  { t: "nested", list: [1, "two", { three: [3] }], s: "ünïcödé ✓" },
  { t: "big", body: "x".repeat(70_000) },
];

Deno.test("FrameDecoder decodes a multi-frame buffer split at every byte", () => {
  const whole = concat(sample.map((m) => encoder.encode(m)));
  for (
    let split = 0;
    split <= whole.length;
    split += split < 200 || split > whole.length - 200 ? 1 : 97
  ) {
    const decoder = new FrameDecoder();
    // Edge case: the split may fall inside a length header, inside a payload, or on a boundary.
    decoder.push(whole.slice(0, split));
    const got = drain(decoder);
    decoder.push(whole.slice(split));
    got.push(...drain(decoder));
    assert.deepEqual(got, sample, `split at ${split}`);
    assert.equal(decoder.buffered, 0);
  }
});

Deno.test("FrameDecoder decodes a buffer fed one byte at a time", () => {
  const whole = concat(sample.slice(0, 4).map((m) => encoder.encode(m)));
  const decoder = new FrameDecoder();
  const got: Message[] = [];
  for (let i = 0; i < whole.length; i++) {
    decoder.push(whole.slice(i, i + 1));
    got.push(...drain(decoder));
  }
  assert.deepEqual(got, sample.slice(0, 4));
});

Deno.test("FrameDecoder decodes 1,000 frames in one chunk", () => {
  const frames = Array.from({ length: 1000 }, (_, i) => ({ t: "m", i, pad: "p".repeat(i % 50) }));
  const decoder = new FrameDecoder();
  decoder.push(concat(frames.map((m) => encoder.encode(m))));
  const got = drain(decoder);
  assert.equal(got.length, 1000);
  assert.deepEqual(got, frames);
});

Deno.test("FrameDecoder refuses a 0xFFFFFFFF length header before allocating, fatally", () => {
  const decoder = new FrameDecoder({ maxFrame: 16 * 1024 * 1024 });
  decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  assert.throws(
    () => decoder.next(),
    (err: unknown) => err instanceof WireError && err.code === "frame_too_large" && err.fatal,
  );
  // Edge case: the decoder stays failed; it must not try to read on into the stream.
  assert.throws(() => decoder.next(), WireError);
  // Nothing close to 4 GiB was buffered: only the 7 bytes pushed.
  assert.ok(decoder.buffered < 16);
});

Deno.test("FrameDecoder gives typed, non-fatal errors for garbage MessagePack, non-maps and a missing t", () => {
  const cases: Array<[Uint8Array, string]> = [
    [new Uint8Array([0xc1]), "bad_msgpack"], // 0xc1 is never used in MessagePack
    [new Uint8Array([0x92, 0x01]), "bad_msgpack"], // array of 2 with one element: truncated
    [msgpackEncode([1, 2, 3]), "not_a_map"],
    [msgpackEncode("just a string"), "not_a_map"],
    [msgpackEncode({ x: 1 }), "missing_type"],
    [msgpackEncode({ t: 42 }), "missing_type"],
    [new Uint8Array(0), "bad_msgpack"],
  ];
  for (const [payload, code] of cases) {
    const decoder = new FrameDecoder();
    decoder.push(concat([rawFrame(payload), encoder.encode({ t: "after" })]));
    assert.throws(
      () => decoder.next(),
      (err: unknown) => err instanceof WireError && err.code === code && !err.fatal,
      code,
    );
    // Edge case: the stream goes on after a bad frame.
    assert.deepEqual(decoder.next(), { t: "after" });
  }
});

Deno.test("FrameDecoder fuzz: random bytes never throw anything but WireError (bounded)", () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let round = 0; round < 2000; round++) {
    const decoder = new FrameDecoder({ maxFrame: 4096 });
    const len = rand() % 300;
    const bytes = new Uint8Array(len);
    for (let i = 0; i < len; i++) bytes[i] = rand() & 0xff;
    // Half the rounds get a plausible small length header so payload decoding is exercised.
    if (round % 2 === 0 && len > 4) new DataView(bytes.buffer).setUint32(0, len - 4 - (rand() % 3));
    let pos = 0;
    for (let step = 0; step < 50 && pos < len; step++) {
      const take = 1 + (rand() % 64);
      decoder.push(bytes.slice(pos, pos + take));
      pos += take;
      for (let k = 0; k < 100; k++) {
        try {
          if (decoder.next() === undefined) break;
        } catch (err) {
          assert.ok(err instanceof WireError, `round ${round}: threw ${String(err)}`);
          if (err.fatal) break;
        }
      }
    }
  }
});

Deno.test("FrameEncoder refuses a frame over the limit with WireError", () => {
  const small = new FrameEncoder({ maxFrame: 100 });
  assert.throws(
    () => small.encode({ t: "x", body: "y".repeat(200) }),
    (e: unknown) => e instanceof WireError && e.code === "frame_too_large",
  );
});

Deno.test("ByteBuffer.take() hands out the bytes and starts over", () => {
  const buf = new ByteBuffer(8);
  encoder.encodeInto({ t: "one" }, buf);
  encoder.encodeInto({ t: "two", pad: "z".repeat(100) }, buf);
  const bytes = buf.take();
  assert.equal(buf.length, 0);
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  assert.deepEqual(drain(decoder).map((m) => m.t), ["one", "two"]);
});

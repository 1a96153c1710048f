/**
 * Wire benchmark: 100-byte frames over loopback between two processes.
 *
 * - one-way frames/s through FrameEncoder + FrameConnection (sender) and FrameConnection +
 *   FrameDecoder (receiver), with backpressure;
 * - the ceilings: the same frame bytes written with plain `Deno.Conn.write` in 64 KiB
 *   chunks, and with one `write()` per frame, to a sink that only parses length headers;
 * - echo round trips against a real `peerd --role echo` process: sequential latency
 *   p50/p99 and pipelined round trips/s;
 * - the codec alone, in this process: encode and decode rates of typical frames with
 *   peerd's MessagePack codec and with the reference codec (`@msgpack/msgpack`) side by
 *   side, so the reason for having our own codec is a figure anyone can re-run.
 *
 * Prints one JSON line per figure. `deno run -A bench/wire_bench.ts [--frames N]`
 *
 * @module
 */
import { Decoder as ReferenceDecoder, Encoder as ReferenceEncoder } from "@msgpack/msgpack";
import {
  FrameConnection,
  FrameEncoder,
  type Message,
  MsgpackDecoder,
  MsgpackEncoder,
  RpcClient,
  ShapeCache,
} from "../mod/wire/mod.ts";
import { LocalCluster } from "../mod/harness/mod.ts";

const args = Deno.args;
const argValue = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};

/** msgpack map {t:"m", d:bin(91)} is exactly 100 bytes. */
const PAYLOAD = { t: "m", d: new Uint8Array(91).fill(7) };

async function runSink(mode: string): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(String((listener.addr as Deno.NetAddr).port));
  for (;;) {
    const conn = await listener.accept();
    if (mode === "frames") {
      const fc = new FrameConnection(conn);
      // no handshake on this bench link: trust the peer as a server does after hello
      fc.learnShapes();
      let count = 0;
      for (;;) {
        const msg = fc.readBuffered() ?? await fc.read();
        if (msg === null) break;
        if (msg.t === "end") {
          fc.send({ t: "count", count });
          await fc.flush();
          count = 0;
          continue;
        }
        count++;
      }
      fc.close();
    } else {
      // header-only parser; a zero-length frame ends a run and gets the count (u32) back
      const buf = new Uint8Array(256 * 1024);
      let need = 4;
      let inHeader = true;
      let hdr = 0;
      let hdrBytes = 0;
      let count = 0;
      outer: for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        let i = 0;
        while (i < n) {
          if (inHeader) {
            hdr = (hdr << 8) | buf[i++];
            if (++hdrBytes === 4) {
              if (hdr === 0) {
                const out = new Uint8Array(4);
                new DataView(out.buffer).setUint32(0, count);
                await conn.write(out);
                count = 0;
                hdr = 0;
                hdrBytes = 0;
                continue;
              }
              need = hdr >>> 0;
              inHeader = false;
              hdr = 0;
              hdrBytes = 0;
            }
          } else {
            const take = Math.min(need, n - i);
            i += take;
            need -= take;
            if (need === 0) {
              count++;
              inHeader = true;
            }
          }
        }
        if (n < 0) break outer;
      }
      conn.close();
    }
  }
}

async function startSink(mode: string): Promise<{ port: number; child: Deno.ChildProcess }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", new URL(import.meta.url).pathname, "--sink", mode],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(new TextDecoder().decode(value).trim());
  return { port, child };
}

function line(
  figure: string,
  value: number,
  unit: string,
  extra: Record<string, unknown> = {},
): void {
  console.log(JSON.stringify({ bench: "wire", figure, value: Math.round(value), unit, ...extra }));
}

async function codecOneWay(port: number, frames: number): Promise<number> {
  const raw = await Deno.connect({ hostname: "127.0.0.1", port });
  raw.setNoDelay(true);
  const conn = new FrameConnection(raw);
  try {
    const t0 = performance.now();
    for (let i = 0; i < frames; i++) {
      if (!conn.send(PAYLOAD as Message)) await conn.drained();
    }
    conn.send({ t: "end" });
    const reply = await conn.read();
    const secs = (performance.now() - t0) / 1000;
    if (reply?.count !== frames) {
      throw new Error(`sink counted ${String(reply?.count)} of ${frames}`);
    }
    return frames / secs;
  } finally {
    conn.close();
  }
}

async function plainWrites(port: number, frames: number, perWrite: number): Promise<number> {
  const frame = new FrameEncoder().encode(PAYLOAD as Message);
  const chunk = new Uint8Array(frame.length * perWrite);
  for (let i = 0; i < perWrite; i++) chunk.set(frame, i * frame.length);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  try {
    const t0 = performance.now();
    let sent = 0;
    while (sent < frames) {
      const n = Math.min(perWrite, frames - sent);
      const bytes = n === perWrite ? chunk : chunk.subarray(0, n * frame.length);
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      sent += n;
    }
    await conn.write(new Uint8Array(4));
    const reply = new Uint8Array(4);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(reply.subarray(got));
      if (n === null) throw new Error("sink closed");
      got += n;
    }
    const secs = (performance.now() - t0) / 1000;
    const counted = new DataView(reply.buffer).getUint32(0);
    if (counted !== frames) throw new Error(`sink counted ${counted} of ${frames}`);
    return frames / secs;
  } finally {
    conn.close();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function echoFigures(): Promise<void> {
  await using cluster = await LocalCluster.start({ nodes: [{ name: "e1", role: "echo" }] });
  const client = await RpcClient.connect({ hostname: "127.0.0.1", port: cluster.node("e1").port });
  try {
    const data = new Uint8Array(91).fill(1);
    for (let i = 0; i < 500; i++) await client.request({ t: "echo", data });
    const samples: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const t0 = performance.now();
      await client.request({ t: "echo", data });
      samples.push((performance.now() - t0) * 1000);
    }
    samples.sort((a, b) => a - b);
    line("echo_rtt_p50", percentile(samples, 0.5), "us");
    line("echo_rtt_p99", percentile(samples, 0.99), "us");
    const total = 200_000;
    const window = 500;
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < total) {
        next++;
        await client.request({ t: "echo", data });
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    line("echo_pipelined", total / ((performance.now() - t0) / 1000), "round_trips/s", {
      in_flight: window,
    });
  } finally {
    await client.close();
  }
}

/** Typical frames: the 100-byte frame above, a publication, a hello, a batch of deliveries. */
const CODEC_FRAMES: Record<string, Message> = {
  frame_100B: PAYLOAD as Message,
  publish: {
    t: "publish",
    rid: 123456,
    topic: "orders.eu.created",
    user: "alice",
    payload: new Uint8Array(120).fill(3),
  },
  hello: { t: "hello", v: 1, role: "ring", name: "n1" },
  deliver_batch: {
    t: "deliver",
    messages: Array.from({ length: 50 }, (_, i) => ({
      seq: 1_000_000 + i,
      id: `d1:${1_000_000 + i}`,
      topic: "orders.eu.created",
      payload: new Uint8Array(64).fill(i),
    })),
  },
};

/** Rate of `fn` in calls/s over about `ms` milliseconds. */
function rate(fn: () => void, ms: number): number {
  let calls = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < ms) {
    for (let i = 0; i < 200; i++) fn();
    calls += 200;
    now = performance.now();
  }
  return calls / ((now - t0) / 1000);
}

/**
 * Rates of `ours` and `theirs`, measured in alternating 40 ms windows (15 of each after a
 * warm-up), so that both see the same machine load; medians, and the median of the ratios
 * of each pair of windows.
 */
function compare(ours: () => void, theirs: () => void): [number, number, number] {
  for (let i = 0; i < 20_000; i++) {
    ours();
    theirs();
  }
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < 15; round++) {
    const x = rate(ours, 40);
    const y = rate(theirs, 40);
    a.push(x);
    b.push(y);
    ratios.push(x / y);
  }
  return [median(a), median(b), median(ratios)];
}

function codecFigures(): void {
  const ours = new MsgpackEncoder();
  const oursDecoder = new MsgpackDecoder({ shapes: new ShapeCache() });
  const reference = new ReferenceEncoder({ ignoreUndefined: true });
  const referenceDecoder = new ReferenceDecoder();
  for (const [name, msg] of Object.entries(CODEC_FRAMES)) {
    const bytes = ours.encode(msg).slice();
    const [enc, encRef, encRatio] = compare(() => ours.encode(msg), () => reference.encode(msg));
    const [dec, decRef, decRatio] = compare(
      () => oursDecoder.decode(bytes),
      () => referenceDecoder.decode(bytes),
    );
    console.log(JSON.stringify({
      bench: "wire",
      figure: `codec_${name}`,
      bytes: bytes.length,
      encode_per_s: Math.round(enc),
      encode_reference_per_s: Math.round(encRef),
      encode_vs_reference: Number(encRatio.toFixed(2)),
      decode_per_s: Math.round(dec),
      decode_reference_per_s: Math.round(decRef),
      decode_vs_reference: Number(decRatio.toFixed(2)),
    }));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (args.includes("--sink")) {
  await runSink(argValue("--sink", "raw"));
} else {
  const frames = Number(argValue("--frames", "1000000"));
  const reps = Number(argValue("--reps", "3"));
  codecFigures();
  const framesSink = await startSink("frames");
  const rawSink = await startSink("raw");
  try {
    const codec: number[] = [];
    const batched: number[] = [];
    const single: number[] = [];
    // warm-up: let the JIT settle on both sides before measuring
    await codecOneWay(framesSink.port, 300_000);
    await plainWrites(rawSink.port, 300_000, 630);
    for (let r = 0; r < reps; r++) {
      codec.push(await codecOneWay(framesSink.port, frames));
      batched.push(await plainWrites(rawSink.port, frames, 630));
      single.push(await plainWrites(rawSink.port, Math.min(frames, 200_000), 1));
    }
    const c = median(codec);
    const b = median(batched);
    const s = median(single);
    line("oneway_codec_connection", c, "frames/s", {
      payload_bytes: 100,
      frames,
      reps,
      runs: codec.map(Math.round),
    });
    line("oneway_plain_write_64KiB", b, "frames/s", {
      payload_bytes: 100,
      frames,
      reps,
      runs: batched.map(Math.round),
    });
    line("oneway_plain_write_per_frame", s, "frames/s", {
      payload_bytes: 100,
      reps,
      runs: single.map(Math.round),
    });
    console.log(JSON.stringify({
      bench: "wire",
      figure: "codec_vs_ceiling",
      vs_plain_64KiB: Number((c / b).toFixed(3)),
      vs_plain_per_frame: Number((c / s).toFixed(3)),
      // each repetition's codec run against the plain run right after it
      vs_plain_64KiB_by_rep: codec.map((x, i) => Number((x / batched[i]).toFixed(3))),
      target: ">= 0.5 of the plain-write ceiling",
    }));
    await echoFigures();
  } finally {
    for (const sink of [framesSink, rawSink]) {
      sink.child.kill("SIGKILL");
      await sink.child.status;
      await sink.child.stdout.cancel().catch(() => {});
    }
  }
}

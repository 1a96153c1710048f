/**
 * MQTT on the MOM daemons with clients nobody here wrote: Debian's mosquitto_pub and
 * mosquitto_sub, mqtt.js (npm) and paho (python3-paho-mqtt), unmodified, across a broker
 * and two daemons, real processes on 127.0.0.1.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { freePort, LocalCluster, waitUntil } from "./harness/mod.ts";
import { MomClient } from "../mod/mom/mod.ts";
import {
  decodePacket,
  encodePacket,
  MQTT_311,
  MQTT_5,
  type Packet,
  PacketReader,
  PacketType,
  Reason,
} from "../mod/mom/mqtt/mod.ts";

const decoder = new TextDecoder();

function haveBinary(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const HAVE_MOSQUITTO_CLIENTS = haveBinary("/usr/bin/mosquitto_pub") &&
  haveBinary("/usr/bin/mosquitto_sub");

/** A broker and two daemons, each daemon with an MQTT port. */
async function mqttCluster(extra: { secret?: string } = {}) {
  const ports = [freePort(), freePort()];
  const cluster = await LocalCluster.start({
    nodes: [
      { name: "b1", role: "broker" },
      { name: "d1", role: "daemon", args: ["--mqtt", `127.0.0.1:${ports[0]}`] },
      { name: "d2", role: "daemon", args: ["--mqtt", `127.0.0.1:${ports[1]}`] },
    ],
    ...extra,
  });
  for (const d of ["d1", "d2"]) {
    await waitUntil(async () => (await cluster.node(d).ctl("status")).link === "up", {
      timeoutMs: 15_000,
      what: `${d} link up`,
    });
  }
  return { cluster, d1: ports[0], d2: ports[1] };
}

/** Waits until daemon `node` has made `n` more MOM subscriptions since `mark`. */
async function subscribed(cluster: LocalCluster, node: string, mark: number, n = 1) {
  await waitUntil(
    () => cluster.node(node).events().slice(mark).filter((e) => e.ev === "sub.added").length >= n,
    { timeoutMs: 10_000, what: `${n} subscriptions on ${node}` },
  );
}

/** Runs a mosquitto client to completion. */
async function mosquitto(cmd: string, args: string[], timeoutMs = 15_000) {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A started mosquitto_sub whose output is collected until it exits. */
function mosquittoSub(args: string[], timeoutMs = 20_000) {
  return mosquitto("mosquitto_sub", args, timeoutMs);
}

type Client = mqtt.MqttClient;

async function connect(port: number, options: mqtt.IClientOptions): Promise<Client> {
  return await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...options,
  });
}

/** Collects the messages a client receives. */
function collect(client: Client) {
  const got: Array<
    {
      topic: string;
      payload: string;
      qos: number;
      retain: boolean;
      dup: boolean;
      properties?: unknown;
    }
  > = [];
  client.on("message", (topic, payload, packet) => {
    got.push({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      properties: packet.properties,
    });
  });
  return got;
}

Deno.test("MQTT clients across two daemons: mosquitto_pub/sub and mqtt.js at QoS 0, 1, 2, wildcards, native users both ways", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  try {
    if (!HAVE_MOSQUITTO_CLIENTS) {
      console.log("skipped: mosquitto_pub/mosquitto_sub missing (Debian mosquitto-clients)");
    } else {
      // mosquitto_sub on d2, mosquitto_pub on d1
      const mark = cluster.node("d2").mark();
      const sub = mosquittoSub([
        "-h",
        "127.0.0.1",
        "-p",
        String(d2),
        "-i",
        "msub",
        "-q",
        "2",
        "-v",
        "-C",
        "4",
        "-W",
        "15",
        "-t",
        "Museum/+/Door0",
        "-t",
        "Museum/Hall/#",
      ]);
      await subscribed(cluster, "d2", mark, 2);
      const sends: Array<[string, string, string]> = [
        ["Museum/Doors/Door0", "open", "0"],
        ["Museum/Doors/Door1", "not matched", "1"],
        ["Museum/Hall", "hall itself", "1"],
        ["Museum/Hall/Light/3", "on", "2"],
        ["Museum/Gate/Door0", "gate", "2"],
      ];
      for (const [topic, msg, qos] of sends) {
        const r = await mosquitto("mosquitto_pub", [
          "-h",
          "127.0.0.1",
          "-p",
          String(d1),
          "-t",
          topic,
          "-m",
          msg,
          "-q",
          qos,
        ]);
        assert.equal(r.code, 0, r.stderr);
      }
      const out = await sub;
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(out.stdout.trim().split("\n").sort(), [
        "Museum/Doors/Door0 open",
        "Museum/Gate/Door0 gate",
        "Museum/Hall hall itself",
        "Museum/Hall/Light/3 on",
      ]);
    }

    // mqtt.js: 5.0 subscriber on d2 at QoS 2, 3.1.1 publisher on d1: delivered at min QoS
    const sub5 = await connect(d2, { protocolVersion: 5, clientId: "js-sub", clean: true });
    clients.push(sub5);
    const got = collect(sub5);
    const granted = await sub5.subscribeAsync("a/+", { qos: 2 });
    assert.equal(granted[0].qos, 2);
    const sub1 = await connect(d2, { protocolVersion: 4, clientId: "js-sub1", clean: true });
    clients.push(sub1);
    const got1 = collect(sub1);
    assert.equal((await sub1.subscribeAsync("a/#", { qos: 1 }))[0].qos, 1);
    const pub = await connect(d1, { protocolVersion: 4, clientId: "js-pub", clean: true });
    clients.push(pub);
    for (const qos of [0, 1, 2] as const) await pub.publishAsync("a/b", `q${qos}`, { qos });
    await waitUntil(() => got.length >= 3 && got1.length >= 3, { what: "mqtt.js deliveries" });
    assert.deepEqual(got.map((m) => [m.payload, m.qos]), [["q0", 0], ["q1", 1], ["q2", 2]]);
    assert.deepEqual(got1.map((m) => [m.payload, m.qos]), [["q0", 0], ["q1", 1], ["q2", 1]]);

    // a native MOM user on d1 gets MQTT publications; a native publication reaches MQTT
    await using native = await MomClient.connect({
      hostname: "127.0.0.1",
      port: cluster.node("d1").port,
    });
    const user = await native.create();
    await user.subscribe("a/#");
    await pub.publishAsync("a/n", "from mqtt", { qos: 1 });
    const m = await user.receive({ timeout: 10_000 });
    assert.equal(m?.topic, "a/n");
    assert.equal(decoder.decode(m!.payload), "from mqtt");
    await user.publish("a/x", "from native");
    await waitUntil(() => got.some((g) => g.payload === "from native"), { what: "native → MQTT" });
    // native publications are exactly once: delivered at the subscription's QoS
    assert.equal(got.find((g) => g.payload === "from native")!.qos, 2);
    await user.destroy();

    // v5 no-local: a client does not get its own publications on a no-local subscription
    const self = await connect(d1, { protocolVersion: 5, clientId: "js-self", clean: true });
    clients.push(self);
    const mine = collect(self);
    await self.subscribeAsync("nl/own", { qos: 1, nl: true });
    await self.subscribeAsync("nl/all", { qos: 1 });
    await self.publishAsync("nl/own", "hidden", { qos: 1 });
    await self.publishAsync("nl/all", "seen", { qos: 1 });
    await waitUntil(() => mine.length >= 1, { what: "own publication" });
    await self.publishAsync("nl/all", "seen again", { qos: 1 });
    await waitUntil(() => mine.length >= 2, { what: "second own publication" });
    assert.deepEqual(mine.map((g) => g.payload), ["seen", "seen again"]);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

Deno.test("MQTT QoS 0 stays on its daemon while no other daemon subscribes, and reaches a subscriber on another daemon from its SUBACK on", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  const status = () => cluster.node("d1").ctl("status");
  try {
    const local = await connect(d1, { clientId: "lonely-local", clean: true });
    clients.push(local);
    const localGot = collect(local);
    await local.subscribeAsync("lonely/#", { qos: 0 });
    const pub = await connect(d1, { clientId: "lonely-pub", clean: true });
    clients.push(pub);
    assert.equal((await status()).others_subscribe, false, "only d1 subscribes");
    for (let i = 0; i < 20; i++) pub.publish("lonely/a", `local-${i}`, { qos: 0 });
    await waitUntil(() => localGot.length >= 20, { timeoutMs: 10_000, what: "20 local" });
    const kept = Number((await status()).transient_local);
    assert.ok(kept >= 20, `QoS 0 kept on d1 (${kept})`);

    // a subscriber on d2: from its SUBACK on, d1 sends its QoS 0 to the broker (no pause)
    const remote = await connect(d2, { clientId: "lonely-remote", clean: true });
    clients.push(remote);
    const remoteGot = collect(remote);
    await remote.subscribeAsync("lonely/#", { qos: 0 });
    for (let i = 0; i < 20; i++) pub.publish("lonely/a", `both-${i}`, { qos: 0 });
    await waitUntil(() => remoteGot.length >= 20, { timeoutMs: 10_000, what: "20 on d2" });
    assert.deepEqual(
      remoteGot.map((m) => m.payload),
      Array.from({ length: 20 }, (_, i) => `both-${i}`),
      "every publication after the SUBACK, in order",
    );
    assert.equal((await status()).others_subscribe, true);
    assert.equal(Number((await status()).transient_local), kept, "none kept local meanwhile");
    await waitUntil(() => localGot.length >= 40, { timeoutMs: 10_000, what: "40 local" });

    // the remote subscription ends: d1 keeps its QoS 0 local again
    await remote.unsubscribeAsync("lonely/#");
    await waitUntil(async () => (await status()).others_subscribe === false, {
      timeoutMs: 10_000,
      what: "d1 told nobody else subscribes",
    });
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

Deno.test("MQTT: a subscription that makes another daemon send its QoS 0 to the broker is confirmed only once that daemon acknowledged (or after the 2 s bound)", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  const pid = cluster.node("d1").pid!;
  let stopped = false;
  try {
    const pub = await connect(d1, { clientId: "paused-pub", clean: true });
    clients.push(pub);
    assert.equal((await cluster.node("d1").ctl("status")).others_subscribe, false);
    const remote = await connect(d2, { clientId: "paused-remote", clean: true });
    clients.push(remote);
    const got = collect(remote);
    // d1 stays attached but cannot answer: the broker holds the SUBACK for its bound
    Deno.kill(pid, "SIGSTOP");
    stopped = true;
    const t0 = performance.now();
    await remote.subscribeAsync("paused/#", { qos: 0 });
    const waited = performance.now() - t0;
    assert.ok(waited >= 1_500, `the SUBACK waited for d1 (${Math.round(waited)} ms)`);
    Deno.kill(pid, "SIGCONT");
    stopped = false;
    // d1 reads the notice when it runs again; from then on its QoS 0 reaches d2
    await waitUntil(async () => (await cluster.node("d1").ctl("status")).others_subscribe, {
      timeoutMs: 10_000,
      what: "d1 told another daemon subscribes",
    });
    pub.publish("paused/a", "after", { qos: 0 });
    await waitUntil(() => got.length >= 1, { timeoutMs: 10_000, what: "d2 receives" });
    assert.equal(got[0].payload, "after");
  } finally {
    if (stopped) Deno.kill(pid, "SIGCONT");
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

Deno.test("MQTT persistent sessions: queued QoS 1/2 messages survive a disconnect; redelivery after a reconnect; QoS 2 exactly once", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  try {
    // a persistent subscriber subscribes, then goes away
    const first = await connect(d2, { protocolVersion: 4, clientId: "keeper", clean: false });
    await first.subscribeAsync("p/#", { qos: 2 });
    await first.endAsync();
    const pub = await connect(d1, { protocolVersion: 5, clientId: "p-pub", clean: true });
    clients.push(pub);
    for (let i = 0; i < 50; i++) {
      await pub.publishAsync(`p/${i % 2 ? "one" : "two"}`, `m${i}`, {
        qos: (1 + (i % 2)) as 1 | 2,
      });
    }
    // it comes back: session present, everything queued delivered once, in order
    // the queued PUBLISHes may come in the same read as the CONNACK: collect from the start
    const back = mqtt.connect(`mqtt://127.0.0.1:${d2}`, {
      protocolVersion: 4,
      clientId: "keeper",
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
    });
    clients.push(back);
    const got = collect(back);
    await new Promise<void>((resolve, reject) => {
      back.once("connect", () => resolve());
      back.once("error", reject);
    });
    await waitUntil(() => got.length >= 50, { what: "queued messages" });
    // in order per QoS (mqtt.js hands a QoS 2 message to the application at PUBREL)
    for (const qos of [1, 2]) {
      assert.deepEqual(
        got.filter((g) => g.qos === qos).map((g) => g.payload),
        Array.from({ length: 50 }, (_, i) => i).filter((i) => 1 + (i % 2) === qos).map((i) =>
          `m${i}`
        ),
      );
    }
    assert.equal(got.length, 50);
    const status = await cluster.node("d2").ctl("status");
    const mq = status.mqtt as { sessions: number };
    assert.equal(mq.sessions, 1);

    // a clean session ends with its connection: the MOM user is destroyed
    const mark = cluster.node("d1").mark();
    const temp = await connect(d1, { protocolVersion: 5, clientId: "temp", clean: true });
    await temp.endAsync();
    await cluster.node("d1").waitForEvent("user.destroyed", { from: mark });

    // v5 session expiry: kept for its interval after the disconnect, then destroyed
    const expiring = await connect(d1, {
      protocolVersion: 5,
      clientId: "expiring",
      clean: false,
      properties: { sessionExpiryInterval: 1 },
    });
    await expiring.subscribeAsync("x/#", { qos: 1 });
    const disconnectedAt = performance.now();
    await expiring.endAsync();
    const expired = await cluster.node("d1").waitForEvent(
      (e) => e.ev === "mqtt.expired" && e.client === "expiring",
      { from: mark },
    );
    assert.ok(performance.now() - disconnectedAt >= 900, "expired before its interval");
    assert.ok(expired.user);

    // a second connection with the same client id takes the session over (v5: 0x8E)
    const one = await connect(d1, { protocolVersion: 5, clientId: "twin", clean: true });
    const reason = new Promise<number | undefined>((resolve) =>
      one.on("disconnect", (packet) => resolve(packet.reasonCode))
    );
    const two = await connect(d1, { protocolVersion: 5, clientId: "twin", clean: true });
    clients.push(one, two);
    assert.equal(await reason, Reason.SessionTakenOver);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

Deno.test("MQTT retained messages are kept by the broker (any daemon's subscriber gets them; an empty payload clears); wills; keep alive", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  try {
    const pub = await connect(d1, { protocolVersion: 5, clientId: "r-pub", clean: true });
    clients.push(pub);
    await pub.publishAsync("r/a", "first", { qos: 1, retain: true });
    await pub.publishAsync("r/a", "last of a", { qos: 1, retain: true });
    await pub.publishAsync("r/b", "b", { qos: 1, retain: true });
    await pub.publishAsync("r/b", "", { qos: 1, retain: true }); // clears r/b
    await pub.publishAsync("r/c", "c", { qos: 0, retain: true });
    // the broker has routed them all once this native publication (after them) arrives
    await using native = await MomClient.connect({
      hostname: "127.0.0.1",
      port: cluster.node("d2").port,
    });
    const watcher = await native.create();
    await watcher.subscribe("r/marker");
    await pub.publishAsync("r/marker", "after", { qos: 1 });
    assert.equal((await watcher.receive({ timeout: 10_000 }))?.topic, "r/marker");
    await watcher.destroy();

    const sub = await connect(d2, { protocolVersion: 5, clientId: "r-sub", clean: true });
    clients.push(sub);
    const got = collect(sub);
    await sub.subscribeAsync("r/+", { qos: 1 });
    await waitUntil(() => got.length >= 2, { what: "retained messages" });
    assert.deepEqual(
      got.map((g) => [g.topic, g.payload, g.retain, g.qos]).sort(),
      [["r/a", "last of a", true, 1], ["r/c", "c", true, 0]],
    );
    // a live publication with retain reaches current subscribers without the flag
    await pub.publishAsync("r/a", "live", { qos: 1, retain: true });
    await waitUntil(() => got.length >= 3, { what: "live publication" });
    assert.deepEqual([got[2].payload, got[2].retain], ["live", false]);

    // a will: sent when the connection ends without DISCONNECT, not after a DISCONNECT
    const wsub = await connect(d2, { protocolVersion: 4, clientId: "w-sub", clean: true });
    clients.push(wsub);
    const wills = collect(wsub);
    await wsub.subscribeAsync("w/#", { qos: 1 });
    const polite = await connect(d1, {
      protocolVersion: 4,
      clientId: "polite",
      will: {
        topic: "w/polite",
        payload: new TextEncoder().encode("gone") as never,
        qos: 1,
        retain: false,
      },
    });
    await polite.endAsync();
    const rude = await connect(d1, {
      protocolVersion: 5,
      clientId: "rude",
      will: {
        topic: "w/rude",
        payload: new TextEncoder().encode("lost") as never,
        qos: 1,
        retain: false,
      },
    });
    rude.stream.destroy(); // the connection breaks
    await waitUntil(() => wills.length >= 1, { what: "the will" });
    // a keep alive of 1 s with nothing sent: dropped after 1.5 s, will published
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: d1 });
    try {
      const will = new TextEncoder().encode("w/silent");
      const body = [
        0,
        4,
        ...new TextEncoder().encode("MQTT"),
        4,
        0x0e,
        0,
        1, // will QoS 1, clean, keep alive 1
        0,
        6,
        ...new TextEncoder().encode("silent"),
        0,
        will.length,
        ...will,
        0,
        3,
        ...new TextEncoder().encode("zzz"),
      ];
      await silent.write(Uint8Array.from([0x10, body.length, ...body]));
      const buf = new Uint8Array(64);
      const n = await silent.read(buf); // CONNACK
      assert.deepEqual([...buf.subarray(0, n!)], [0x20, 2, 0, 0]);
      const t0 = performance.now();
      assert.equal(await silent.read(buf), null); // closed by the server
      assert.ok(performance.now() - t0 >= 1_000, "dropped before 1.5 × keep alive");
    } finally {
      silent.close();
    }
    await waitUntil(() => wills.length >= 2, { what: "the silent client's will" });
    assert.deepEqual(wills.map((w) => [w.topic, w.payload]).sort(), [
      ["w/rude", "lost"],
      ["w/silent", "zzz"],
    ]);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

Deno.test("MQTT across kill -9 of the broker, the subscriber's daemon and the publisher's daemon: every acknowledged QoS 1 publication received, QoS 2 exactly once", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  try {
    const durable = { reconnectPeriod: 100, clean: false, protocolVersion: 4 as const };
    const sub = await connect(d2, { ...durable, clientId: "k-sub" });
    clients.push(sub);
    const got = collect(sub);
    await sub.subscribeAsync("k/#", { qos: 2 });
    const p1 = await connect(d1, { ...durable, clientId: "k-pub1" });
    const p2 = await connect(d1, { ...durable, clientId: "k-pub2" });
    clients.push(p1, p2);
    const N = 300;
    const acked = { 1: new Set<number>(), 2: new Set<number>() };
    const inflight = new Set<Promise<void>>();
    const kills: Record<number, () => Promise<void>> = {
      60: async () => {
        await cluster.node("b1").kill("SIGKILL");
        await cluster.node("b1").start();
      },
      140: async () => {
        await cluster.node("d2").kill("SIGKILL");
        await cluster.node("d2").start();
      },
      220: async () => {
        await cluster.node("d1").kill("SIGKILL");
        await cluster.node("d1").start();
      },
    };
    for (let i = 0; i < N; i++) {
      if (kills[i]) await kills[i]();
      for (const [client, qos] of [[p1, 1], [p2, 2]] as const) {
        const p: Promise<void> = client.publishAsync(`k/q${qos}`, `${i}`, { qos }).then(
          () => void acked[qos].add(i),
        ).finally(() => inflight.delete(p));
        inflight.add(p);
      }
      while (inflight.size >= 20) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    assert.equal(acked[1].size, N);
    assert.equal(acked[2].size, N);
    const count = (qos: number) => {
      const c = new Map<number, number>();
      for (const g of got) {
        if (g.topic === `k/q${qos}`) {
          c.set(Number(g.payload), (c.get(Number(g.payload)) ?? 0) + 1);
        }
      }
      return c;
    };
    await waitUntil(() => count(1).size >= N && count(2).size >= N, {
      timeoutMs: 30_000,
      what: "every acknowledged publication at the subscriber",
    });
    for (let i = 0; i < N; i++) assert.ok((count(1).get(i) ?? 0) >= 1, `QoS 1 #${i} lost`);
    const twice = [...count(2)].filter(([, n]) => n !== 1);
    assert.deepEqual(twice, [], "QoS 2 delivered other than exactly once");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

/** A raw MQTT connection: write bytes, read what the server sends until it closes. */
async function raw(
  port: number | { port: number; level: number },
  ...chunks: Uint8Array[]
): Promise<Packet[] | "closed-silently"> {
  const level = typeof port === "number" ? MQTT_5 : port.level;
  if (typeof port !== "number") port = port.port;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (const c of chunks) await conn.write(c);
    const reader = new PacketReader();
    const got: Packet[] = [];
    const buf = new Uint8Array(65536);
    for (let i = 0; i < 1000; i++) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (const r of reader.push(buf.subarray(0, n))) got.push(decodePacket(r, level));
    }
    return got.length === 0 ? "closed-silently" : got;
  } finally {
    conn.close();
  }
}

const connect5 = (clientId: string) =>
  encodePacket({
    type: PacketType.Connect,
    protocolName: "MQTT",
    level: 5,
    clean: true,
    keepAlive: 0,
    clientId,
    properties: {},
  }, MQTT_5);

function codes(packets: Packet[] | "closed-silently", what = ""): Array<[number, number?]> {
  assert.notEqual(packets, "closed-silently", what);
  return (packets as Packet[]).map((p) =>
    "code" in p
      ? [p.type, p.code]
      : "codes" in p
      ? [p.type, ...p.codes] as [number, number]
      : [p.type]
  );
}

Deno.test("MQTT bad input: each packet the specification forbids is closed or refused as it says, and nothing acknowledged is lost", async () => {
  const { cluster, d1, d2 } = await mqttCluster();
  const clients: Client[] = [];
  try {
    const sub = await connect(d2, { protocolVersion: 5, clientId: "bad-sub", clean: true });
    clients.push(sub);
    const got = collect(sub);
    await sub.subscribeAsync("ok/#", { qos: 1 });
    const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((h) => parseInt(h, 16)));
    const text = (s: string) => new TextEncoder().encode(s);
    // a packet before CONNECT: closed, nothing sent
    assert.equal(await raw(d1, hex("c0 00")), "closed-silently");
    // MQTT 3.1 ("MQIsdp", level 3): CONNACK return code 1
    assert.deepEqual(
      await raw(
        { port: d1, level: MQTT_311 },
        Uint8Array.from([0x10, 14, 0, 6, ...text("MQIsdp"), 3, 2, 0, 60, 0, 0]),
      ),
      [{ type: PacketType.Connack, sessionPresent: false, code: 1, properties: {} }],
    );
    // "MQTT" at level 6: CONNACK 0x84 (unsupported protocol version)
    assert.deepEqual(
      codes(await raw(d1, Uint8Array.from([0x10, 12, 0, 4, ...text("MQTT"), 6, 2, 0, 60, 0, 0]))),
      [[PacketType.Connack, Reason.UnsupportedProtocolVersion]],
    );
    // a wrong protocol name at level 4: closed without a CONNACK
    assert.equal(
      await raw(d1, Uint8Array.from([0x10, 12, 0, 4, ...text("MQTX"), 4, 2, 0, 60, 0, 0])),
      "closed-silently",
    );
    // a malformed CONNECT (reserved flag set): closed
    assert.equal(
      await raw(d1, Uint8Array.from([0x10, 12, 0, 4, ...text("MQTT"), 4, 3, 0, 60, 0, 0])),
      "closed-silently",
    );
    const ok = [PacketType.Connack, 0] as [number, number];
    // after CONNECT: a second CONNECT, a five-byte remaining length, a packet over the maximum,
    // invalid UTF-8, a wildcard topic: DISCONNECT with the reason, then closed
    const disconnects: Array<[string, Uint8Array, number]> = [
      ["second CONNECT", connect5("x2"), Reason.ProtocolError],
      ["five-byte length", hex("30 ff ff ff ff 01"), Reason.MalformedPacket],
      ["over the maximum", hex("30 80 80 80 01"), Reason.PacketTooLarge],
      ["invalid UTF-8", hex("30 05 00 02 c3 28 00"), Reason.MalformedPacket],
      ["wildcard topic", hex("30 06 00 03 61 2f 2b 00"), Reason.TopicNameInvalid],
      ["reserved type", hex("f0 00"), Reason.ProtocolError],
    ];
    for (const [what, bytes, code] of disconnects) {
      assert.deepEqual(
        codes(await raw(d1, connect5(`bad-${code}`), bytes), what),
        [ok, [PacketType.Disconnect, code]],
        what,
      );
    }
    // misplaced wildcards in filters: refused in SUBACK (0x8F), the connection stays
    const subscribe = encodePacket({
      type: PacketType.Subscribe,
      packetId: 1,
      properties: {},
      subscriptions: ["a/#/b", "a+/b", "ok/+"].map((filter) => ({
        filter,
        qos: 1 as const,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0 as const,
      })),
    }, MQTT_5);
    const disconnect = encodePacket(
      { type: PacketType.Disconnect, code: 0, properties: {} },
      MQTT_5,
    );
    assert.deepEqual(codes(await raw(d1, connect5("subs"), subscribe, disconnect)), [
      ok,
      [PacketType.Suback, Reason.TopicFilterInvalid, Reason.TopicFilterInvalid, 1],
    ]);
    // a QoS 1 publication acknowledged just before a bad packet is delivered all the same
    const publish = encodePacket({
      type: PacketType.Publish,
      dup: false,
      qos: 1,
      retain: false,
      topic: "ok/kept",
      packetId: 7,
      properties: {},
      payload: text("acknowledged"),
    }, MQTT_5);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: d1 });
    try {
      await conn.write(connect5("ack-then-garbage"));
      await conn.write(publish);
      const reader = new PacketReader();
      const seen: Packet[] = [];
      const buf = new Uint8Array(4096);
      while (seen.length < 2) {
        const n = await conn.read(buf);
        assert.notEqual(n, null);
        for (const r of reader.push(buf.subarray(0, n!))) seen.push(decodePacket(r, MQTT_5));
      }
      assert.deepEqual(codes(seen), [ok, [PacketType.Puback, 0]]);
      await conn.write(hex("30 ff ff ff ff 7f"));
    } finally {
      conn.close();
    }
    await waitUntil(() => got.some((g) => g.payload === "acknowledged"), { what: "kept message" });
    // the daemons are undisturbed: a normal client still publishes and subscribes
    const pub = await connect(d1, { protocolVersion: 4, clientId: "after", clean: true });
    clients.push(pub);
    await pub.publishAsync("ok/after", "still works", { qos: 1 });
    await waitUntil(() => got.some((g) => g.payload === "still works"), { what: "after" });
    assert.equal((await cluster.node("d1").ctl("status")).link, "up");
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cluster.stop();
  }
});

Deno.test("MQTT 5 properties with paho (python3-paho-mqtt): CONNACK limits, subscription identifiers, shared subscriptions refused, publication properties forwarded across daemons", async () => {
  if (!(await havePaho())) {
    console.log("skipped: /usr/bin/python3 with paho missing (Debian python3-paho-mqtt)");
    return;
  }
  const { cluster, d1, d2 } = await mqttCluster();
  try {
    const script = new URL("./clients/paho_v5.py", import.meta.url).pathname;
    const run = await mosquitto("/usr/bin/python3", [script, String(d2), String(d1)], 30_000);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.stdout.trim().split("\n").pop()!);
    assert.equal(out.connack.rc, 0);
    assert.equal(out.connack.properties.ReceiveMaximum, 1024);
    assert.equal(out.connack.properties.SharedSubscriptionAvailable, 0);
    assert.equal(out.connack.properties.RetainAvailable, 1);
    assert.deepEqual(out.suback, [1, Reason.SharedSubscriptionsNotSupported]);
    const m = out.message;
    assert.equal(m.topic, "p5/door");
    assert.equal(m.payload, '{"open":true}');
    assert.equal(m.qos, 1);
    assert.equal(m.properties.ContentType, "application/json");
    assert.equal(m.properties.ResponseTopic, "p5/reply");
    assert.equal(m.properties.PayloadFormatIndicator, 1);
    // the remaining interval: 120 s less the (whole, rounded up) seconds it waited in peerd
    assert.ok(
      m.properties.MessageExpiryInterval <= 120 && m.properties.MessageExpiryInterval >= 110,
      `remaining expiry ${m.properties.MessageExpiryInterval}`,
    );
    assert.deepEqual(m.properties.UserProperty, [["museum", "hall"], ["door", "0"]]);
    assert.deepEqual(m.properties.SubscriptionIdentifier, [42]);
  } finally {
    await cluster.stop();
  }
});

Deno.test("MQTT 5 message expiry with paho: a queued message whose interval passed is not delivered; the others carry the remaining interval", async () => {
  if (!(await havePaho())) {
    console.log("skipped: /usr/bin/python3 with paho missing (Debian python3-paho-mqtt)");
    return;
  }
  const { cluster, d1, d2 } = await mqttCluster();
  try {
    const script = new URL("./clients/paho_expiry.py", import.meta.url).pathname;
    const run = await mosquitto("/usr/bin/python3", [script, String(d2), String(d1)], 40_000);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.stdout.trim().split("\n").pop()!);
    assert.deepEqual(out.present, [false, true], "the session was resumed");
    const got = out.received as Array<{ payload: string; expiry: number | null }>;
    assert.deepEqual(got.map((g) => g.payload), ["long", "none"], "the expired one is gone");
    const waited = Math.ceil(out.back_after_s as number);
    assert.ok(
      got[0].expiry! <= 100 - Math.floor(out.back_after_s) && got[0].expiry! >= 100 - waited - 10,
      `remaining expiry ${got[0].expiry} after ${out.back_after_s} s`,
    );
    assert.equal(got[1].expiry, null, "no expiry: none sent");
    const status = await cluster.node("d2").ctl("status");
    assert.ok(status.mqtt, "the daemon reports its MQTT side");
  } finally {
    await cluster.stop();
  }
});

/** Whether /usr/bin/python3 has paho (Debian python3-paho-mqtt). */
async function havePaho(): Promise<boolean> {
  try {
    const check = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import paho.mqtt.client"],
      stdout: "null",
      stderr: "null",
    }).output();
    return check.code === 0;
  } catch {
    return false;
  }
}

Deno.test("MQTT authentication: the cluster secret as password, or the peers file's mqtt_users; refusals carry the right codes", async () => {
  if (!HAVE_MOSQUITTO_CLIENTS) {
    console.log("skipped: mosquitto_pub missing (Debian mosquitto-clients)");
    return;
  }
  const { cluster, d1 } = await mqttCluster({ secret: "s3cret" });
  try {
    const pub = (args: string[]) =>
      mosquitto("mosquitto_pub", [
        "-h",
        "127.0.0.1",
        "-p",
        String(d1),
        "-t",
        "auth/t",
        "-m",
        "x",
        "-q",
        "1",
        ...args,
      ]);
    // 3.1.1: return code 4 (bad user name or password); mosquitto_pub exits non-zero
    const refused = await pub(["-u", "anyone", "-P", "wrong"]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /bad user name or password|not authori[sz]ed/i);
    assert.equal((await pub(["-u", "anyone", "-P", "s3cret"])).code, 0);
    // 5.0 through mqtt.js: CONNACK 0x86
    await assert.rejects(
      connect(d1, { protocolVersion: 5, clientId: "a5", username: "x", password: "nope" }),
      (err: Error & { code?: number }) => err.code === Reason.BadUserNameOrPassword,
    );
    // users from the peers file replace the secret
    const peers = JSON.parse(Deno.readTextFileSync(cluster.peersPath));
    peers.mqtt_users = { alice: "wonderland" };
    Deno.writeTextFileSync(cluster.peersPath, JSON.stringify(peers));
    await cluster.node("d1").stop();
    await cluster.node("d1").start();
    // a new session needs a MOM user, and a new user the broker: wait for the link
    await waitUntil(async () => (await cluster.node("d1").ctl("status")).link === "up", {
      timeoutMs: 15_000,
      what: "d1 link up again",
    });
    assert.notEqual((await pub(["-u", "anyone", "-P", "s3cret"])).code, 0);
    assert.equal((await pub(["-u", "alice", "-P", "wonderland"])).code, 0);
  } finally {
    await cluster.stop();
  }
});

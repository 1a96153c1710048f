/**
 * One suite, run against both transports of the multicast core: the in-memory network
 * (`SimGroup`, virtual time) and TCP (`FrameServer`s and `multicastLinks` in this process, real
 * time). Each fixture runs the daemon's own `MulticastMember`.
 */
import assert from "node:assert/strict";
import {
  type CheckedEvent,
  checkMulticastEvents,
  MEMBER_FRAME_TYPES,
  MemoryHistory,
  multicastLinks,
  MulticastMember,
  SimGroup,
} from "../mod/multicast/mod.ts";
import { FrameServer, type Message, type PeerSession } from "../mod/wire/mod.ts";
import { pause } from "./harness/mod.ts";

const TYPES = MEMBER_FRAME_TYPES;

/** A group of three on one transport. */
interface Fixture {
  names: string[];
  member(name: string): MulticastMember;
  events: CheckedEvent[];
  histories(): Map<string, string[]>;
  runUntil(pred: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  send(name: string, body: string): void;
  /** Crashes `name`: it neither sends nor receives any more. */
  crash(name: string): Promise<void>;
  close(): Promise<void>;
}

function memoryFixture(): Fixture {
  const g = new SimGroup({ n: 3, seed: 21 });
  return {
    names: g.names,
    member: (n) => g.members.get(n)!,
    events: g.events,
    histories: () => g.historyIds(),
    runUntil(pred, what, timeoutMs = 20_000) {
      g.runUntil(pred, what, timeoutMs);
      return Promise.resolve();
    },
    send(name, body) {
      g.members.get(name)!.send(body, g.now);
    },
    crash(name) {
      g.crash(name);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

function tcpFixture(): Fixture {
  const names = ["m1", "m2", "m3"];
  const events: CheckedEvent[] = [];
  const members = new Map<string, MulticastMember>();
  const histories = new Map(names.map((n) => [n, new MemoryHistory()]));
  const servers = new Map<string, FrameServer>();
  const links = new Map<string, ReturnType<typeof multicastLinks>>();
  const crashed = new Set<string>();
  const scheduled = new Set<string>();
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  for (const name of names) {
    const receive = (msg: Message, session: PeerSession) => {
      if (crashed.has(name)) return;
      members.get(name)?.receive(session.peer.name, msg, performance.now());
    };
    servers.set(
      name,
      new FrameServer({
        listen: { hostname: "127.0.0.1", port: 0 },
        identity: { role: "multicast", name },
        handlers: Object.fromEntries(TYPES.map((t) => [t, receive])),
      }),
    );
  }
  for (const name of names) {
    const peers = names.filter((n) => n !== name).map((n) => ({
      name: n,
      hostname: "127.0.0.1",
      port: servers.get(n)!.port,
      options: {},
    }));
    const transport = multicastLinks(peers, {
      self: name,
      role: "multicast",
      maxFrame: 16 * 1024 * 1024,
      onConnect: (peer) => members.get(name)?.linkUp(peer),
    });
    links.set(name, transport);
    members.set(
      name,
      new MulticastMember({
        name,
        members: names,
        transport,
        history: histories.get(name)!,
        now: performance.now(),
        failTimeoutMs: 600,
        flushTimeoutMs: 1200,
        bootstrapMs: 1000,
        hooks: {
          events: {
            emit: (ev, fields = {}) => events.push({ node: name, ev, ...fields }),
            debug: () => {},
          },
          log: quiet,
          schedule: () => {
            if (scheduled.has(name)) return;
            scheduled.add(name);
            queueMicrotask(() => {
              scheduled.delete(name);
              if (!crashed.has(name)) members.get(name)!.flush();
            });
          },
        },
      }),
    );
  }
  for (const m of members.values()) m.start(performance.now());
  for (const l of links.values()) l.start();
  const timer = setInterval(() => {
    for (const [n, m] of members) if (!crashed.has(n)) m.tick(performance.now());
  }, 50);
  return {
    names,
    member: (n) => members.get(n)!,
    events,
    histories: () => new Map([...histories].map(([n, h]) => [n, h.ids()])),
    async runUntil(pred, what, timeoutMs = 20_000) {
      const end = performance.now() + timeoutMs;
      while (!pred()) {
        if (performance.now() >= end) throw new Error(`tcp: no ${what} within ${timeoutMs} ms`);
        await pause(10);
      }
    },
    send(name, body) {
      members.get(name)!.send(body, performance.now());
    },
    async crash(name) {
      crashed.add(name);
      await links.get(name)!.close();
      await servers.get(name)!.close();
    },
    async close() {
      clearInterval(timer);
      await Promise.all([...links.values()].map((l) => l.close()));
      await Promise.all([...servers].map(([n, s]) => crashed.has(n) ? undefined : s.close()));
    },
  };
}

function inView(f: Fixture, names: string[]): boolean {
  return names.every((n) => {
    const v = f.member(n).view;
    return v.primary && v.members.join() === names.join();
  });
}

for (const [kind, make] of [["memory", memoryFixture], ["tcp", tcpFixture]] as const) {
  Deno.test(`MulticastMember over ${kind}: three form one view, deliver one order, and two go on after a crash`, async () => {
    const f = make();
    try {
      await f.runUntil(() => inView(f, f.names), "one view of three");
      for (let i = 0; i < 20; i++) for (const n of f.names) f.send(n, `${n} #${i}`);
      await f.runUntil(
        () => f.names.every((n) => f.member(n).history.count === 60),
        "60 deliveries everywhere",
      );
      const h = f.histories();
      for (const n of f.names) assert.deepEqual(h.get(n), h.get("m1"));
      await f.crash("m3");
      await f.runUntil(() => inView(f, ["m1", "m2"]), "a view of the two survivors");
      for (let i = 0; i < 10; i++) f.send("m2", `after #${i}`);
      await f.runUntil(
        () => ["m1", "m2"].every((n) => f.member(n).history.count === 70),
        "delivery after the crash",
      );
      const problems = checkMulticastEvents(f.events, {
        quorum: 2,
        histories: new Map([...f.histories()].filter(([n]) => n !== "m3")),
      });
      assert.deepEqual(problems, []);
      // One survivor alone has no quorum: it refuses to send.
      await f.crash("m2");
      await f.runUntil(() => f.member("m1").reportedState === "no_quorum", "no quorum at m1");
      assert.throws(() => f.send("m1", "alone"), /fewer than 2 of 3/);
    } finally {
      await f.close();
    }
  });
}

/**
 * SWIM failure detection: each probe period ping the next member of a shuffled
 * round-robin list; no ack within the probe timeout → ask a few others to ping it; no ack
 * by the end of the period → suspect; suspect for too long → dead. Pure: time enters
 * through `tick(now)`, messages through the `on…` methods, and leaves through `send`.
 *
 * @module
 */
import { GossipType, MemberState } from "./constants.ts";
import type { Member, MemberTable } from "./membership.ts";
import type { AckMessage, GossipMessage, PingMessage, PingReqMessage } from "./messages.ts";
import { type RandomSource, sampleDistinct, shuffle } from "../random/mod.ts";

/** Options of {@linkcode FailureDetector}. */
export interface FailureDetectorOptions {
  /** This node's name. */
  name: string;
  /** This node's address. */
  addr: string;
  /** The member table it updates. */
  members: MemberTable;
  /** Randomness. */
  random: RandomSource;
  /** Sends a message. */
  send: (addr: string, msg: GossipMessage) => void;
  /** Probe period; 0 means this node never probes (it still answers). */
  probeIntervalMs: number;
  /** Wait for a direct ack before indirect probes. */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly. */
  indirectProbes: number;
  /** Time a member stays suspect before it is declared dead. */
  suspectTimeoutMs: number;
  /** Whether a member may be probed (an overlay probes only its neighbours). */
  probeable: (name: string) => boolean;
}

interface Probe {
  target: Member;
  seq: number;
  sentAt: number;
  indirect: boolean;
}

interface Relay {
  to: string;
  seq: number;
  expires: number;
}

/** One node's SWIM prober and responder. */
export class FailureDetector {
  readonly #o: FailureDetectorOptions;
  #probe: Probe | undefined;
  #probeOrder: Member[] = [];
  #relays = new Map<number, Relay>();
  #seq = 0;
  #nextProbe = 0;

  constructor(options: FailureDetectorOptions) {
    this.#o = options;
  }

  /** Staggers the first probe. */
  start(now: number): void {
    this.#nextProbe = now + this.#o.random() * this.#o.probeIntervalMs;
  }

  /** Runs due probes, indirect probes, suspicion and relay timeouts. */
  tick(now: number): void {
    const o = this.#o;
    if (o.probeIntervalMs <= 0) return;
    const probe = this.#probe;
    if (probe) {
      if (!probe.indirect && now >= probe.sentAt + o.probeTimeoutMs) {
        probe.indirect = true;
        const helpers = sampleDistinct(
          o.random,
          o.members.reachable(),
          o.indirectProbes,
          (m) => m.name === probe.target.name || m.state !== MemberState.Alive,
        );
        for (const h of helpers) {
          o.send(h.addr, {
            t: GossipType.PingReq,
            from: o.name,
            seq: probe.seq,
            target: probe.target.name,
            taddr: probe.target.addr,
          });
        }
      }
      if (now >= probe.sentAt + o.probeIntervalMs) {
        this.#probe = undefined;
        o.members.suspect(probe.target.name, now);
      }
    }
    if (!this.#probe && now >= this.#nextProbe) {
      this.#nextProbe = now + o.probeIntervalMs;
      const target = this.#nextTarget();
      if (target) {
        const seq = ++this.#seq;
        this.#probe = { target, seq, sentAt: now, indirect: false };
        o.send(target.addr, {
          t: GossipType.Ping,
          from: o.name,
          addr: o.addr,
          seq,
          m: o.members.piggyback(),
        });
      }
    }
    for (const m of o.members.expiredSuspects(now - o.suspectTimeoutMs)) {
      o.members.declareDead(m.name, now);
    }
    for (const [seq, relay] of this.#relays) if (relay.expires <= now) this.#relays.delete(seq);
  }

  /** Answers a ping. */
  onPing(msg: PingMessage): void {
    this.#o.send(msg.addr, {
      t: GossipType.Ack,
      from: this.#o.name,
      seq: msg.seq,
      m: this.#o.members.piggyback(),
    });
  }

  /** Pings `target` for someone else and relays the ack. */
  onPingReq(msg: PingReqMessage, now: number): void {
    const o = this.#o;
    const requester = o.members.get(msg.from)?.addr;
    if (!requester) return;
    const seq = ++this.#seq;
    const expires = now + Math.max(o.probeIntervalMs, o.probeTimeoutMs * 2, 1);
    this.#relays.set(seq, { to: requester, seq: msg.seq, expires });
    o.send(msg.taddr, {
      t: GossipType.Ping,
      from: o.name,
      addr: o.addr,
      seq,
      m: o.members.piggyback(),
    });
  }

  /** An ack: relayed to whoever asked, or ends this node's probe. */
  onAck(msg: AckMessage): void {
    const relay = this.#relays.get(msg.seq);
    if (relay) {
      this.#relays.delete(msg.seq);
      this.#o.send(relay.to, { t: GossipType.Ack, from: this.#o.name, seq: relay.seq, m: [] });
      return;
    }
    if (this.#probe && this.#probe.seq === msg.seq) this.#probe = undefined;
  }

  #nextTarget(): Member | undefined {
    const o = this.#o;
    for (let i = 0; i < 2; i++) {
      while (this.#probeOrder.length > 0) {
        const m = this.#probeOrder.pop()!;
        const cur = o.members.get(m.name);
        if (cur && cur.state !== MemberState.Dead && o.probeable(cur.name)) return cur as Member;
      }
      this.#probeOrder = shuffle(
        o.random,
        o.members.reachable().filter((m) => o.probeable(m.name)) as Member[],
      );
    }
    return undefined;
  }
}

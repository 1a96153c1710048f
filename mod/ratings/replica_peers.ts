/**
 * A replica manager's side toward its peers, over a {@linkcode RatingsTransport}: the peer
 * table (peers join through gossip), gossip exchanges (records both ways, batched, one at a
 * time per peer), push replication of fresh updates to the next peers in ring order
 * (batched per turn), and snapshots for a peer behind the garbage-collected log. The
 * replica algorithm is the {@linkcode ReplicaManager}'s; what the peers' records change is
 * reported to the owner (`ReplicaNode`), which wakes its waiting requests and commits.
 *
 * @module
 */
import type { EventSink, Logger } from "../events/mod.ts";
import { Tick } from "../process/mod.ts";
import {
  ErrorCode,
  fieldOptString,
  fieldString,
  type Message,
  ProtocolError,
  RemoteError,
} from "../wire/mod.ts";
import { fieldTs, GOSSIP_BATCH, readRecords } from "./protocol.ts";
import type { ReplicaManager } from "./replica_manager.ts";
import type { RatingsTransport } from "./transport.ts";
import { isCovered, type LogRecord } from "./update_log.ts";
import { normalize, parseVectorTs, type VectorTs } from "./vector_ts.ts";

/** One known peer and its exchanges in progress. */
interface Peer {
  name: string;
  address: string;
  exchanging: boolean;
  again: boolean;
  snapshotting: boolean;
}

interface PushJob {
  records: LogRecord[];
  need: number;
  resolve(copies: number): void;
}

/** The names after `self` in ring order (sorted names, wrapping): where pushes go first. */
export function ringAfter(names: Iterable<string>, self: string): string[] {
  const all = [...new Set([...names, self])].sort();
  const i = all.indexOf(self);
  return [...all.slice(i + 1), ...all.slice(0, i)];
}

/** `ring` with the peers whose link is up first, each part in ring order. */
export function pushOrder(ring: readonly string[], connected: (name: string) => boolean): string[] {
  return [...ring.filter((n) => connected(n)), ...ring.filter((n) => !connected(n))];
}

/** Whether `addr` has the `host:port` form a peer is reached at. */
export function isPeerAddress(addr: string): boolean {
  return /^(.+):(\d+)$/.test(addr);
}

/** Options of {@linkcode ReplicaPeers}. */
export interface ReplicaPeersOptions {
  /** This RM's name. */
  self: string;
  /** The address this RM advertises in gossip (`host:port`). */
  advertised: string;
  /** The replica algorithm. */
  rm: ReplicaManager;
  /** How this RM reaches its peers. */
  transport: RatingsTransport;
  /** Event sink (`rm.peer`, `rm.snapshot`). */
  events: Pick<EventSink, "emit">;
  /** Logger. */
  log: Pick<Logger, "debug" | "info" | "warn">;
  /** Commits what changed now (before a frame that depends on it). */
  commitNow(): void;
  /** Peers' records or a snapshot changed the manager (`changed`), or only its log shrank. */
  received(changed: boolean): void;
  /** Keeps a background task until it settles (the owner waits for them when stopping). */
  track(task: Promise<unknown>): void;
}

/** The peer side of one replica manager (see the module doc). */
export class ReplicaPeers {
  readonly #o: ReplicaPeersOptions;
  readonly #peers = new Map<string, Peer>();
  #pushJobs: PushJob[] = [];
  /** Pushes the records of one turn's updates to peers together. */
  readonly #pushTick = new Tick(() => this.#o.track(this.#pushRound()));
  #stopping = false;

  constructor(
    options: ReplicaPeersOptions,
    peers: ReadonlyArray<{ name: string; address: string }>,
  ) {
    this.#o = options;
    for (const p of peers) if (p.name !== options.self) this.#add(p.name, p.address);
  }

  /** Names of the known peers. */
  get names(): string[] {
    return [...this.#peers.keys()];
  }

  /** One exchange with every peer, settled (each one's failure is logged, not thrown). */
  exchangeAll(): Promise<unknown> {
    return Promise.allSettled([...this.#peers.values()].map((p) => this.#exchange(p)));
  }

  /** The periodic round: garbage collection, then an exchange with every peer. */
  gossipRound(): void {
    if (this.#o.rm.collectGarbage(this.#peers.keys()) > 0) this.#o.received(false);
    for (const peer of this.#peers.values()) this.#o.track(this.#exchange(peer));
  }

  /** Asks the peers that have what `prev` needs for it now (the original's pull). */
  fetchMissing(prev: VectorTs): void {
    const rm = this.#o.rm;
    const missing = rm.missingFor(prev);
    const holders = [...this.#peers.values()].filter((p) => rm.holds(p.name, missing));
    for (const peer of holders.length ? holders : this.#peers.values()) {
      this.#o.track(this.#exchange(peer));
    }
  }

  /** Pushes `record` to `need` peers (batched per turn); resolves with how many have it. */
  replicate(record: LogRecord, need: number): Promise<number> {
    return new Promise((resolve) => {
      this.#pushJobs.push({ records: [record], need, resolve });
      this.#pushTick.schedule();
    });
  }

  /** Stops starting pushes (the node is quiescing). */
  stopping(): void {
    this.#stopping = true;
  }

  /** Ends pushing: what waits for copies resolves with none. */
  close(): void {
    this.#stopping = true;
    this.#pushTick.close();
    for (const job of this.#pushJobs.splice(0)) job.resolve(0);
  }

  /** The peers as `status` shows them. */
  status(): Array<Record<string, unknown>> {
    return [...this.#peers.values()].map((p) => ({
      name: p.name,
      address: p.address,
      up: this.#o.transport.connected(p.name),
      ts: normalize(this.#o.rm.tableOf(p.name)),
    }));
  }

  /** Answers `rm.gossip`: merges the sender's records, returns ours it lacks. */
  onGossip(msg: Message): Message {
    const o = this.#o;
    const from = fieldString(msg, "from", { maxLength: 128 });
    const ts = fieldTs(msg, "ts");
    const records = readRecords(msg);
    const addr = fieldOptString(msg, "addr");
    if (from === o.self) {
      throw new ProtocolError(ErrorCode.Conflict, `Cannot gossip: peer uses my name ${from}`);
    }
    if (!this.#peers.has(from) && addr && isPeerAddress(addr)) {
      this.#add(from, addr);
      o.log.info(`new replica ${from} at ${addr} joined`);
      o.events.emit("rm.peer", { peer: from, addr });
    }
    this.#receive(from, ts, records);
    o.commitNow();
    const peer = this.#peers.get(from);
    if (peer && o.rm.needsSnapshot(ts)) {
      o.track(this.#sendSnapshot(peer));
      return { t: "rm.gossip.ok", from: o.self, ts: o.rm.replicaTs, records: [] };
    }
    const missing = msg.push === true ? [] : o.rm.recordsFor(ts, GOSSIP_BATCH);
    return { t: "rm.gossip.ok", from: o.self, ts: o.rm.replicaTs, records: missing };
  }

  /** Answers `rm.snapshot`: applies the sender's state. */
  onSnapshot(msg: Message): Message {
    const o = this.#o;
    const from = fieldString(msg, "from", { maxLength: 128 });
    const valueTs = fieldTs(msg, "value_ts");
    const cells = msg.cells;
    const executed = msg.executed;
    if (!Array.isArray(cells) || !Array.isArray(executed)) {
      throw new ProtocolError(ErrorCode.BadField, "Cannot accept rm.snapshot: cells and executed");
    }
    const written = o.rm.applySnapshot(valueTs, cells, executed);
    o.received(true);
    o.commitNow();
    o.events.emit("rm.snapshot", { peer: from, cells: written, received: true });
    return { t: "rm.snapshot.ok", ts: o.rm.replicaTs };
  }

  #add(name: string, address: string): void {
    if (this.#peers.has(name)) return;
    this.#o.transport.addPeer(name, address);
    this.#peers.set(name, { name, address, exchanging: false, again: false, snapshotting: false });
  }

  /** Takes gossip from `from` into the manager; returns how many records were new. */
  #receive(from: string, ts: VectorTs, records: LogRecord[]): number {
    const { added, changed } = this.#o.rm.receive(from, ts, records, this.#peers.keys());
    this.#o.received(changed);
    return added;
  }

  /** An `rm.gossip` frame carrying `records` (`push`: replication of fresh updates). */
  #gossipFrame(records: LogRecord[], push = false): Message {
    const frame: Message = {
      t: "rm.gossip",
      from: this.#o.self,
      addr: this.#o.advertised,
      ts: this.#o.rm.replicaTs,
      records,
    };
    if (push) frame.push = true;
    return frame;
  }

  async #pushRound(): Promise<void> {
    const jobs = this.#pushJobs.splice(0);
    if (jobs.length === 0) return;
    const need = Math.max(...jobs.map((j) => j.need));
    const records = jobs.flatMap((j) => j.records);
    const order = pushOrder(
      ringAfter(this.#peers.keys(), this.#o.self),
      (n) => this.#o.transport.connected(n),
    );
    let copies = 0;
    for (const name of order) {
      if (copies >= need || this.#stopping) break;
      if (await this.#push(this.#peers.get(name)!, records)) copies++;
    }
    for (const job of jobs) job.resolve(Math.min(copies, job.need));
  }

  async #push(peer: Peer, records: LogRecord[]): Promise<boolean> {
    const o = this.#o;
    try {
      o.commitNow();
      const reply = await o.transport.request(peer.name, this.#gossipFrame(records, true), {
        timeoutMs: 1_500,
        patient: true,
        resetOnTimeout: true,
      });
      const ts = parseVectorTs(reply.ts) ?? {};
      this.#receive(peer.name, ts, readRecords(reply));
      if (records.every((r) => isCovered(r, ts))) return true;
      await this.#exchange(peer);
      return records.every((r) => isCovered(r, o.rm.tableOf(peer.name)));
    } catch (err) {
      o.log.debug(`push to ${peer.name} failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** One gossip exchange with `peer`: our records it lacks go, its records we lack come. */
  async #exchange(peer: Peer): Promise<void> {
    const o = this.#o;
    if (peer.exchanging) {
      peer.again = true;
      return;
    }
    peer.exchanging = true;
    try {
      for (let round = 0; round < 8; round++) {
        peer.again = false;
        o.commitNow();
        const known = o.rm.tableOf(peer.name);
        if (o.rm.needsSnapshot(known) && o.rm.knows(peer.name)) {
          await this.#sendSnapshot(peer);
          return;
        }
        const records = o.rm.recordsFor(known, GOSSIP_BATCH);
        const reply = await o.transport.request(peer.name, this.#gossipFrame(records), {
          timeoutMs: 3_000,
          resetOnTimeout: true,
        });
        const ts = parseVectorTs(reply.ts) ?? {};
        const got = this.#receive(peer.name, ts, readRecords(reply));
        if (reply.snapshot_needed === true) {
          o.log.info(`${peer.name} says it needs a snapshot from us`);
        }
        if (!peer.again && got < GOSSIP_BATCH && records.length < GOSSIP_BATCH) break;
      }
    } catch (err) {
      if (!(err instanceof RemoteError)) {
        o.log.debug(`gossip with ${peer.name} failed: ${(err as Error).message}`);
      } else {
        o.log.warn(`gossip with ${peer.name} refused: ${err.message}`);
      }
    } finally {
      peer.exchanging = false;
    }
  }

  async #sendSnapshot(peer: Peer): Promise<void> {
    const o = this.#o;
    if (peer.snapshotting) return;
    peer.snapshotting = true;
    try {
      o.commitNow();
      const { cells, valueTs, executed } = o.rm.snapshot();
      o.log.info(`sending a snapshot of ${cells.length} changed cells to ${peer.name}`);
      const reply = await o.transport.request(peer.name, {
        t: "rm.snapshot",
        from: o.self,
        value_ts: valueTs,
        cells,
        executed,
      }, { timeoutMs: 10_000, patient: true });
      const ts = parseVectorTs(reply.ts) ?? {};
      this.#receive(peer.name, ts, []);
      o.events.emit("rm.snapshot", { peer: peer.name, cells: cells.length, sent: true });
    } catch (err) {
      o.log.warn(`snapshot to ${peer.name} failed: ${(err as Error).message}`);
    } finally {
      peer.snapshotting = false;
    }
  }
}

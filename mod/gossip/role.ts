/**
 * The `gossip` role: a {@linkcode GossipNode} on a {@linkcode TcpTransport}, with ctl and
 * prompt commands (`spread`, `get`, `members`, `status`) and `--generate`.
 *
 * @module
 */
import { ConfigError, type NodeEntry, parseHostPort } from "../config/mod.ts";
import {
  aborted,
  defineRole,
  linkSecurity,
  type OptionValues,
  type RoleContext,
  roleMembers,
  type RoleOptions,
  startNodeServer,
  UsageError,
} from "../process/mod.ts";
import { ErrorCode, framesOf, type Message, type PeerSession, ProtocolError } from "../wire/mod.ts";
import { DEFAULT_MAX_VALUE_BYTES } from "./constants.ts";
import { generateWords } from "./generator.ts";
import { parseGossipMessage } from "./messages.ts";
import { GOSSIP_FRAMES, GOSSIP_ROUTE } from "./protocol.ts";
import { GossipNode, type StopRule } from "./node.ts";
import { TcpTransport } from "./tcp_transport.ts";
import { gossipCommands, runPrompt } from "./commands.ts";

/** Parsed role options. */
interface GossipSettings {
  fanout: number;
  k: number;
  stopRule: StopRule;
  gossipIntervalMs: number;
  antiEntropyIntervalMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  suspectTimeoutMs: number;
  maxValueBytes: number;
  topology: "auto" | "full" | "overlay";
  seeds: string;
  generate: boolean;
  generateMeanS: number;
}

/** The gossip role's options. */
const GOSSIP_OPTIONS = {
  fanout: { type: "int", default: 3, min: 1, help: "peers each hot rumor is pushed to per round" },
  k: {
    type: "int",
    default: 5,
    min: 1,
    help: "a node receiving a rumor it knows stops spreading it with probability 1/k",
  },
  stopRule: {
    type: "choice",
    arg: "rule",
    choices: ["coin", "counter"],
    default: "coin",
    help: "coin: stop with probability 1/k on a known rumor; counter: after k of them",
  },
  gossipInterval: { type: "int", arg: "ms", default: 200, min: 1, help: "rumor round length" },
  antiEntropyInterval: {
    type: "int",
    arg: "ms",
    default: 1000,
    min: 1,
    help: "mean gap between push-pull anti-entropy exchanges",
  },
  probeInterval: {
    type: "int",
    arg: "ms",
    default: 1000,
    min: 0,
    help: "SWIM probe period (0 turns failure detection off)",
  },
  probeTimeout: {
    type: "int",
    arg: "ms",
    default: 400,
    min: 1,
    help: "wait for a direct ack before indirect probes",
  },
  suspectTimeout: {
    type: "int",
    arg: "ms",
    default: 3000,
    min: 1,
    help: "how long a member stays suspect before it is declared down",
  },
  seeds: {
    type: "string",
    arg: "list",
    default: "",
    help: "comma-separated names or host:port to join through (default: the peers file)",
  },
  topology: {
    type: "choice",
    arg: "mode",
    choices: ["auto", "full", "overlay"],
    default: "auto",
    help: "full (anyone), overlay (listed neighbours only), auto (overlay if listed)",
  },
  maxValue: {
    type: "int",
    arg: "bytes",
    default: DEFAULT_MAX_VALUE_BYTES,
    min: 1,
    help: "largest value accepted (bigger ones are refused or discarded)",
  },
  generate: { type: "bool", help: "spread random words as a Poisson process" },
  generateMean: {
    type: "float",
    arg: "seconds",
    default: 30,
    min: 0,
    exclusiveMin: true,
    help: "mean gap between generated words",
  },
} as const satisfies RoleOptions;

function readSettings(o: OptionValues<typeof GOSSIP_OPTIONS>): GossipSettings {
  const probeIntervalMs = o.probeInterval;
  const s: GossipSettings = {
    fanout: o.fanout,
    k: o.k,
    stopRule: o.stopRule,
    gossipIntervalMs: o.gossipInterval,
    antiEntropyIntervalMs: o.antiEntropyInterval,
    probeIntervalMs,
    probeTimeoutMs: o.probeTimeout,
    suspectTimeoutMs: o.suspectTimeout,
    maxValueBytes: o.maxValue,
    topology: o.topology,
    seeds: o.seeds,
    generate: o.generate,
    generateMeanS: o.generateMean,
  };
  if (probeIntervalMs > 0 && s.probeTimeoutMs >= probeIntervalMs) {
    throw new UsageError(
      `--probe-timeout (${s.probeTimeoutMs}) must be shorter than --probe-interval (${probeIntervalMs})`,
    );
  }
  return s;
}

function addressOf(n: NodeEntry): string {
  return `${n.hostname}:${n.port}`;
}

/** Resolves the overlay neighbours and the seed addresses from options and the peers file. */
function resolvePeers(
  ctx: RoleContext,
  s: GossipSettings,
): { neighbours?: string[]; seeds: string[] } {
  const all = ctx.cluster?.nodes ?? [];
  const group = roleMembers(ctx).filter((n) => n.name !== ctx.name);
  const listed = ctx.self?.neighbours;
  const overlay = s.topology === "overlay" || (s.topology === "auto" && !!listed?.length);
  let neighbours: string[] | undefined;
  if (overlay) {
    if (!listed?.length) {
      throw new ConfigError(
        `${
          ctx.cluster?.source ?? "peers file"
        }: node ${ctx.name} has no "neighbours" for --topology overlay`,
      );
    }
    for (const name of listed) {
      if (!all.some((n) => n.name === name)) {
        throw new ConfigError(
          `${ctx.cluster?.source}: node ${ctx.name}: neighbour "${name}" is not a node of the file`,
        );
      }
    }
    neighbours = listed.filter((n) => n !== ctx.name);
  }
  let seeds: string[];
  if (s.seeds.trim()) {
    seeds = s.seeds.split(",").map((x) => x.trim()).filter(Boolean).map((x) => {
      const node = all.find((n) => n.name === x);
      if (node) return addressOf(node);
      try {
        return addressOf({ ...parseHostPort(x, "--seeds"), name: x, options: {} });
      } catch {
        throw new UsageError(`--seeds: "${x}" is neither a node of the peers file nor host:port`);
      }
    });
  } else if (neighbours) {
    seeds = neighbours.map((name) => addressOf(all.find((n) => n.name === name)!));
  } else seeds = group.map(addressOf);
  return { neighbours, seeds };
}

/** The gossip role. */
export const gossipRole = defineRole({
  name: "gossip",
  summary: "epidemic key/value dissemination with SWIM membership and failure detection",
  peers: "optional",
  defaultPort: 7201,
  options: GOSSIP_OPTIONS,
  examples: [
    "peerd --role gossip --name g1 --peers peers.json",
    "peerd --role gossip --name g2 --peers peers.json --seeds g1",
    "peerd ctl 127.0.0.1:7201 spread color blue",
    "peerd ctl 127.0.0.1:7203 get color",
    "peerd ctl 127.0.0.1:7202 members",
  ],
  async run(ctx): Promise<number> {
    const s = readSettings(ctx.options);
    const { neighbours, seeds } = resolvePeers(ctx, s);
    const transport = new TcpTransport({
      name: ctx.name,
      security: linkSecurity(ctx),
      maxFrame: ctx.maxFrame,
      log: ctx.log,
    });
    // filled in right after the server listens (no frame can arrive in between)
    const late: { node?: GossipNode } = {};
    const receive = (msg: Message, session: PeerSession): undefined => {
      const m = parseGossipMessage(msg);
      if (m.from !== session.peer.name) {
        throw new ProtocolError(
          ErrorCode.BadField,
          `Cannot accept ${m.t}: from "${m.from}" is not the name "${session.peer.name}" of the hello`,
          { field: "from" },
        );
      }
      if (!late.node) throw new ProtocolError(ErrorCode.Unavailable, "Cannot accept: starting");
      late.node.receive(m, performance.now());
      return undefined;
    };
    const handlers = Object.fromEntries(
      framesOf(GOSSIP_FRAMES, GOSSIP_ROUTE).map((t) => [t, receive]),
    );
    const commands = gossipCommands(() => {
      if (!late.node) throw new ProtocolError(ErrorCode.Unavailable, "Cannot run: starting");
      return late.node;
    }, () => ({
      gossip_connections: transport.connections,
      bytes_sent: transport.stats.bytes,
      frames_sent: transport.stats.sent,
      dropped: transport.stats.dropped,
    }));
    const server = startNodeServer(ctx, { handlers, ctl: commands });
    const host = ctx.self?.hostname ?? ctx.listen.hostname;
    const addr = `${host === "0.0.0.0" ? "127.0.0.1" : host}:${server.port}`;
    const gossip = new GossipNode({
      name: ctx.name,
      addr,
      transport,
      fanout: s.fanout,
      k: s.k,
      stopRule: s.stopRule,
      gossipIntervalMs: s.gossipIntervalMs,
      antiEntropyIntervalMs: s.antiEntropyIntervalMs,
      probeIntervalMs: s.probeIntervalMs,
      probeTimeoutMs: s.probeTimeoutMs,
      suspectTimeoutMs: s.suspectTimeoutMs,
      maxValueBytes: s.maxValueBytes,
      neighbours,
      seeds,
      emit: (ev, fields) => ctx.events.emit(ev, fields),
    });
    late.node = gossip;
    const tickMs = Math.max(
      2,
      Math.min(50, Math.floor(Math.min(s.gossipIntervalMs, s.probeTimeoutMs) / 4)),
    );
    const timer = setInterval(() => gossip.tick(performance.now()), tickMs);
    const background: Promise<void>[] = [];
    try {
      ctx.events.emit("ready", {
        listen: addr,
        topology: gossip.topology,
        seeds: seeds.length,
        ...(neighbours ? { neighbours } : {}),
      });
      ctx.log.info(`gossip ${gossip.topology} on ${addr}, ${seeds.length} seed(s)`);
      gossip.start(performance.now());
      if (s.generate) {
        background.push(generateWords(ctx.name, (key, word) => {
          const v = gossip.spread(key, word);
          ctx.log.info(`generated ${key} = ${word} (${v.version.clock}@${v.version.node})`);
        }, { meanMs: s.generateMeanS * 1000, signal: ctx.signal }));
      }
      // `quit` or end of input at the prompt stops the node like SIGTERM does
      let promptDone: Promise<void> = new Promise(() => {});
      if (ctx.interactive) {
        promptDone = runPrompt(ctx.signal, commands).catch((err) => {
          ctx.log.warn(`prompt stopped: ${err instanceof Error ? err.message : String(err)}`);
        });
        background.push(promptDone);
      }
      await Promise.race([aborted(ctx.signal), promptDone]);
    } finally {
      clearInterval(timer);
      gossip.leave();
      await transport.close();
      await server.close();
      await Promise.allSettled(background);
      ctx.events.emit("stopped", { keys: gossip.keyCount, learned: gossip.stats.learned });
    }
    return 0;
  },
});

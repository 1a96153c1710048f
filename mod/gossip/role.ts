/**
 * The `gossip` role: a {@linkcode GossipNode} on a {@linkcode TcpTransport}, with ctl and
 * prompt commands (`spread`, `get`, `members`, `status`) and `--generate`.
 *
 * @module
 */
import { ConfigError, type NodeEntry, parseHostPort } from "../config/mod.ts";
import {
  aborted,
  linkSecurity,
  type RoleContext,
  type RoleDefinition,
  roleMembers,
  startNodeServer,
  UsageError,
} from "../process/mod.ts";
import { ErrorCode, type Message, type PeerSession, ProtocolError } from "../wire/mod.ts";
import { DEFAULT_MAX_VALUE_BYTES, GossipType } from "./constants.ts";
import { generateWords } from "./generator.ts";
import { parseGossipMessage } from "./messages.ts";
import { GossipNode, type StopRule } from "./node.ts";
import { TcpTransport } from "./tcp_transport.ts";
import { type GossipCommands, gossipCommands, runPrompt } from "./commands.ts";

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

function intOption(ctx: RoleContext, key: string, flag: string, min: number): number {
  const v = ctx.options[key];
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min) {
    throw new UsageError(`${flag} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return n;
}

function readSettings(ctx: RoleContext): GossipSettings {
  const probeIntervalMs = intOption(ctx, "probeInterval", "--probe-interval", 0);
  const s: GossipSettings = {
    fanout: intOption(ctx, "fanout", "--fanout", 1),
    k: intOption(ctx, "k", "--k", 1),
    stopRule: ctx.options.stopRule === "counter" ? "counter" : "coin",
    gossipIntervalMs: intOption(ctx, "gossipInterval", "--gossip-interval", 1),
    antiEntropyIntervalMs: intOption(ctx, "antiEntropyInterval", "--anti-entropy-interval", 1),
    probeIntervalMs,
    probeTimeoutMs: intOption(ctx, "probeTimeout", "--probe-timeout", 1),
    suspectTimeoutMs: intOption(ctx, "suspectTimeout", "--suspect-timeout", 1),
    maxValueBytes: intOption(ctx, "maxValue", "--max-value", 1),
    topology: String(ctx.options.topology ?? "auto") as GossipSettings["topology"],
    seeds: String(ctx.options.seeds ?? ""),
    generate: ctx.options.generate === true || ctx.options.generate === "true",
    generateMeanS: Number(ctx.options.generateMean ?? 30),
  };
  if (!["auto", "full", "overlay"].includes(s.topology)) {
    throw new UsageError(`--topology must be auto, full or overlay, got ${s.topology}`);
  }
  if (probeIntervalMs > 0 && s.probeTimeoutMs >= probeIntervalMs) {
    throw new UsageError(
      `--probe-timeout (${s.probeTimeoutMs}) must be shorter than --probe-interval (${probeIntervalMs})`,
    );
  }
  if (!(s.generateMeanS > 0)) {
    throw new UsageError(`--generate-mean must be a positive number of seconds`);
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
export const gossipRole: RoleDefinition = {
  name: "gossip",
  summary: "epidemic key/value dissemination with SWIM membership and failure detection",
  peers: "optional",
  defaultPort: 7201,
  options: [
    {
      flags: "--fanout <n>",
      description: "peers each hot rumor is pushed to per round",
      default: 3,
    },
    {
      flags: "--k <n>",
      description: "a node receiving a rumor it knows stops spreading it with probability 1/k",
      default: 5,
    },
    {
      flags: "--stop-rule <rule>",
      description: "coin: stop with probability 1/k on a known rumor; counter: after k of them",
      default: "coin",
      choices: ["coin", "counter"],
    },
    { flags: "--gossip-interval <ms>", description: "rumor round length", default: 200 },
    {
      flags: "--anti-entropy-interval <ms>",
      description: "mean gap between push-pull anti-entropy exchanges",
      default: 1000,
    },
    {
      flags: "--probe-interval <ms>",
      description: "SWIM probe period (0 turns failure detection off)",
      default: 1000,
    },
    {
      flags: "--probe-timeout <ms>",
      description: "wait for a direct ack before indirect probes",
      default: 400,
    },
    {
      flags: "--suspect-timeout <ms>",
      description: "how long a member stays suspect before it is declared down",
      default: 3000,
    },
    {
      flags: "--seeds <list>",
      description: "comma-separated names or host:port to join through (default: the peers file)",
      default: "",
    },
    {
      flags: "--topology <mode>",
      description: "full (anyone), overlay (listed neighbours only), auto (overlay if listed)",
      default: "auto",
      choices: ["auto", "full", "overlay"],
    },
    {
      flags: "--max-value <bytes>",
      description: "largest value accepted (bigger ones are refused or discarded)",
      default: DEFAULT_MAX_VALUE_BYTES,
    },
    { flags: "--generate", description: "spread random words as a Poisson process", kind: "bool" },
    {
      flags: "--generate-mean <seconds>",
      description: "mean gap between generated words",
      default: 30,
      kind: "float",
    },
  ],
  examples: [
    "peerd --role gossip --name g1 --peers peers.json",
    "peerd --role gossip --name g2 --peers peers.json --seeds g1",
    "peerd ctl 127.0.0.1:7201 spread color blue",
    "peerd ctl 127.0.0.1:7203 get color",
    "peerd ctl 127.0.0.1:7202 members",
  ],
  async run(ctx: RoleContext): Promise<number> {
    const s = readSettings(ctx);
    const { neighbours, seeds } = resolvePeers(ctx, s);
    const transport = new TcpTransport({
      name: ctx.name,
      security: linkSecurity(ctx),
      maxFrame: ctx.maxFrame,
      log: ctx.log,
    });
    // filled in right after the server listens (no frame can arrive in between)
    const late: { node?: GossipNode; commands?: GossipCommands } = {};
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
    const handlers = Object.fromEntries(Object.values(GossipType).map((t) => [t, receive]));
    const server = startNodeServer(ctx, {
      handlers,
      ctl: {
        spread: (args) => late.commands!.spread(args),
        get: (args) => late.commands!.get(args),
        members: () => late.commands!.members(),
        status: () => late.commands!.status(),
      },
    });
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
    const commands = gossipCommands(gossip, () => ({
      gossip_connections: transport.connections,
      bytes_sent: transport.stats.bytes,
      frames_sent: transport.stats.sent,
      dropped: transport.stats.dropped,
    }));
    late.commands = commands;
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
};

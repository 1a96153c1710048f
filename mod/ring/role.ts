/**
 * The `ring` role: token ring mutual exclusion over the members of the peers file, in file
 * order, with fencing numbers, crash recovery and a parked token when idle.
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import { ctlCommand, type CtlCommands, ctlHandler, parseCtlArgs } from "../ctl/mod.ts";
import {
  aborted,
  defineRole,
  linkSecurity,
  nodeStatusFields,
  promptCommandsOf,
  reportWireProblem,
  type RoleContext,
  roleMembers,
  runCommandPrompt,
} from "../process/mod.ts";
import { FrameServer, type Message, type PeerSession } from "../wire/mod.ts";
import { RingNode } from "./node.ts";
import { RingStore } from "./store.ts";
import { prepareDataDir } from "../storage/mod.ts";

/** The arguments of `lock`: `[<s>]` or `[--timeout <s>]`, seconds to wait. */
const LOCK_ARGS = {
  summary: "wait until this node holds the lock for this request",
  args: {
    seconds: {
      type: "float",
      min: 0,
      exclusiveMin: true,
      max: 86_400,
      optional: true,
      help: "how long to wait (as --timeout)",
    },
  },
  flags: {
    timeout: {
      type: "float",
      arg: "s",
      min: 0,
      exclusiveMin: true,
      max: 86_400,
      help: "how long to wait, in seconds",
    },
  },
} as const;

/** Milliseconds to wait for a lock, from the parsed `lock` arguments; undefined: no limit. */
function lockTimeoutMs(a: { timeout?: number; seconds?: number }): number | undefined {
  const s = a.timeout ?? a.seconds;
  return s === undefined ? undefined : s * 1000;
}

/** Parses `lock` arguments: `[--timeout <s>]` or `[<s>]`; returns milliseconds or undefined. */
export function parseLockArgs(args: readonly string[]): number | undefined {
  return lockTimeoutMs(parseCtlArgs("lock", LOCK_ARGS, args));
}

/** The ctl commands of a ring node (also used by the prompt). */
export function ringCommands(node: RingNode): CtlCommands {
  return {
    status: () => node.status(),
    lock: ctlCommand("lock", LOCK_ARGS, async (a, session) => ({
      ...(await node.lock({ timeoutMs: lockTimeoutMs(a), session })),
    })),
    unlock: ctlCommand("unlock", {
      summary: "release this node's lock (the one with this fence, when given)",
      args: { fence: { type: "int", min: 1, optional: true, help: "the lock's fence" } },
    }, ({ fence }) => ({ released: true, ...node.unlock(fence) })),
    start: ctlCommand("start", {
      summary: "create a token if this node has never seen one and a majority is reachable",
    }, () => node.startToken()),
  };
}

/** The ring role. */
export const ringRole = defineRole({
  name: "ring",
  summary: "token ring mutual exclusion with fencing numbers that survives crashes",
  peers: "required",
  defaultPort: 7101,
  options: {
    heartbeatMs: {
      type: "int",
      arg: "ms",
      default: 1000,
      min: 1,
      help: "heartbeat period per member link",
    },
    failAfter: {
      type: "int",
      default: 3,
      min: 1,
      help: "missed heartbeats before a member is down",
    },
    passTimeoutMs: {
      type: "int",
      arg: "ms",
      default: 2000,
      min: 1,
      help: "how long a token pass waits for its acknowledgement",
    },
    lease: {
      type: "int",
      arg: "ms",
      default: 3000,
      min: 100,
      max: 600_000,
      help: "holder lease: a holder that cannot reach a majority for this long loses the lock",
    },
  },
  examples: [
    "peerd --role ring --name n1 --peers machines.txt",
    "peerd ctl 127.0.0.1:7101 lock --timeout 5",
    "peerd ctl 127.0.0.1:7101 unlock",
    "peerd ctl 127.0.0.1:7101 status",
  ],
  async run(ctx): Promise<number> {
    const members = roleMembers(ctx);
    if (!members.some((m) => m.name === ctx.name)) {
      throw new ConfigError(
        `${
          ctx.cluster?.source ?? "peers file"
        }: node "${ctx.name}" is not a ring member; members are ${
          members.map((m) => m.name).join(", ") || "none"
        }`,
      );
    }
    const { heartbeatMs, failAfter, passTimeoutMs, lease: leaseMs } = ctx.options;
    const store = openStore(ctx.dataDir);
    let failed: (err: Error) => void = () => {};
    const fatal = new Promise<never>((_, reject) => (failed = reject));
    fatal.catch(() => {}); // raced below; handled there
    const node = new RingNode({
      self: ctx.name,
      members,
      events: ctx.events,
      log: ctx.log,
      security: linkSecurity(ctx),
      maxFrame: ctx.maxFrame,
      heartbeatMs,
      failAfter,
      passTimeoutMs,
      leaseMs,
      store,
      onFatal: (err) => failed(err),
    });
    const commands = ringCommands(node);
    const server = startRingServer(ctx, node, commands);
    try {
      node.start();
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${server.port}`,
        members: members.map((m) => m.name),
      });
      ctx.log.info(`ring member ${ctx.name} listening on ${ctx.listen.hostname}:${server.port}`);
      const prompt = ctx.interactive ? runPrompt(node, ctx.signal) : undefined;
      // A store failure stops the node (exit 1, one line): a promise it cannot keep on disk
      // could be given twice after a restart.
      await Promise.race([aborted(ctx.signal), fatal]);
      await prompt?.catch(() => {});
    } finally {
      await node.close();
      await server.close();
      store.close();
      ctx.events.emit("stopped", {});
    }
    return 0;
  },
});

/**
 * The node's framed server. Like `startNodeServer`, except that `ctl lock` is answered in
 * the background: the connection keeps being read while the request waits, so a client
 * that goes away (ctl's own `--timeout`, Ctrl-C) is noticed and its request withdrawn
 * instead of being granted to nobody.
 */
function startRingServer(ctx: RoleContext, node: RingNode, commands: CtlCommands): FrameServer {
  const started = Date.now();
  let server: FrameServer | undefined = undefined;
  const status = () => ({ ...nodeStatusFields(ctx, server, started), ...node.status() });
  // `--http` reads the status in process, as for every role on `startNodeServer`, instead
  // of a ctl connection to this node per request
  ctx.exposeStatus?.(() => Promise.resolve(status()));
  const ctl = ctlHandler({ ...commands, status });
  const lockInBackground = (msg: Message, session: PeerSession): void => {
    let timeoutMs: number | undefined;
    try {
      const raw = Array.isArray(msg.args) ? msg.args.map((a) => String(a)) : [];
      timeoutMs = parseLockArgs(raw);
    } catch (err) {
      session.replyError(msg, err);
      return;
    }
    node.lock({ timeoutMs, session }).then(
      (result) => {
        if (!session.reply(msg, { ...result, t: "ctl.ok", cmd: "lock" })) {
          // Granted just as its client went away: give the lock back.
          ctx.log.warn(`lock ${result.fence} granted to a closed connection; releasing it`);
          node.unlock(result.fence);
        }
      },
      (err) => session.replyError(msg, err),
    );
  };
  server = new FrameServer({
    listen: ctx.listen,
    identity: { role: ctx.role, name: ctx.name },
    secret: ctx.secret,
    tls: ctx.tls,
    maxFrame: ctx.maxFrame,
    maxConnections: ctx.maxConnections,
    pendingBytes: { perNode: ctx.maxPending },
    handlers: {
      ...node.handlers(),
      ctl: (msg, session) => {
        if (msg.cmd === "lock") return lockInBackground(msg, session);
        return ctl(msg, session);
      },
    },
    onSessionClose: (session) => node.sessionClosed(session),
    onProblem: reportWireProblem(ctx),
  });
  ctx.events.holdUntil(server.listening()); // TLS binds asynchronously: `ready` after it
  return server;
}

/** Opens `<data>/ring.db`; a bad `--data` (a file, read-only, corrupt) is a `StorageError`: one line, exit 1. */
function openStore(dataDir: string): RingStore {
  prepareDataDir(dataDir);
  return new RingStore(`${dataDir}/ring.db`);
}

/** The interactive prompt (stdin a terminal): lock [s], unlock [fence], status, start, quit. */
function runPrompt(node: RingNode, signal: AbortSignal): Promise<void> {
  // The prompt has no session: a lock it waits for is only cancelled by its timeout.
  const commands = promptCommandsOf(ringCommands(node));
  // A lock taken at the prompt that is lost later (lease) is announced there.
  commands.lock = async (args) => ({
    ...(await node.lock({
      timeoutMs: parseLockArgs(args),
      onLost: (notice) =>
        console.log(
          `lock ${notice.fence} LOST (${notice.reason}): held until ${
            new Date(Number(notice.lease_end)).toISOString()
          }; do not use fence ${notice.fence} any more`,
        ),
    })),
  });
  return runCommandPrompt({
    name: "ring",
    help: "commands: lock [timeout-s], unlock [fence], status, start, quit",
    commands,
    signal,
  });
}

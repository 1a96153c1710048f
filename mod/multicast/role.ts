/**
 * The `multicast` role: a chat whose messages every member delivers in one identical
 * order (Lamport stamps, hold-back queue, batched acks), surviving member crashes.
 *
 * @module
 */
import { printJson } from "../ctl/mod.ts";
import { aborted, defineRole, roleMembers } from "../process/mod.ts";
import { ConfigError } from "../config/mod.ts";
import { MulticastNode } from "./node.ts";

/** The multicast role. */
export const multicastRole = defineRole({
  name: "multicast",
  summary: "total-order multicast chat with Lamport clocks that survives a crash",
  peers: "required",
  defaultPort: 7301,
  options: {
    generate: {
      type: "float",
      arg: "msgs/s",
      default: 0,
      min: 0,
      help: "send generated messages at this rate",
    },
    generateLimit: {
      type: "int",
      default: 0,
      min: 0,
      help: "stop generating after n messages (0: never)",
    },
    heartbeatMs: { type: "int", arg: "ms", default: 100, min: 5, help: "heartbeat period" },
    failTimeoutMs: {
      type: "int",
      arg: "ms",
      default: 1500,
      min: 50,
      help: "silence after which a member is removed from the view",
    },
    flushTimeoutMs: {
      type: "int",
      arg: "ms",
      default: 3000,
      min: 50,
      help: "how long a view change waits for flush reports",
    },
    bootstrapMs: {
      type: "int",
      arg: "ms",
      default: 2000,
      min: 0,
      help: "how long a fresh group waits for every peer before forming",
    },
    quorum: {
      type: "int",
      default: 0,
      min: 0,
      help: "members a view needs to be primary and deliver (0: majority of the members)",
    },
    quiet: { type: "bool", default: false, help: "do not print delivered messages on stdout" },
  },
  examples: [
    "peerd --role multicast --name m1 --peers peers.json",
    "peerd --role multicast --name m2 --peers peers.json --generate 50",
    "peerd ctl 127.0.0.1:7301 send hello everyone",
    "peerd ctl 127.0.0.1:7301 history 10",
  ],
  async run(ctx): Promise<number> {
    const members = roleMembers(ctx);
    if (!members.some((m) => m.name === ctx.name)) {
      throw new ConfigError(
        `${ctx.cluster?.source ?? "peers file"}: --name "${ctx.name}" is not a multicast node`,
      );
    }
    const o = ctx.options;
    const quorum = o.quorum;
    if (quorum > members.length) {
      throw new ConfigError(`--quorum must be 0..${members.length} (members), got ${quorum}`);
    }
    let fatal: ((err: Error) => void) | undefined;
    const failed = new Promise<Error>((resolve) => fatal = resolve);
    const node = new MulticastNode(ctx, members, {
      heartbeatMs: o.heartbeatMs,
      failTimeoutMs: o.failTimeoutMs,
      flushTimeoutMs: o.flushTimeoutMs,
      bootstrapMs: o.bootstrapMs,
      quorum: quorum === 0 ? undefined : quorum,
      quiet: o.quiet,
      onFatal: (err) => fatal?.(err),
    });
    node.start();
    ctx.events.emit("ready", { listen: `${ctx.listen.hostname}:${node.port}` });
    ctx.log.info(`listening on ${ctx.listen.hostname}:${node.port}`);
    if (o.generate > 0) node.generate(o.generate, o.generateLimit);
    const prompt = ctx.interactive ? runPrompt(node, ctx.signal) : undefined;
    let code = 0;
    try {
      const err = await Promise.race([aborted(ctx.signal).then(() => undefined), failed]);
      if (err) {
        ctx.log.error(`Cannot go on: the history store failed: ${err.message}`);
        code = 1;
      }
    } finally {
      await node.close();
      await prompt?.catch(() => {});
      ctx.events.emit("stopped", {});
    }
    return code;
  },
});

/**
 * The interactive prompt: `send <text>` (or plain text), `history [n]`, `view`, `status`,
 * `generate <msgs/s> [limit]`.
 */
async function runPrompt(node: MulticastNode, signal: AbortSignal): Promise<void> {
  const decoder = new TextDecoderStream();
  const reader = Deno.stdin.readable.pipeThrough(decoder).getReader();
  const stop = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", stop, { once: true });
  let partial = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const lines = (partial + value).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) promptLine(node, line.trim());
    }
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

function promptLine(node: MulticastNode, line: string): void {
  if (line.length === 0) return;
  const [cmd, ...rest] = line.split(/\s+/);
  try {
    if (cmd === "history") {
      const n = rest[0] === undefined ? 20 : Number(rest[0]);
      if (!Number.isInteger(n) || n < 1) {
        console.error("usage: history [n]");
        return;
      }
      for (const e of node.history(n)) console.log(`${e.idx}. [${e.lamport}] ${e.from}: ${e.body}`);
    } else if (cmd === "generate") {
      const rate = Number(rest[0] ?? "");
      const limit = Number(rest[1] ?? "0");
      if (!Number.isFinite(rate) || rate < 0 || !Number.isInteger(limit) || limit < 0) {
        console.error("usage: generate <msgs/s> [limit]   (0 stops)");
        return;
      }
      node.generate(rate, limit);
    } else if (cmd === "view") {
      printJson(node.viewInfo(), false);
    } else if (cmd === "status") {
      printJson(node.status(), false);
    } else {
      const body = cmd === "send" ? line.slice(4).trim() : line;
      if (body.length === 0) {
        console.error("usage: send <text>");
        return;
      }
      node.send(body);
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
  }
}

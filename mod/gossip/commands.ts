/**
 * The commands of a gossip node, shared by `peerd ctl` and the interactive prompt.
 *
 * @module
 */
import { ErrorCode, ProtocolError } from "../wire/mod.ts";
import { GossipInputError, type GossipNode } from "./node.ts";

/** The commands shared by ctl and the prompt: spread, get, members, status. */
export function gossipCommands(node: GossipNode, extra: () => Record<string, unknown>) {
  return {
    spread(args: string[]): Record<string, unknown> {
      if (args.length < 2) {
        throw new ProtocolError(ErrorCode.BadField, "Cannot spread: usage is spread <key> <value>");
      }
      try {
        return { ...node.spread(args[0], args.slice(1).join(" ")) };
      } catch (err) {
        if (err instanceof GossipInputError) throw new ProtocolError(err.code, err.message);
        throw err;
      }
    },
    get(args: string[]): Record<string, unknown> {
      if (args.length !== 1) {
        throw new ProtocolError(ErrorCode.BadField, "Cannot get: usage is get <key>");
      }
      const v = node.get(args[0]);
      if (!v) throw new ProtocolError(ErrorCode.NotFound, `Cannot get ${args[0]}: no such key`);
      return { ...v };
    },
    members(): Record<string, unknown> {
      return { members: node.members() };
    },
    status(): Record<string, unknown> {
      const st = node.stats;
      return {
        topology: node.topology,
        ...(node.neighbours ? { neighbours: node.neighbours } : {}),
        members: node.memberCounts(),
        keys: node.keyCount,
        hot: node.hotCount,
        clock: node.clock,
        incarnation: node.incarnation,
        rounds: st.rounds,
        learned: st.learned,
        duplicates: st.duplicates,
        discarded: st.discarded,
        messages_sent: Object.values(st.sent).reduce((a, b) => a + b, 0),
        sent_by_type: st.sent,
        ...extra(),
      };
    },
  };
}

/** The type of {@linkcode gossipCommands}' result. */
export type GossipCommands = ReturnType<typeof gossipCommands>;

/** Reads commands from stdin (a terminal) until `quit`, end of input or the signal. */
export async function runPrompt(
  signal: AbortSignal,
  commands: GossipCommands,
): Promise<void> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const out = (s: string) => Deno.stdout.writeSync(enc.encode(s));
  out("gossip> commands: spread <key> <value>, get <key>, members, status, quit\ngossip> ");
  let buf = "";
  const reader = Deno.stdin.readable.getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || signal.aborted) break;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const words = buf.slice(0, nl).trim().split(/\s+/).filter(Boolean);
        buf = buf.slice(nl + 1);
        const [cmd, ...args] = words;
        if (!cmd) {
          out("gossip> ");
          continue;
        }
        if (cmd === "quit" || cmd === "exit") return;
        const fn = (commands as Record<string, (a: string[]) => Record<string, unknown>>)[cmd];
        try {
          if (!fn) throw new Error(`unknown command ${cmd}`);
          out(JSON.stringify(fn(args)) + "\n");
        } catch (err) {
          out(`error: ${err instanceof Error ? err.message : String(err)}\n`);
        }
        out("gossip> ");
      }
    }
  } finally {
    reader.releaseLock();
  }
}

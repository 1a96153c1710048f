/**
 * The commands of a gossip node, shared by `peerd ctl` and the interactive prompt.
 *
 * @module
 */
import { type PromptCommand, runCommandPrompt } from "../process/mod.ts";
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
export function runPrompt(signal: AbortSignal, commands: GossipCommands): Promise<void> {
  return runCommandPrompt({
    name: "gossip",
    help: "commands: spread <key> <value>, get <key>, members, status, quit",
    commands: commands as Record<string, PromptCommand>,
    signal,
  });
}

/**
 * The commands of a gossip node, shared by `peerd ctl` and the interactive prompt.
 *
 * @module
 */
import { promptCommandsOf, runCommandPrompt } from "../process/mod.ts";
import { ctlCommand } from "../ctl/mod.ts";
import { ErrorCode, ProtocolError } from "../wire/mod.ts";
import { GossipInputError, type GossipNode } from "./node.ts";

/**
 * The commands shared by ctl and the prompt: spread, get, members, status, on the node
 * `nodeOf` gives (the node is made after its server listens).
 */
export function gossipCommands(nodeOf: () => GossipNode, extra: () => Record<string, unknown>) {
  return {
    spread: ctlCommand("spread", {
      summary: "set a key and spread it to every node",
      args: {
        key: { type: "string", help: "the key" },
        value: { type: "string", rest: true, help: "the value (the remaining words)" },
      },
    }, ({ key, value }) => {
      try {
        return { ...nodeOf().spread(key, value) };
      } catch (err) {
        if (err instanceof GossipInputError) throw new ProtocolError(err.code, err.message);
        throw err;
      }
    }),
    get: ctlCommand("get", {
      summary: "this node's value of a key",
      args: { key: { type: "string", help: "the key" } },
    }, ({ key }) => {
      const v = nodeOf().get(key);
      if (!v) throw new ProtocolError(ErrorCode.NotFound, `Cannot get ${key}: no such key`);
      return { ...v };
    }),
    members(): Record<string, unknown> {
      return { members: nodeOf().members() };
    },
    status(): Record<string, unknown> {
      const node = nodeOf();
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
    commands: promptCommandsOf(commands),
    signal,
  });
}

/**
 * `peerd lab <up|partition|heal|kill|pause|resume|restart|status|down> …`: the lab from
 * the command line. `up` starts the nodes and returns, leaving them running in their
 * namespaces; the other subcommands find the lab through its folder (`--dir`, default
 * `data/lab-<prefix>`). Not root, no `ip` or no `nft`: one line and exit 2.
 *
 * @module
 */
import type { Command } from "commander";
import { ConfigError } from "../config/mod.ts";
import { printJson } from "../ctl/mod.ts";
import type { CommandDefinition } from "../process/mod.ts";
import { Lab, LabUnavailableError } from "./lab.ts";
import { labUnavailableReason } from "./net.ts";
import { checkPrefix, LabUsageError, parseGroups } from "./plan.ts";
import { readState } from "./state.ts";

interface Where {
  prefix: string;
  dir?: string;
}

function labDir(opts: Where): string {
  checkPrefix(opts.prefix);
  return opts.dir ?? `data/lab-${opts.prefix}`;
}

async function attached(opts: Where): Promise<Lab> {
  const reason = await labUnavailableReason();
  if (reason) throw new LabUnavailableError(reason);
  return Lab.attach(labDir(opts));
}

async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
    Deno.exitCode = 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`peerd lab: ${message.split("\n")[0]}`);
    Deno.exitCode = err instanceof LabUsageError || err instanceof LabUnavailableError ||
        err instanceof ConfigError
      ? 2
      : 1;
  }
}

function where(cmd: Command): Command {
  return cmd
    .option("--prefix <name>", "prefix of every name the lab makes (1-8 of a-z0-9)", "lab")
    .option("--dir <dir>", "lab folder (default data/lab-<prefix>)");
}

/** `["lottery-server=--agencies 5"]` → `{"lottery-server": ["--agencies", "5"]}` (split on spaces). */
export function parseRoleArgs(values: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) {
      throw new LabUsageError(`Cannot read --role-args "${v}": expected ROLE=ARGS`);
    }
    const role = v.slice(0, eq);
    out[role] = [...(out[role] ?? []), ...v.slice(eq + 1).split(/\s+/).filter((a) => a)];
  }
  return out;
}

/** The `lab` subcommand. */
export const labCommand: CommandDefinition = {
  name: "lab",
  summary: "run a cluster in network namespaces and cut, pause, kill its nodes (Linux, root)",
  register(program: Command): void {
    const lab = program
      .command("lab")
      .description(
        "a cluster in network namespaces, one IP a node on a private bridge; partitions, " +
          "one-way loss, pauses, kills (Linux, root, ip and nft)",
      );
    where(lab.command("up"))
      .description(
        "create the namespaces, write <dir>/peers.json, start every node, wait for ready",
      )
      .requiredOption("--peers <file>", "peers.json or machines.txt whose nodes to start")
      .option("--nodes <a,b,…>", "only these nodes of the file")
      .option("--role <role>", "role of nodes the file gives none (machines.txt)")
      .option("--log-level <level>", "log level of the nodes", "info")
      .option(
        "--role-args <role=args>",
        "extra arguments for every node of a role, e.g. 'lottery-server=--agencies 5' (repeatable)",
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .action((
        opts: Where & {
          peers: string;
          nodes?: string;
          role?: string;
          logLevel: string;
          roleArgs?: string[];
        },
      ) =>
        guarded(async () => {
          const dir = labDir(opts);
          if (readState(dir)) {
            throw new LabUsageError(
              `Cannot start a lab in ${dir}: one is up there (peerd lab down --dir ${dir})`,
            );
          }
          const up = await Lab.up({
            peers: opts.peers,
            prefix: opts.prefix,
            dir,
            only: opts.nodes?.split(",").filter((s) => s),
            role: opts.role,
            logLevel: opts.logLevel,
            roleArgs: parseRoleArgs(opts.roleArgs ?? []),
            detached: true,
          });
          printJson(up.status());
        })
      );
    where(lab.command("partition"))
      .description(
        "partition into groups, both ways (replaces every cut): A,B C,D,E; or --oneway A C",
      )
      .argument("<groups...>", "groups of node names, comma-separated; with --oneway: FROM TO")
      .option("--oneway", "drop FROM's packets to TO only (adds to the cuts in force)")
      .action((groups: string[], opts: Where & { oneway?: boolean }) =>
        guarded(async () => {
          const l = await attached(opts);
          if (opts.oneway) {
            if (groups.length !== 2) {
              throw new LabUsageError("usage: peerd lab partition --oneway FROM TO");
            }
            await l.oneway(groups[0], groups[1]);
          } else {
            await l.partition(...parseGroups(groups));
          }
          console.log(JSON.stringify({ cuts: l.status().cuts }));
        })
      );
    where(lab.command("heal"))
      .description("remove every cut")
      .action((opts: Where) =>
        guarded(async () => {
          const l = await attached(opts);
          await l.heal();
          console.log(JSON.stringify({ cuts: [] }));
        })
      );
    const signals: Array<[string, string, (l: Lab, n: string) => Promise<void>]> = [
      ["kill", "SIGKILL a node", (l, n) => l.kill(n)],
      ["pause", "SIGSTOP a node", (l, n) => l.pause(n)],
      ["resume", "SIGCONT a node", (l, n) => l.resume(n)],
      [
        "restart",
        "kill -9 a node (if running) and start it again, waiting for ready",
        (l, n) => l.restart(n),
      ],
      ["start", "start a stopped node, waiting for ready", (l, n) => l.start(n)],
      ["stop", "SIGTERM a node (SIGKILL after 6 s)", (l, n) => l.stop(n)],
    ];
    for (const [name, description, act] of signals) {
      where(lab.command(name))
        .description(description)
        .argument("<node>", "node name")
        .action((node: string, opts: Where) =>
          guarded(async () => {
            const l = await attached(opts);
            await act(l, node);
            const s = l.status().nodes.find((n) => n.name === node);
            console.log(JSON.stringify(s));
          })
        );
    }
    where(lab.command("status"))
      .description("nodes, addresses, pids, process states and the cut links")
      .option("--compact", "one line")
      .action((opts: Where & { compact?: boolean }) =>
        guarded(async () => {
          const l = await attached(opts);
          printJson(l.status(), !opts.compact);
        })
      );
    where(lab.command("down"))
      .description("stop every node; remove every namespace, veth, bridge and rule the lab made")
      .action((opts: Where) =>
        guarded(async () => {
          const reason = await labUnavailableReason();
          if (reason) throw new LabUnavailableError(reason);
          const dir = labDir(opts);
          if (!readState(dir)) {
            console.log(JSON.stringify({ down: true, note: `no lab in ${dir}` }));
            return;
          }
          const report = await Lab.attach(dir).down();
          console.log(JSON.stringify({ down: true, ...report }));
        })
      );
  },
};

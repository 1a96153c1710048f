/**
 * A lab's network, from its plan: the bridge on a free /24, one namespace and veth a node,
 * the node records and the peers file with the lab addresses; and its teardown, which
 * removes only what the state file records.
 *
 * @module
 */
import { formatPeersJson } from "../config/mod.ts";
import { chooseSubnet, expandArg, LabUsageError, nftScript, planLab } from "./plan.ts";
import {
  createBridge,
  createNetns,
  deleteLink,
  deleteNetns,
  holdersOf,
  listNetns,
  netnsPids,
  usedNetworks,
  wireNode,
} from "./net.ts";
import { signalPid, waitGone } from "./proc.ts";
import { type LabState, writeState } from "./state.ts";
import type { LabDownReport, LabNodeSpec } from "./specs.ts";

/**
 * Builds the network of `specs` into `state` (written to the state file at every step, so
 * a crash half-way leaves a record `down` can clean up), then the peers file.
 */
export async function buildLab(state: LabState, specs: LabNodeSpec[]): Promise<void> {
  const names = specs.map((s) => s.name);
  const skip: string[] = [];
  for (let attempt = 0; attempt < 8; attempt++) {
    const subnet = chooseSubnet(state.prefix, await usedNetworks(), skip);
    const plan = planLab(state.prefix, names, subnet);
    state.subnet = subnet;
    state.bridge = plan.bridge;
    state.bridgeIp = plan.bridgeIp;
    writeState(state);
    await createBridge(plan);
    // another lab may have taken the same /24 at the same moment: check, else try another
    if ((await holdersOf(subnet, plan.bridge)).length > 0) {
      await deleteLink(plan.bridge);
      skip.push(subnet);
      continue;
    }
    const empty = nftScript("", [], () => "");
    for (const n of plan.nodes) {
      state.netns.push(n.netns);
      state.links.push(n.hostVeth);
      writeState(state);
      await createNetns(n);
      await wireNode(plan, n, empty);
    }
    const byName = new Map(plan.nodes.map((n) => [n.node, n]));
    const portOf = new Map(specs.map((s) => [s.name, s.port ?? 7000]));
    const lookup = {
      dir: state.dir,
      ip: (node: string) => {
        const n = byName.get(node);
        if (!n) throw new LabUsageError(`Cannot expand {ip:${node}}: unknown node`);
        return n.ip;
      },
      address: (node: string) => `${lookup.ip(node)}:${portOf.get(node)}`,
    };
    await Deno.mkdir(`${state.dir}/data`, { recursive: true });
    await Deno.mkdir(`${state.dir}/logs`, { recursive: true });
    state.nodes = specs.map((s) => ({
      name: s.name,
      role: s.role,
      netns: byName.get(s.name)!.netns,
      ip: byName.get(s.name)!.ip,
      port: s.port ?? 7000,
      args: (s.args ?? []).map((a) => expandArg(a, lookup)),
      listed: !s.unlisted && !s.command,
      readyEvent: s.readyEvent === undefined ? (s.command ? null : "ready") : s.readyEvent,
      command: s.command?.map((a) => expandArg(a, lookup)),
      eventsPath: `${state.dir}/${s.name}.events.jsonl`,
      logPath: `${state.dir}/logs/${s.name}.log`,
      dataDir: `${state.dir}/data/${s.name}`,
      entry: s.entry,
    }));
    writeState(state);
    writePeersFile(state);
    return;
  }
  throw new Error("Cannot start a lab: every subnet tried was taken meanwhile");
}

export function writePeersFile(s: LabState): void {
  const text = formatPeersJson(
    s.nodes.filter((n) => n.listed).map((n) => ({
      name: n.name,
      hostname: n.ip,
      port: n.port,
      role: n.role,
      ...(n.entry ?? {}),
    })),
    { cluster: `lab-${s.prefix}`, secret: s.secret },
  );
  Deno.writeTextFileSync(s.peersPath, text);
}

/**
 * Kills anything left inside the lab's namespaces, deletes the namespaces, veths and the
 * bridge the state records (only those); counts what it removed into `report`.
 */
export async function teardownNetwork(s: LabState, report: LabDownReport): Promise<void> {
  const existing = new Set(await listNetns());
  for (const ns of s.netns) {
    if (!existing.has(ns)) continue;
    // anything still inside the lab's own namespace was started there by the lab
    for (const pid of await netnsPids(ns)) {
      if (signalPid(pid, "SIGKILL")) report.killed++;
      await waitGone(pid, 2_000);
    }
    if (await deleteNetns(ns)) report.netns++;
  }
  for (const link of s.links) if (await deleteLink(link)) report.links++;
  if (s.bridge && await deleteLink(s.bridge)) report.links++;
}

/** The namespaces of another lab with this prefix that are up. */
export async function takenNetns(prefix: string): Promise<string[]> {
  return (await listNetns()).filter((ns) => ns.startsWith(`peerd-${prefix}-`));
}

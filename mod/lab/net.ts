/**
 * The one module of the lab that runs `ip` and `nft`: checks that they can run, reads the
 * subnets in use, creates and removes the bridge, the namespaces and their veth pairs, and
 * loads each namespace's nftables table.
 *
 * @module
 */
import type { LabPlan, NodeNames } from "./plan.ts";

/** `ip` or `nft` failed. */
export class LabCommandError extends Error {
  /** The command line that failed. */
  readonly command: string;

  constructor(command: string, message: string) {
    super(`Cannot run "${command}": ${message}`);
    this.name = "LabCommandError";
    this.command = command;
  }
}

const decoder = new TextDecoder();

/** Runs `program args` to completion; returns stdout, throws {@linkcode LabCommandError} on failure. */
export async function runTool(
  program: string,
  args: string[],
  options: { stdin?: string; allowFail?: boolean } = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    throw new LabCommandError(
      `${program} ${args.join(" ")}`,
      err instanceof Error ? err.message : String(err),
    );
  }
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(options.stdin));
    } finally {
      await writer.close().catch(() => {});
    }
  }
  const out = await child.output();
  const stdout = decoder.decode(out.stdout);
  const stderr = decoder.decode(out.stderr).trim();
  if (!out.success && !options.allowFail) {
    throw new LabCommandError(
      `${program} ${args.join(" ")}`,
      stderr || `exit code ${out.code}`,
    );
  }
  return { ok: out.success, stdout, stderr };
}

async function toolWorks(program: string, args: string[]): Promise<boolean> {
  try {
    return (await runTool(program, args, { allowFail: true })).ok;
  } catch {
    return false;
  }
}

/**
 * Why the lab cannot run here, or undefined when it can: not root, no `ip` (Debian
 * `iproute2`), no `nft` (Debian `nftables`), or network namespaces not usable.
 */
export async function labUnavailableReason(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `the lab needs Linux (this is ${Deno.build.os})`;
  if (Deno.uid() !== 0) return "the lab needs root (network namespaces, nftables)";
  if (!await toolWorks("ip", ["-V"])) return "the lab needs `ip` (Debian package iproute2)";
  if (!await toolWorks("nft", ["--version"])) {
    return "the lab needs `nft` (Debian package nftables)";
  }
  if (!await toolWorks("ip", ["netns", "list"])) return "`ip netns` does not work here";
  return undefined;
}

/** Every IPv4 network in use in the root namespace: interface addresses and route destinations. */
export async function usedNetworks(): Promise<string[]> {
  const used: string[] = [];
  const addrs = JSON.parse(
    (await runTool("ip", ["-j", "-4", "addr", "show"])).stdout || "[]",
  ) as Array<{ addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (a.local) used.push(`${a.local}/${a.prefixlen ?? 32}`);
    }
  }
  const routes = JSON.parse(
    (await runTool("ip", ["-j", "-4", "route", "show"])).stdout || "[]",
  ) as Array<{ dst?: string }>;
  for (const r of routes) {
    if (r.dst && r.dst !== "default") used.push(r.dst.includes("/") ? r.dst : `${r.dst}/32`);
  }
  return used;
}

/** The interface names (other than `exclude`) holding an address inside `subnet`'s /24. */
export async function holdersOf(subnet: string, exclude: string): Promise<string[]> {
  const base = subnet.replace(/\.0\/24$/, ".");
  const addrs = JSON.parse(
    (await runTool("ip", ["-j", "-4", "addr", "show"])).stdout || "[]",
  ) as Array<{ ifname: string; addr_info?: Array<{ local?: string }> }>;
  return addrs.filter((l) =>
    l.ifname !== exclude && (l.addr_info ?? []).some((a) => a.local?.startsWith(base))
  ).map((l) => l.ifname);
}

/** Creates the bridge with the host-side address and brings it up. */
export async function createBridge(plan: LabPlan): Promise<void> {
  await runTool("ip", ["link", "add", plan.bridge, "type", "bridge"]);
  await runTool("ip", ["addr", "add", `${plan.bridgeIp}/24`, "dev", plan.bridge]);
  await runTool("ip", ["link", "set", plan.bridge, "up"]);
}

/** Creates a namespace only (the first step, recorded before the veth pair). */
export async function createNetns(names: NodeNames): Promise<void> {
  await runTool("ip", ["netns", "add", names.netns]);
}

/**
 * Gives a namespace its veth pair on the bridge: `eth0` with the node's address, `lo` up,
 * and an empty nftables table (accept all).
 */
export async function wireNode(plan: LabPlan, names: NodeNames, emptyRules: string): Promise<void> {
  const ns = names.netns;
  await runTool("ip", [
    "link",
    "add",
    names.hostVeth,
    "type",
    "veth",
    "peer",
    "name",
    names.peerVeth,
  ]);
  await runTool("ip", ["link", "set", names.hostVeth, "master", plan.bridge, "up"]);
  await runTool("ip", ["link", "set", names.peerVeth, "netns", ns]);
  await runTool("ip", ["-n", ns, "link", "set", names.peerVeth, "name", "eth0"]);
  await runTool("ip", ["-n", ns, "addr", "add", `${names.ip}/24`, "dev", "eth0"]);
  await runTool("ip", ["-n", ns, "link", "set", "eth0", "up"]);
  await runTool("ip", ["-n", ns, "link", "set", "lo", "up"]);
  await loadRules(ns, emptyRules);
}

/** Loads an nftables script inside namespace `netns` (one atomic transaction). */
export async function loadRules(netns: string, script: string): Promise<void> {
  await runTool("ip", ["netns", "exec", netns, "nft", "-f", "-"], { stdin: script });
}

/** The network namespaces that exist. */
export async function listNetns(): Promise<string[]> {
  const out = (await runTool("ip", ["netns", "list"], { allowFail: true })).stdout;
  return out.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter((s) => s.length > 0);
}

/** The process ids inside namespace `netns` (none when it does not exist). */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await runTool("ip", ["netns", "pids", netns], { allowFail: true });
  if (!r.ok) return [];
  return r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

/** Deletes namespace `netns`; true when it existed. */
export async function deleteNetns(netns: string): Promise<boolean> {
  return (await runTool("ip", ["netns", "delete", netns], { allowFail: true })).ok;
}

/** Deletes link `name` in the root namespace; true when it existed. */
export async function deleteLink(name: string): Promise<boolean> {
  return (await runTool("ip", ["link", "delete", name], { allowFail: true })).ok;
}

/** Whether link `name` exists in the root namespace. */
export async function linkExists(name: string): Promise<boolean> {
  return (await runTool("ip", ["link", "show", "dev", name], { allowFail: true })).ok;
}

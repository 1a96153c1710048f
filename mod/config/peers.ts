/**
 * Loaders for `machines.txt` (one `name host:port` a line, order meaningful) and
 * `peers.json` (`{cluster, secret?, nodes:[{name, host, port, role?, neighbours?, …}]}`)
 * into one {@linkcode ClusterConfig}.
 *
 * @module
 */

/** A TCP address. */
export interface HostPort {
  /** Host name or IP. */
  hostname: string;
  /** TCP port, 1..65535 (0 means "any free port" where allowed). */
  port: number;
}

/** One node of the cluster, in file order. */
export interface NodeEntry extends HostPort {
  /** Unique node name. */
  name: string;
  /** The role the file assigns, if any. */
  role?: string;
  /** Explicit overlay neighbours (gossip), by name. */
  neighbours?: string[];
  /** Any other keys of the node's JSON object: role options. */
  options: Record<string, unknown>;
}

/** A loaded peers file. */
export interface ClusterConfig {
  /** Cluster name (peers.json `cluster`, else the file name). */
  cluster: string;
  /** Cluster secret from peers.json, if any. */
  secret?: string;
  /** Nodes in file order. */
  nodes: NodeEntry[];
  /** The file it came from. */
  source: string;
  /** Top-level keys of peers.json other than cluster, secret and nodes. */
  options: Record<string, unknown>;
}

/** A config file is unusable. The message names the file, the line or key, and the problem. */
export class ConfigError extends Error {
  /** Exit code for the process: always 2 (usage or config). */
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Parses `host:port` (also `[v6]:port`); throws `ConfigError` naming `where`. */
export function parseHostPort(
  text: string,
  where = "address",
  options: { allowZero?: boolean } = {},
): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text);
  if (!m) throw new ConfigError(`${where}: "${text}" is not host:port`);
  const port = Number(m[2]);
  checkPort(port, where, options.allowZero);
  return { hostname: m[1], port };
}

function checkPort(port: unknown, where: string, allowZero = false): asserts port is number {
  if (typeof port !== "number") {
    throw new ConfigError(
      `${where}: port must be a number, got ${
        typeof port === "string"
          ? `the string ${JSON.stringify(port)}`
          : JSON.stringify(port) ?? "nothing"
      }`,
    );
  }
  if (
    typeof port !== "number" || !Number.isInteger(port) || port < (allowZero ? 0 : 1) ||
    port > 65535
  ) {
    throw new ConfigError(
      `${where}: port ${JSON.stringify(port)} is out of range ${allowZero ? 0 : 1}..65535`,
    );
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** Parses the text of a `machines.txt`. */
export function parseMachinesText(text: string, source: string): ClusterConfig {
  const nodes: NodeEntry[] = [];
  const seen = new Map<string, number>();
  const addresses = new Map<string, { name: string; line: number }>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/#.*$/, "").trim();
    if (!line) continue;
    const where = `${source}:${i + 1}`;
    const parts = line.split(/\s+/);
    let name: string;
    let addr: string;
    if (parts.length === 1) {
      addr = parts[0];
      name = parts[0];
    } else if (parts.length === 2) {
      [name, addr] = parts;
    } else {
      throw new ConfigError(
        `${where}: expected "name host:port", got ${parts.length} fields ("${
          parts.slice(2).join(" ").slice(0, 40)
        }" is too many; roles and options go in a peers.json)`,
      );
    }
    if (parts.length > 1 && !NAME_RE.test(name)) {
      throw new ConfigError(`${where}: bad node name "${name}"`);
    }
    const hp = parseHostPort(addr, where);
    if (seen.has(name)) {
      throw new ConfigError(
        `${where}: duplicate node name "${name}" (first on line ${seen.get(name)})`,
      );
    }
    seen.set(name, i + 1);
    const key = `${hp.hostname}:${hp.port}`;
    const other = addresses.get(key);
    if (other) {
      throw new ConfigError(
        `${where}: node "${name}" has the address ${key} of node "${other.name}" (line ${other.line}); each node needs its own`,
      );
    }
    addresses.set(key, { name, line: i + 1 });
    nodes.push({ name, ...hp, options: {} });
  }
  if (nodes.length === 0) throw new ConfigError(`${source}: no nodes listed`);
  return { cluster: source.replace(/^.*\//, ""), nodes, source, options: {} };
}

/** Parses the text of a `peers.json`. */
export function parsePeersJson(text: string, source: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `${source}: bad JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(`${source}: top level must be an object with "nodes"`);
  }
  const top = doc as Record<string, unknown>;
  if (!Array.isArray(top.nodes)) throw new ConfigError(`${source}: key "nodes" must be an array`);
  if (top.cluster !== undefined && typeof top.cluster !== "string") {
    throw new ConfigError(`${source}: key "cluster" must be a string`);
  }
  if (top.secret !== undefined && typeof top.secret !== "string") {
    throw new ConfigError(`${source}: key "secret" must be a string`);
  }
  const nodes: NodeEntry[] = [];
  const seen = new Map<string, number>();
  const addresses = new Map<string, number>();
  top.nodes.forEach((raw: unknown, i: number) => {
    const where = `${source}: nodes[${i}]`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new ConfigError(`${where}: must be an object`);
    }
    const n = raw as Record<string, unknown>;
    if (typeof n.name !== "string" || !NAME_RE.test(n.name)) {
      throw new ConfigError(
        `${where}.name: must be a name of letters, digits, _ . : - (got ${JSON.stringify(n.name)})`,
      );
    }
    if (seen.has(n.name)) {
      throw new ConfigError(
        `${where}.name: duplicate node name "${n.name}" (also nodes[${seen.get(n.name)}])`,
      );
    }
    seen.set(n.name, i);
    if (typeof n.host !== "string" || n.host.length === 0) {
      throw new ConfigError(`${where}.host: must be a non-empty string`);
    }
    checkPort(n.port, `${where}.port`);
    const key = `${n.host}:${n.port}`;
    const other = addresses.get(key);
    if (other !== undefined) {
      throw new ConfigError(
        `${where}: node "${n.name}" has the address ${key} of nodes[${other}] "${
          nodes[other].name
        }"; each node needs its own`,
      );
    }
    addresses.set(key, i);
    if (n.role !== undefined && typeof n.role !== "string") {
      throw new ConfigError(`${where}.role: must be a string`);
    }
    let neighbours: string[] | undefined;
    if (n.neighbours !== undefined) {
      if (!Array.isArray(n.neighbours) || n.neighbours.some((x) => typeof x !== "string")) {
        throw new ConfigError(`${where}.neighbours: must be an array of node names`);
      }
      neighbours = n.neighbours as string[];
    }
    const { name: _n, host: _h, port: _p, role: _r, neighbours: _nb, ...options } = n;
    nodes.push({
      name: n.name,
      hostname: n.host,
      port: n.port,
      role: n.role as string | undefined,
      neighbours,
      options,
    });
  });
  if (nodes.length === 0) throw new ConfigError(`${source}: "nodes" is empty`);
  for (const [i, node] of nodes.entries()) {
    for (const nb of node.neighbours ?? []) {
      if (!seen.has(nb)) {
        throw new ConfigError(`${source}: nodes[${i}].neighbours: unknown node "${nb}"`);
      }
    }
  }
  const { cluster, secret, nodes: _nodes, ...options } = top;
  return {
    cluster: (cluster as string | undefined) ?? source.replace(/^.*\//, ""),
    secret: secret as string | undefined,
    nodes,
    source,
    options,
  };
}

/** Reads a peers file, choosing the format by extension (`.json`) or first character. */
export function loadPeersFile(path: string): ClusterConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new ConfigError(`${path}: cannot read: ${why}`);
  }
  return path.endsWith(".json") || text.trimStart().startsWith("{")
    ? parsePeersJson(text, path)
    : parseMachinesText(text, path);
}

/** Finds the node called `name`; throws `ConfigError` listing the known names. */
export function findNode(config: ClusterConfig, name: string): NodeEntry {
  const node = config.nodes.find((n) => n.name === name);
  if (!node) {
    const names = config.nodes.map((n) => n.name);
    const shown = names.length > 10 ? `${names.slice(0, 10).join(", ")}, …` : names.join(", ");
    throw new ConfigError(`${config.source}: unknown --name "${name}"; nodes are ${shown}`);
  }
  return node;
}

/** Writes `nodes` as a `peers.json` text. */
export function formatPeersJson(
  nodes: Array<
    { name: string; hostname: string; port: number; role?: string; [k: string]: unknown }
  >,
  extra: { cluster?: string; secret?: string } = {},
): string {
  return JSON.stringify(
    {
      cluster: extra.cluster ?? "local",
      ...(extra.secret ? { secret: extra.secret } : {}),
      nodes: nodes.map(({ name, hostname, port, role, ...rest }) => ({
        name,
        host: hostname,
        port,
        ...(role ? { role } : {}),
        ...rest,
      })),
    },
    null,
    2,
  ) + "\n";
}

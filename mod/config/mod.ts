/**
 * Cluster configuration: `machines.txt` and `peers.json` loaders into one node list, with
 * errors that name the file, the line or key, and the problem (exit code 2).
 *
 * ```ts
 * const cluster = loadPeersFile("peers.json");
 * const self = findNode(cluster, "n1");
 * ```
 *
 * @module
 */
export {
  type ClusterConfig,
  ConfigError,
  findNode,
  formatPeersJson,
  type HostPort,
  loadPeersFile,
  type NodeEntry,
  parseHostPort,
  parseMachinesText,
  parsePeersJson,
} from "./peers.ts";
export { type LoadedTls, loadTlsFiles, type TlsFileOptions } from "./tls.ts";

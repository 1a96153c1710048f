/**
 * Cluster configuration: `machines.txt` and `peers.json` loaders into one node list, with
 * errors that name the file, the line or key, and the problem (exit code 2); and typed
 * value declarations (int, number, size, string, choice, switch) that role options and
 * ctl arguments are made of.
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
export {
  type BoolValue,
  bounds,
  checkValueJson,
  type ChoiceValue,
  describeValue,
  type FloatValue,
  formatSize,
  type IntValue,
  parseValueText,
  readSize,
  type SizeValue,
  type StringValue,
  ValueError,
  type ValueOf,
  type ValueOrDefault,
  type ValueSpec,
} from "./values.ts";

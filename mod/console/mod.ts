/**
 * The cluster console: `peerd console --peers FILE` serves one live web page for a whole
 * cluster (every node's status and events, per-role views, the multicast space-time
 * diagram), and the diagram's layout shared with `peerd trace --svg`.
 *
 * ```ts
 * const running = await startConsole(loadPeersFile("peers.json"), { signal });
 * console.log(running.url);
 * ```
 *
 * @module
 */
export {
  CONSOLE_DEFAULT_LISTEN,
  consoleCommand,
  type ConsoleOptions,
  type RunningConsole,
  startConsole,
} from "./command.ts";
export { ConsoleServer, type ConsoleServerOptions } from "./server.ts";
export {
  ClusterWatch,
  type ClusterWatchOptions,
  type NodeView,
  STREAM_SELECTION,
  streamQuery,
  type StreamSelection,
  type WatchUpdate,
} from "./watch.ts";
export {
  colourOf,
  layoutSpaceTime,
  renderSpaceTimeSvg,
  type SpaceTimeLayout,
  type SpaceTimeOptions,
} from "./assets/spacetime.js";
export {
  type NetworkEdge,
  type NetworkNode,
  networkOf,
  type NetworkView,
  unreachableFrom,
} from "./assets/network.js";

/**
 * `peerd --role replica`: a replica manager of the gossip architecture serving movie
 * ratings. This file is the process around it (options, store and dataset, server and
 * control, TCP links); the replica itself is {@linkcode ReplicaNode} (`replica_node.ts`).
 *
 * @module
 */
import { ConfigError } from "../config/mod.ts";
import {
  aborted,
  defineRole,
  linkSecurity,
  type OptionValues,
  type RoleContext,
  roleMembers,
  type RoleOptions,
  startNodeServer,
} from "../process/mod.ts";
import { prepareDataDir } from "../storage/mod.ts";
import type { FrameHandler, Message, PeerSession } from "../wire/mod.ts";
import { DatasetError, DEFAULT_SEED, generateDataset, readDatasetDir } from "./dataset.ts";
import { REPLICA_FRAME_TYPES, ReplicaNode } from "./replica_node.ts";
import { ReplicaStore } from "./replica_store.ts";
import { TcpRatingsTransport } from "./transport.ts";
import { normalize } from "./vector_ts.ts";

/** The replica role's options. */
const REPLICA_OPTIONS = {
  dataset: {
    type: "string",
    arg: "dir",
    help: "initial data: DIR/movies.csv and DIR/ratings.csv (default: synthetic, seed 42)",
  },
  gossipInterval: {
    type: "int",
    arg: "ms",
    default: 200,
    min: 1,
    help: "background gossip period",
  },
  overloadThreshold: {
    type: "int",
    default: 1000,
    min: 0,
    help: "requests in flight above which the RM reports OVERLOADED",
  },
  queryTimeout: {
    type: "int",
    arg: "ms",
    default: 5000,
    min: 1,
    help: "how long a request may wait for missing updates before unavailable",
  },
  chaosStatus: {
    type: "bool",
    help: "report random ACTIVE/OVERLOADED/OFFLINE statuses (teaching)",
  },
} as const satisfies RoleOptions;

/** Runs one replica process: store, dataset, server, control, and a {@linkcode ReplicaNode}. */
async function runReplica(
  ctx: RoleContext<OptionValues<typeof REPLICA_OPTIONS>>,
): Promise<number> {
  prepareDataDir(ctx.dataDir);
  const store = new ReplicaStore(`${ctx.dataDir}/replica.db`);
  const held: { node?: ReplicaNode } = {};
  try {
    if (!store.initialised) {
      const t0 = performance.now();
      let data;
      try {
        data = ctx.options.dataset
          ? await readDatasetDir(ctx.options.dataset)
          : generateDataset({ seed: DEFAULT_SEED });
      } catch (err) {
        if (err instanceof DatasetError) throw new ConfigError(`--dataset: ${err.message}`);
        throw err;
      }
      store.importDataset(data);
      ctx.log.info(
        `loaded ${data.movies.length} movies and ${data.ratings.length} ratings in ${
          Math.round(performance.now() - t0)
        } ms`,
      );
    }
    const transport = new TcpRatingsTransport({
      self: ctx.name,
      security: linkSecurity(ctx),
      maxFrame: ctx.maxFrame,
    });
    const peers = roleMembers(ctx, "replica").filter((n) => n.name !== ctx.name)
      .map((n) => ({ name: n.name, address: `${n.hostname}:${n.port}` }));
    const server = startNodeServer(ctx, {
      handlers: lazyHandlers(() => held.node!),
      ctl: {
        status: async () => await held.node!.statusReply(),
        drain: () => held.node!.drain(),
        resume: () => held.node!.resume(),
      },
    });
    const replica = held.node = new ReplicaNode({
      self: ctx.name,
      store,
      transport,
      peers,
      advertised: `${ctx.listen.hostname}:${server.port}`,
      events: ctx.events,
      log: ctx.log,
      gossipMs: ctx.options.gossipInterval,
      queryTimeoutMs: ctx.options.queryTimeout,
      overloadThreshold: ctx.options.overloadThreshold,
      chaosStatus: ctx.options.chaosStatus,
    });
    try {
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${server.port}`,
        peers: replica.peerNames,
        ratings: replica.manager.state.size,
        value_ts: normalize(replica.manager.valueTs),
      });
      replica.start();
      const failure = await Promise.race([aborted(ctx.signal), replica.failed]);
      if (failure) throw failure;
    } finally {
      await replica.quiesce();
      await server.close();
      await replica.stop();
    }
  } finally {
    closeStore(store, held.node);
  }
  const rm = held.node!.manager;
  ctx.events.emit("stopped", { applied: rm.applied, log_size: rm.logSize });
  return 0;
}

/** Closes the store; after a failed commit its second failure is not news. */
function closeStore(store: ReplicaStore, node: ReplicaNode | undefined): void {
  try {
    store.close();
  } catch (err) {
    if (!node?.storeFailure) throw err;
  }
}

/** The replica's handlers, looked up when a frame comes (the node exists by then). */
function lazyHandlers(node: () => ReplicaNode): Record<string, FrameHandler> {
  return Object.fromEntries(
    REPLICA_FRAME_TYPES.map((
      t,
    ) => [t, (msg: Message, session: PeerSession) => node().handlers()[t](msg, session)]),
  );
}

/** The `replica` role. */
export const replicaRole = defineRole({
  name: "replica",
  summary: "movie-ratings replica manager (gossip architecture, vector timestamps, SQLite)",
  peers: "optional",
  defaultPort: 7701,
  options: REPLICA_OPTIONS,
  examples: [
    "peerd --role replica --name rm1 --peers peers.json",
    "peerd ratings-gen --out data/movielens && peerd --role replica --name rm1 --peers peers.json --dataset data/movielens",
    "peerd ctl 127.0.0.1:7701 status",
  ],
  run: runReplica,
});

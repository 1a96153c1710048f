/**
 * The `daemon` role: one per machine. Local applications connect to it (loopback TCP, and
 * a Unix socket with `--socket`); it multiplexes all local users over one broker link, and
 * with `--mqtt` also speaks MQTT. Wiring only: the daemon itself is {@linkcode MomDaemon}.
 *
 * @module
 */
import { ConfigError, type HostPort, parseHostPort } from "../config/mod.ts";
import { aborted, defineRole, type RoleContext, startNodeServer } from "../process/mod.ts";
import type { FrameServer, PeerSession } from "../wire/mod.ts";
import { prepareDataDir } from "../storage/mod.ts";
import { DaemonStore } from "./daemon_store.ts";
import { MomDaemon } from "./daemon.ts";
import { mqttAddress, MqttGateway, mqttUsers } from "./mqtt/gateway.ts";

/** Finds the broker address: `--broker`, else the first `broker` node of the peers file. */
export function brokerAddress(
  ctx: Pick<RoleContext<{ readonly broker?: string }>, "options" | "cluster">,
): HostPort {
  const given = ctx.options.broker;
  if (given) return parseHostPort(given, "--broker");
  const node = ctx.cluster?.nodes.find((n) => n.role === "broker");
  if (node) return { hostname: node.hostname, port: node.port };
  throw new ConfigError(
    "daemon: --broker HOST:PORT is required (or a node with role broker in --peers)",
  );
}

/** The `daemon` role. */
export const daemonRole = defineRole({
  name: "daemon",
  summary: "MOM daemon: local applications' gateway to the broker, durable inbox and outbox",
  peers: "optional",
  defaultPort: 7411,
  options: {
    broker: {
      type: "string",
      arg: "host:port",
      help: "the broker (default: the peers file's broker)",
    },
    socket: { type: "string", arg: "path", help: "also listen on this Unix socket" },
    mqtt: {
      type: "string",
      arg: "[host:]port",
      help: "also speak MQTT 3.1.1 / 5.0 here (off by default; host 127.0.0.1 if omitted)",
    },
  },
  examples: [
    "peerd --role daemon --name d1 --peers peers.json --broker 127.0.0.1:7401",
    "peerd mom --daemon 127.0.0.1:7411 create",
    "peerd --role daemon --name d1 --peers peers.json --mqtt 127.0.0.1:1883",
  ],
  async run(ctx): Promise<number> {
    const broker = brokerAddress(ctx);
    prepareDataDir(ctx.dataDir);
    const store = new DaemonStore(`${ctx.dataDir}/daemon.sqlite`);
    const daemon = new MomDaemon(ctx, store, broker);
    const servers: FrameServer[] = [];
    let mqtt: MqttGateway | undefined;
    try {
      const handlers = daemon.handlers();
      const options = {
        handlers,
        ctl: {
          status: () => mqtt ? { ...daemon.status(), mqtt: mqtt.status() } : daemon.status(),
        },
        onSessionClose: (s: PeerSession) => daemon.sessionClosed(s),
      };
      servers.push(startNodeServer(ctx, options));
      const socket = ctx.options.socket;
      if (socket) {
        try {
          await Deno.remove(socket);
        } catch {
          // no stale socket
        }
        servers.push(startNodeServer(ctx, { ...options, listen: { path: socket } }));
      }
      daemon.start();
      const mqttListen = mqttAddress(ctx.options.mqtt);
      if (mqttListen) {
        mqtt = new MqttGateway(daemon, handlers, {
          listen: mqttListen,
          dataDir: ctx.dataDir,
          events: ctx.events,
          log: ctx.log,
          users: mqttUsers(ctx),
          secret: ctx.secret,
        });
        mqtt.start();
      }
      ctx.events.emit("ready", {
        listen: `${ctx.listen.hostname}:${servers[0].port}`,
        socket: socket ?? null,
        broker: `${broker.hostname}:${broker.port}`,
        mqtt: mqtt ? `${mqttListen!.hostname}:${mqtt.port}` : null,
      });
      ctx.log.info(`daemon listening on ${ctx.listen.hostname}:${servers[0].port}`);
      const failure = await Promise.race([aborted(ctx.signal), daemon.failed]);
      if (failure) throw failure;
    } finally {
      await mqtt?.close();
      await Promise.all(servers.map((s) => s.close()));
      await daemon.close();
      store.close();
      ctx.events.emit("stopped", {});
    }
    return 0;
  },
});

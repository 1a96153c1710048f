/**
 * MOM: topic publish/subscribe with a broker, one daemon per machine, and nothing lost.
 * Roles `broker` and `daemon`, the application API ({@linkcode MomClient}), and the
 * `peerd mom` command.
 *
 * ```ts
 * await using mom = await MomClient.connect({ hostname: "127.0.0.1", port: 7411 });
 * const me = await mom.create();
 * await me.subscribe("Museum/#");
 * await me.publish("Museum/Doors/Door0", "open");
 * ```
 *
 * @module
 */
export { Broker } from "./broker.ts";
export { brokerRole } from "./broker_role.ts";
export { MomDaemon } from "./daemon.ts";
export { brokerAddress, daemonRole } from "./daemon_role.ts";
export { MomClient, MomError, type MomMessage, MomUser } from "./client.ts";
export { DEFAULT_DAEMON, momCommand } from "./cli.ts";
export { momDemo } from "./demo.ts";
export {
  checkPattern,
  checkTopic,
  isWildcard,
  MAX_TOPIC_BYTES,
  TopicError,
  topicMatches,
} from "./topic.ts";
export {
  MAX_PAYLOAD_BYTES,
  MAX_RECEIVE_BATCH,
  MOM_FRAMES,
  MOM_ROUTES,
  MomErrorCode,
} from "./protocol.ts";
export * as mqtt from "./mqtt/mod.ts";

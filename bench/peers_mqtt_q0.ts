/**
 * peers-bench: its own `mosquitto` adapter (mqtt.js, QoS 0), loaded from the peers-bench
 * folder and unchanged, under the name `peerdq0` (see `peers_mqtt_adapters.ts`).
 *
 * @module
 */
import { peersBenchAdapter } from "./peers_mqtt_adapters.ts";

/** The `mosquitto` adapter, to be pointed at a peerd daemon's MQTT port. */
export const adapter = await peersBenchAdapter("mqtt.ts", "peerdq0");

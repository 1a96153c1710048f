/**
 * peers-bench: its own `mosquittop` adapter (mqtt.js, QoS 1, persistent sessions), loaded
 * from the peers-bench folder and unchanged, under the name `peerdq1`.
 *
 * @module
 */
import { peersBenchAdapter } from "./peers_mqtt_adapters.ts";

/** The `mosquittop` adapter, to be pointed at a peerd daemon's MQTT port. */
export const adapter = await peersBenchAdapter("mqtt_qos1.ts", "peerdq1");

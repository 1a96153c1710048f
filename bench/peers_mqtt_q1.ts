/** peers-bench: its `mosquittop` adapter (mqtt.js, QoS 1, persistent sessions), unchanged, named `peerdq1`. */
// @ts-ignore: resolved by peers-bench's import map when run there
import { adapter as mosquittop } from "/work/shared/peers-bench/adapters/mqtt_qos1.ts";

/** The same adapter, pointed at a peerd daemon's MQTT port. */
export const adapter = { ...mosquittop, name: "peerdq1", defaultUrl: "mqtt://127.0.0.1:1883" };

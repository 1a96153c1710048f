/** peers-bench: its `mosquitto` adapter (mqtt.js, QoS 0), unchanged, named `peerdq0` (see peers_mqtt_adapters.ts). */
// @ts-ignore: resolved by peers-bench's import map when run there
import { adapter as mosquitto } from "/work/shared/peers-bench/adapters/mqtt.ts";

/** The same adapter, pointed at a peerd daemon's MQTT port. */
export const adapter = { ...mosquitto, name: "peerdq0", defaultUrl: "mqtt://127.0.0.1:1883" };

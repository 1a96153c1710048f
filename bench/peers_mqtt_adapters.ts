/**
 * peers-bench adapters for peerd's MQTT listener: the very `mosquitto` (mqtt.js, QoS 0) and
 * `mosquittop` (mqtt.js, QoS 1, persistent sessions) adapters of `/work/shared/peers-bench`,
 * under other names so that one run measures the same client against Mosquitto and against
 * a peerd daemon's `--mqtt` port (`PEERS_URL_peerdq0`, `PEERS_URL_peerdq1`).
 *
 * ```sh
 * PEERS_ADAPTER_peerdq0=$PWD/bench/peers_mqtt_q0.ts PEERS_ADAPTER_peerdq1=$PWD/bench/peers_mqtt_q1.ts \
 * PEERS_URL_peerdq0=mqtt://127.0.0.1:1883 PEERS_URL_peerdq1=mqtt://127.0.0.1:1883 \
 * SERVERS="mosquitto mosquittop" BROKERS="mosquitto peerdq0 mosquittop peerdq1" bash run-all.sh
 * ```
 *
 * @module
 */
export const PEERS_BENCH = "/work/shared/peers-bench";

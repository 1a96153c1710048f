/**
 * peers-bench adapters for peerd's MQTT listener: the very `mosquitto` (mqtt.js, QoS 0) and
 * `mosquittop` (mqtt.js, QoS 1, persistent sessions) adapters of peers-bench, under other
 * names, so that one run measures the same client against Mosquitto and against a peerd
 * daemon's `--mqtt` port (`PEERS_URL_peerdq0`, `PEERS_URL_peerdq1`). The peers-bench folder
 * is `PEERS_BENCH_DIR` (default `../shared/peers-bench` beside the repo).
 *
 * ```sh
 * PEERS_ADAPTER_peerdq0=$PWD/bench/peers_mqtt_q0.ts PEERS_ADAPTER_peerdq1=$PWD/bench/peers_mqtt_q1.ts \
 * PEERS_URL_peerdq0=mqtt://127.0.0.1:1883 PEERS_URL_peerdq1=mqtt://127.0.0.1:1883 \
 * SERVERS="mosquitto mosquittop" BROKERS="mosquitto peerdq0 mosquittop peerdq1" bash run-all.sh
 * ```
 *
 * @module
 */

/** Loads peers-bench's adapter `file` and renames it. */
export async function peersBenchAdapter(file: string, name: string): Promise<unknown> {
  // the repo's bench/ → the repo → ../shared/peers-bench beside it
  const dir = Deno.env.get("PEERS_BENCH_DIR") ??
    new URL("../../shared/peers-bench", import.meta.url).pathname;
  const path = `${dir}/adapters/${file}`;
  const { adapter } = await import(path.startsWith("/") ? `file://${path}` : path);
  return { ...adapter, name, defaultUrl: "mqtt://127.0.0.1:1883" };
}

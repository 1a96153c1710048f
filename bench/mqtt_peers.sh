#!/usr/bin/env bash
# peers-bench's own `mosquitto` (mqtt.js, QoS 0) and `mosquittop` (mqtt.js, QoS 1, persistent
# sessions) adapters, unmodified, against Mosquitto (plain and with persistence) and against
# a peerd broker + daemon with `--mqtt` in one run: same client, same workload, same machine.
#   bash bench/mqtt_peers.sh            # REPS=3 N=100000 by default
#   PEERS_BENCH=<folder> bash bench/mqtt_peers.sh   # peers-bench elsewhere than ../shared/peers-bench
# Starts peerd on free loopback ports with fresh data dirs and stops it by PID; peers-bench
# starts and stops its own Mosquitto servers. Results: bench/mom/mqtt_peers-<UTC time>.jsonl,
# then peers-bench's table ("server CPU" of peerd is the daemon process).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PB="$(cd "${PEERS_BENCH:-$PWD/../shared/peers-bench}" && pwd)"
. bench/peers_lib.sh
BROKER=$(free_port)
DAEMON=$(free_port)
MQTT=$(free_port)
DATA=$(mktemp -d /tmp/peerd-mqtt-bench-XXXX)
deno run -A main.ts --role broker --name b1 --listen "127.0.0.1:$BROKER" --data "$DATA/b1" \
  --log-level warn &
PIDS+=($!)
deno run -A main.ts --role daemon --name d1 --listen "127.0.0.1:$DAEMON" --data "$DATA/d1" \
  --broker "127.0.0.1:$BROKER" --mqtt "127.0.0.1:$MQTT" --log-level warn &
DPID=$!
PIDS+=("$DPID")
for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$MQTT") 2>/dev/null && break; sleep 0.1; done
# ready for MQTT once the broker link is up (a new session needs the catalogue)
for _ in $(seq 1 200); do
  deno run -A main.ts ctl "127.0.0.1:$DAEMON" status 2>/dev/null | grep -q '"link": *"up"' && break
  sleep 0.1
done
mkdir -p bench/mom
MQ=$(free_port)
MQP=$(free_port)
RESULTS="$REPO/bench/mom/mqtt_peers-$(date -u +%Y%m%dT%H%MZ).jsonl"
(cd "$PB" && PEERS_BENCH_DIR="$PB" PEERS_BENCH_WORK="${PEERS_BENCH_WORK:-/tmp/pbw-mqtt}" \
  MQTT_PORT="$MQ" MQTTP_PORT="$MQP" SERVERS="mosquitto mosquittop" \
  PEERS_URL_mosquitto="mqtt://127.0.0.1:$MQ" PEERS_URL_mosquittop="mqtt://127.0.0.1:$MQP" \
  BROKERS="${BROKERS:-mosquitto peerdq0 mosquittop peerdq1}" QUEUE_BROKERS=" " SKIP_TCP=1 \
  PEERS_ADAPTER_peerdq0="$REPO/bench/peers_mqtt_q0.ts" \
  PEERS_ADAPTER_peerdq1="$REPO/bench/peers_mqtt_q1.ts" \
  PEERS_URL_peerdq0="mqtt://127.0.0.1:$MQTT" PEERS_URL_peerdq1="mqtt://127.0.0.1:$MQTT" \
  PEERS_PID_peerdq0="$DPID" PEERS_PID_peerdq1="$DPID" PEERS_PROJECT_CONFIG="$REPO/deno.json" \
  REPS="${REPS:-3}" N="${N:-100000}" RESULTS="$RESULTS" bash run-all.sh)

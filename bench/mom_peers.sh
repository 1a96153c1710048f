#!/usr/bin/env bash
# peers-bench's fan-out and latency workloads with peerd's MOM adapter (bench/peers_adapter.ts)
# beside Mosquitto and Redis, in one run; with BEFORE=<another checkout of peerd> the same run
# also measures that tree (adapter `peerdbefore`), so before and after share the machine's state:
#   bash bench/mom_peers.sh                      # REPS=3 N=100000 by default
#   BEFORE=../peerd-old bash bench/mom_peers.sh
# Each tree gets one broker and one daemon on free loopback ports with fresh data dirs, stopped by
# PID at the end; peers-bench starts and stops its own servers. Results:
# bench/mom/peers-<UTC time>.jsonl, then peers-bench's table.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PB="${PEERS_BENCH:-$PWD/../shared/peers-bench}"
. bench/peers_lib.sh
DATA=$(mktemp -d /tmp/peerd-mom-bench-XXXX)
# start_tree DIR LABEL: a broker and a daemon of the checkout DIR; sets DAEMON_PORT, BROKER_PID
start_tree() {
  local dir=$1 label=$2 bport dport
  bport=$(free_port)
  dport=$(free_port)
  (cd "$dir" && exec deno run -A main.ts --role broker --name b1 --listen "127.0.0.1:$bport" \
    --data "$DATA/$label-b1" --log-level warn) &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  (cd "$dir" && exec deno run -A main.ts --role daemon --name d1 --listen "127.0.0.1:$dport" \
    --data "$DATA/$label-d1" --broker "127.0.0.1:$bport" --log-level warn) &
  PIDS+=($!)
  for _ in $(seq 1 200); do (echo >"/dev/tcp/127.0.0.1/$dport") 2>/dev/null && break; sleep 0.1; done
  DAEMON_PORT=$dport
}
start_tree "$REPO" now
NOW_PORT=$DAEMON_PORT
NOW_PID=$BROKER_PID
ENVS=(PEERS_ADAPTER_peerd="$REPO/bench/peers_adapter.ts" PEERS_URL_peerd="tcp://127.0.0.1:$NOW_PORT"
  PEERS_PID_peerd="$NOW_PID")
BROKERS_DEFAULT="mosquitto redis peerd"
if [ -n "${BEFORE:-}" ]; then
  BEFORE=$(cd "$BEFORE" && pwd)
  start_tree "$BEFORE" before
  ENVS+=(PEERS_ADAPTER_peerdbefore="$BEFORE/bench/peers_adapter.ts"
    PEERS_URL_peerdbefore="tcp://127.0.0.1:$DAEMON_PORT" PEERS_PID_peerdbefore="$BROKER_PID")
  BROKERS_DEFAULT="mosquitto redis peerdbefore peerd"
fi
mkdir -p bench/mom
RESULTS="$REPO/bench/mom/peers-$(date -u +%Y%m%dT%H%MZ).jsonl"
(cd "$PB" && env "${ENVS[@]}" PEERS_BENCH_WORK="${PEERS_BENCH_WORK:-/tmp/pbw-mom}" \
  SERVERS="${SERVERS:-mosquitto redis}" BROKERS="${BROKERS:-$BROKERS_DEFAULT}" QUEUE_BROKERS=" " \
  SKIP_TCP=1 PEERS_PROJECT_CONFIG="$REPO/deno.json" REPS="${REPS:-3}" N="${N:-100000}" \
  RESULTS="$RESULTS" bash run-all.sh)

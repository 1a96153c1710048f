#!/usr/bin/env bash
# peers-bench's own `rabbitmq` adapter (amqplib, unmodified) against RabbitMQ and against
# `peerd --role queue --amqp` in one run: same client, same workload, same machine.
#   bash bench/amqp_peers.sh            # REPS=3 N=100000 by default
# Starts peerd on free loopback ports with a fresh data dir and stops it by PID; peers-bench
# starts and stops its own RabbitMQ. Results: bench/amqp/peers-<UTC time>.jsonl, then a table.
set -euo pipefail
cd "$(dirname "$0")/.."
PB="${PEERS_BENCH:-$PWD/../shared/peers-bench}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NATIVE=$(free_port)
AMQP=$(free_port)
DATA=$(mktemp -d /tmp/peerd-amqp-bench-XXXX)
deno run -A main.ts --role queue --name qbench --listen "127.0.0.1:$NATIVE" --data "$DATA" \
  --amqp "127.0.0.1:$AMQP" --log-level warn &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$AMQP") 2>/dev/null && break; sleep 0.1; done
mkdir -p bench/amqp
RESULTS="$PWD/bench/amqp/peers-$(date -u +%Y%m%dT%H%MZ).jsonl"
(cd "$PB" && PEERS_ADAPTER_peerdamqp="$PB/adapters/amqp.ts" \
  PEERS_URL_peerdamqp="amqp://guest:guest@127.0.0.1:$AMQP" PEERS_PID_peerdamqp="$PID" \
  SERVERS=rabbitmq BROKERS="rabbitmq peerdamqp" QUEUE_BROKERS="rabbitmq peerdamqp" SKIP_TCP=1 \
  REPS="${REPS:-3}" N="${N:-100000}" RESULTS="$RESULTS" bash run-all.sh)

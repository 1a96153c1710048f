#!/usr/bin/env bash
# Where the one-subscriber fan-out's client time goes: peers-bench's own `bench.ts --test fanout
# --subs 1` (its amqp adapter, amqplib, unmodified) against `peerd --role queue --amqp` (or the
# AMQP server at URL with PID), with the benchmark process's threads read from /proc: the
# publisher (the main thread), the subscriber (its Web Worker) and V8's helper threads, as CPU µs
# per message, and how busy the publisher was during the measured phase. A run with --n 1000
# gives the cost of starting, connecting and the 10,000-message warm-up, which is subtracted.
#   bash bench/amqp_fanout_threads.sh                 # REPS=3 N=300000, against this tree's peerd
#   URL=amqp://guest:guest@127.0.0.1:5672 PID=<server pid> bash bench/amqp_fanout_threads.sh
# Needs peers-bench's tool and client set up once (`bash bench/amqp_peers.sh` does it).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/peers_lib.sh
PB="${PEERS_BENCH:-$PWD/../shared/peers-bench}"
WORK="${PEERS_BENCH_WORK:-/tmp/peers-bench-work}"
DENO="$WORK/tool/node_modules/.bin/deno"
CFG="$WORK/deps/deno.json"
[ -d "$PB" ] || { echo "no peers-bench at $PB (set PEERS_BENCH)" >&2; exit 1; }
[ -x "$DENO" ] && [ -f "$CFG" ] || { echo "peers-bench is not set up: run bash bench/amqp_peers.sh once" >&2; exit 1; }
N="${N:-300000}"
if [ -z "${URL:-}" ]; then
  NATIVE=$(free_port)
  AMQP=$(free_port)
  DATA=$(mktemp -d /tmp/peerd-amqp-threads-XXXX)
  deno run -A main.ts --role queue --name qthreads --listen "127.0.0.1:$NATIVE" --data "$DATA" \
    --amqp "127.0.0.1:$AMQP" --log-level warn &
  PID=$!
  PIDS+=("$PID")
  URL="amqp://guest:guest@127.0.0.1:$AMQP"
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$AMQP") 2>/dev/null && break; sleep 0.1; done
fi
OUT=$(mktemp /tmp/peerd-amqp-threads-XXXX.jsonl)
trap 'cleanup; rm -f "$OUT" "$OUT.err"' EXIT
# one bench.ts run with n messages: prints "<duration_s> <rate> <main> <worker> <v8 helpers>" (ticks)
one() {
  (cd "$PB" && PEERS_ADAPTER_peerdamqp="$PB/adapters/amqp.ts" exec "$DENO" run --config "$CFG" \
    --allow-net=127.0.0.1 --allow-read --allow-env --allow-sys --allow-run=cat bench.ts \
    --broker peerdamqp --test fanout --subs 1 --n "$1" --size 100 --server-pid "$PID" \
    --url "$URL" >"$OUT" 2>"$OUT.err") &
  local b=$! last="" s
  while kill -0 "$b" 2>/dev/null; do # sampled until it exits: the last full sample is its total
    s=$(python3 - "$b" <<'PY' 2>/dev/null || true
import glob, sys
t = {"main": 0, "worker": 0, "v8": 0}
for p in glob.glob(f"/proc/{sys.argv[1]}/task/*/stat"):
    try:
        x = open(p).read()
    except OSError:
        continue
    name = x[x.index("(") + 1:x.rindex(")")]
    f = x[x.rindex(")") + 2:].split()
    k = "worker" if name.startswith("worker") else "v8" if name.startswith("V8") else "main" if name == "deno" else None
    if k:
        t[k] += int(f[11]) + int(f[12])
print(t["main"], t["worker"], t["v8"])
PY
)
    # an exiting process's threads read as gone (0): keep the last sample that saw them
    [ -n "$s" ] && [ "${s%% *}" != 0 ] && last=$s
    sleep 0.05
  done
  wait "$b" || true
  python3 - "$OUT" "$last" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
print(r.get("duration_s"), r.get("total_rate"), sys.argv[2])
PY
}
echo "n=$N load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rep  msgs/s   publisher µs/msg  busy  subscriber µs/msg  V8 helpers µs/msg"
for rep in $(seq 1 "${REPS:-3}"); do
  read -r _ _ bm bw bv <<<"$(one 1000)"
  read -r dur rate m w v <<<"$(one "$N")"
  python3 - "$rep" "$N" "$dur" "$rate" "$m" "$w" "$v" "$bm" "$bw" "$bv" <<'PY'
import sys
rep, n, dur, rate, m, w, v, bm, bw, bv = sys.argv[1:]
n, dur = int(n) - 1000, float(dur)
us = lambda a, b: (int(a) - int(b)) * 10_000 / n
print(f"{rep:>3}  {rate:>7}  {us(m, bm):16.2f}  {(int(m) - int(bm)) / 100 / dur:4.0%}  "
      f"{us(w, bw):17.2f}  {us(v, bv):17.2f}")
PY
done

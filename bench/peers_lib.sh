# Shared by the bench/*_peers.sh scripts (sourced, not run): free loopback ports, and the
# processes a script starts (PIDS) stopped by PID with its data directory (DATA) removed on exit.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${DATA:-}" ] && rm -rf "$DATA"
}
trap cleanup EXIT

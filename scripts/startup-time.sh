#!/usr/bin/env bash
# Seconds from `deja serve` to a 200 from /ready: on a fresh data directory (first start:
# initdb, migrations), then again on the same directory (a restart). Usage: scripts/startup-time.sh [PORT]
set -euo pipefail
port="${1:-8765}"
deja="$(dirname "$0")/../.venv/bin/deja"
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT

measure() {
  local started now
  started=$(date +%s.%N)
  DEJA_DATA_DIR="$data" DEJA_PORT="$port" DEJA_LOG_LEVEL=WARNING "$deja" serve >"$data/serve.log" 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { cat "$data/serve.log"; exit 1; }
    sleep 0.1
  done
  now=$(date +%s.%N)
  python3 -c "print(f'$1 to ready: {$now - $started:.1f} s')"
}

measure "first start"
kill -TERM "$pid"; wait "$pid" || true
measure "restart"
kill -TERM "$pid"; wait "$pid" || true

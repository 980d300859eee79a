#!/usr/bin/env bash
# Exact-hit throughput of `deja serve` at several worker counts, driven by wrk (which must be
# installed): the measurement behind the default of DEJA_WORKERS. One fresh embedded Postgres,
# one stored entry looked up again and again through POST /v1/cache/lookup.
# Usage: scripts/workers_bench.sh [WORKER_COUNTS="1 2 3"] [SECONDS=15] [CONNECTIONS=32]
set -euo pipefail
cd "$(dirname "$0")/.."
counts="${1:-1 2 3}"; seconds="${2:-15}"; connections="${3:-32}"
deja="${DEJA:-$(command -v deja || echo .venv/bin/deja)}"
port="${PORT:-8094}"
data="$(mktemp -d)"
export DEJA_DATA_DIR="$data" DEJA_LOG_LEVEL=WARNING
server=""
stop() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; server=""; }
trap 'stop; rm -rf "$data"' EXIT
start() {
  "$deja" serve --port "$port" --workers "$1" >"$data/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return
    sleep 0.5
  done
  cat "$data/serve.log"; exit 1
}
start 1
key="$("$deja" tenants create "workers-$(date +%s)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
body='{"model":"gpt-4o-mini","prompt":"What was the Q3 2023 budget for project Nova?"}'
curl -fsS -X POST "http://127.0.0.1:$port/v1/cache/entries" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' \
  -d '{"model":"gpt-4o-mini","prompt":"What was the Q3 2023 budget for project Nova?","response":"1.2 M"}' >/dev/null
cat >"$data/lookup.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
stop
echo "nproc $(nproc); wrk -t1 -c$connections -d${seconds}s, POST /v1/cache/lookup (exact hit)"
for workers in $counts; do
  start "$workers"
  wrk -t1 -c"$connections" -d3s -s "$data/lookup.lua" "http://127.0.0.1:$port/v1/cache/lookup" >/dev/null  # warm-up
  echo "== workers $workers, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$data/lookup.lua" "http://127.0.0.1:$port/v1/cache/lookup" \
    | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx|Socket errors'
  stop
done

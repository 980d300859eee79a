#!/usr/bin/env bash
# Déjà beside GPTCache in one run of the side-by-side harness (peer_bench: its README sets up
# GPTCache's venv under $PEER): a fresh Déjà (own embedded Postgres in a temp folder) pinned to
# the same CPU as the peer, a fresh tenant at the default policy, both targets' classes interleaved.
# Usage: scripts/peer_bench.sh PEER_BENCH_DIR [N=2000] [extra loadgen args...]
# Env: PEER (the harness's scratch folder), SERVER_CPUS=1 CLIENT_CPUS=0 PORT=8093, and the
# harness's own (CONC, DUR, WARMUP, COS...). Results: $PEER/results/bench-<TAG>.{txt,json}.
set -euo pipefail
harness="$(cd "${1:?usage: scripts/peer_bench.sh PEER_BENCH_DIR [N] [loadgen args]}" && pwd)"; shift
n="${1:-2000}"; shift || true
cd "$(dirname "$0")/.."
venv="${VENV_DEJA:-.venv}"
[ -x "$venv/bin/deja" ] || venv="$(dirname "$(dirname "$(command -v deja)")")"
port="${PORT:-8093}"
data="$(mktemp -d)"
export DEJA_DATA_DIR="$data"
taskset -c "${SERVER_CPUS:-1}" "$venv/bin/deja" serve --port "$port" >"$data/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    kill -0 $server || { cat "$data/serve.log"; exit 1; }
    sleep 1
done
key="$("$venv/bin/deja" tenants create "peer-bench-$(date +%s)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
postmaster="$(head -1 "$data/pg/postmaster.pid")"
# Postgres must run where the server runs (the README's rule: both servers on the same CPU set).
taskset -a -c -p "${SERVER_CPUS:-1}" "$postmaster" >/dev/null
for child in $(pgrep -P "$postmaster"); do taskset -c -p "${SERVER_CPUS:-1}" "$child" >/dev/null; done
DEJA_URL="http://127.0.0.1:$port" DEJA_TENANT_KEY="$key" DEJA_PIDS="$server $postmaster" \
    TAG="${TAG:-n$n-deja}" "$harness/bench.sh" "$n" --deja-key "$key" "$@"

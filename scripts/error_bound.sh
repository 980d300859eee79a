#!/usr/bin/env bash
# The figures of docs/error-bound.md. Builds a labelled stream from the held-out validation
# intents, starts the fake model answering from that same file and a fresh Déjà (embedded
# Postgres in a temporary directory), sets a tenant's {"max_error_rate": 0.02,
# "answer_judge": "exact"} through PATCH /admin/tenants/{id}, and replays the stream; then the
# same stream on fresh tenants with the fixed decision: as shipped (the default settings),
# and stricter (>= 0.95, 0.97, 0.98).
# Writes docs/error-bound/replay.{json,png} and labels.txt (what the bound learnt).
# Usage: scripts/error_bound.sh   (env: PYTHON, SEED, QUESTIONS, MAX_ERROR_RATE, OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
out="${OUT:-docs/error-bound}"
rate="${MAX_ERROR_RATE:-0.02}"
work="$(mktemp -d)"
chmod 755 "$work"  # the embedded Postgres may run as an unprivileged user
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fake_port="$(free_port)"
deja_port="$(free_port)"
admin="replay-admin-token-$RANDOM$RANDOM"
mkdir -p "$out"

"$py" -m app.toolkit.replay.stream --out "$work/stream.jsonl" --seed "${SEED:-7}" --questions "${QUESTIONS:-60}"
"$py" -m app.cli fake-llm --port "$fake_port" --answers "$work/stream.jsonl" >"$work/fake.log" 2>&1 &
pids+=($!)
OPENAI_BASE_URL="http://127.0.0.1:$fake_port/v1" OPENAI_API_KEY=unused DEJA_DATA_DIR="$work/data" \
  DEJA_ADMIN_TOKEN="$admin" DEJA_LOG_LEVEL=WARNING \
  "$py" -m app.cli serve --port "$deja_port" >"$work/deja.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$deja_port"
for _ in $(seq 120); do curl -fs "$url/ready" >/dev/null 2>&1 && break; sleep 1; done
curl -fs "$url/ready" >/dev/null || { cat "$work/deja.log"; exit 1; }

created="$(curl -fs -X POST "$url/admin/tenants" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' -d '{"name": "bounded"}')"
tenant_id="$(echo "$created" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["id"])')"
key="$(echo "$created" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["api_key"]["api_key"])')"
curl -fs -X PATCH "$url/admin/tenants/$tenant_id" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' \
  -d "{\"settings\": {\"max_error_rate\": $rate, \"answer_judge\": \"exact\"}}" >/dev/null

"$py" -m app.cli replay "$work/stream.jsonl" --url "$url" --key "$key" --admin-key "$admin" --compare \
  --compare-settings '{"cross_encoder_min_score": 0.95}' --compare-settings '{"cross_encoder_min_score": 0.97}' \
  --compare-settings '{"cross_encoder_min_score": 0.98}' \
  --target "$rate" --plot "$out/replay.png" --json > "$out/replay.json"
# What the bound learnt: the bounded tenant's labels by cross-encoder score band, and the
# learning cost per day, read with `deja psql` from the same embedded Postgres.
DEJA_DATA_DIR="$work/data" "$py" -m app.cli psql > "$out/labels.txt" <<SQL
SET deja.system = 'on';
SELECT CASE WHEN score < 0.5 THEN 'a. below 0.5' WHEN score < 0.8 THEN 'b. 0.5 - 0.8'
            WHEN score < 0.9 THEN 'c. 0.8 - 0.9' WHEN score < 0.95 THEN 'd. 0.9 - 0.95'
            WHEN score < 0.97 THEN 'e. 0.95 - 0.97' WHEN score < 0.98 THEN 'f. 0.97 - 0.98'
            ELSE 'g. 0.98 and above' END AS cross_encoder_score,
       count(*) AS labels, round(avg(correct::int), 3) AS right_share
FROM cache_labels WHERE tenant_id = '$tenant_id' GROUP BY 1 ORDER BY 1;
SELECT requests, explored_requests, round(explored_cost_usd, 6) AS explored_cost_usd, labels, wrong_labels
FROM analytics.learning_daily WHERE tenant_id = '$tenant_id';
SQL
cat "$out/labels.txt"
"$py" - "$out/replay.json" <<'PY'
import json, sys
for run in json.load(open(sys.argv[1]))["runs"]:
    run.pop("curves")
    print(json.dumps(run))
PY

#!/usr/bin/env bash
# The wheel is complete: build it, install it into a fresh virtual environment outside the
# checkout (serving dependencies only, no PyTorch), start `deja serve` on a fresh data
# directory, wait for /ready, create a tenant with the CLI, call the API with its key, stop.
# Nothing is read from the checkout after the build. Run by .ci/run (`make wheel-check`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
CHECKOUT=$PWD
work=$(mktemp -d /tmp/deja-wheel-XXXXXX)
server=""
cleanup() {
  if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s)

echo "== [$(( $(date +%s) - started )) s] building the wheel"
[[ -d build ]] && had_build=1 || had_build=0
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$CHECKOUT"
[[ $had_build == 1 ]] || rm -rf build  # setuptools' build tree: leave the checkout as it was
wheel=$(ls "$work"/dist/deja-*.whl)
"$PYTHON" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["app/_resources/alembic.ini", "app/_resources/migrations/env.py",
          "app/_resources/sql/views/01_requests.sql", "app/_resources/sql/queries/hit_rate_last_7_days.sql",
          "app/cache/models/minilm-l6-v2-int8/model.onnx",
          "app/cache/models/verifier-minilm-int8/model.onnx", "app/cache/models/verifier-over-text-int8/model.onnx",
          "app/static/swagger-ui/swagger-ui-bundle.js",
          "app/ui/templates/base.html", "app/ui/templates/overview.html", "app/ui/static/dashboard.js",
          "app/ui/static/style.css", "app/_resources/docs/quality/langcache_held_out.json"]
missing = [n for n in needed if n not in names]
if missing:
    sys.exit(f"wheel-check: not in the wheel: {', '.join(missing)}")
PY

echo "== [$(( $(date +%s) - started )) s] installing $(basename "$wheel") into a fresh venv"
"$PYTHON" -m venv "$work/venv"
# pip's cache makes this a copy after the first run; the constraints pin what CI tested.
"$work/venv/bin/pip" install --quiet -c "$CHECKOUT/constraints.txt" "$wheel"
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "wheel-check: PyTorch was installed with the wheel" >&2
  exit 1
fi
echo "   venv: $(du -sm "$work/venv" | cut -f1) MB"

cd "$work"  # away from the checkout: migrations and SQL must come from the package
export DEJA_DATA_DIR="$work/data" DEJA_LOG_LEVEL=WARNING OPENAI_API_KEY=unused
unset DEJA_DATABASE_URL
port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

echo "== [$(( $(date +%s) - started )) s] deja serve on $base"
"$work/venv/bin/deja" --version
"$work/venv/bin/deja" serve --port "$port" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 240); do
  if curl -fsS "$base/ready" > /dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    cat "$work/serve.log" >&2
    echo "wheel-check: deja serve exited before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
curl -fsS "$base/ready" > /dev/null || { cat "$work/serve.log" >&2; echo "wheel-check: /ready never answered" >&2; exit 1; }
echo "   ready"

echo "== [$(( $(date +%s) - started )) s] deja tenants create"
created=$("$work/venv/bin/deja" tenants create wheel-check)
key=$(printf '%s' "$created" | "$work/venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
curl -fsS "$base/v1/usage" -H "Authorization: Bearer $key" > /dev/null \
  || { echo "wheel-check: the new tenant's key was refused" >&2; exit 1; }
models=$(curl -fsS "$base/v1/models" -H "Authorization: Bearer $key")
case $models in *'"object":"list"'*) ;; *) echo "wheel-check: /v1/models answered $models" >&2; exit 1 ;; esac
curl -fsS "$base/schema/swagger" > /dev/null && curl -fsS "$base/static/swagger-ui/swagger-ui-bundle.js" > /dev/null \
  || { echo "wheel-check: the API docs or their assets are missing" >&2; exit 1; }
curl -fsS "$base/ui/login" | grep -q 'name="token"' && curl -fsS "$base/ui/static/style.css" > /dev/null \
  || { echo "wheel-check: the dashboard's sign-in page or its static files are missing" >&2; exit 1; }
echo "   tenant created, its key accepted; /v1/models, the API docs and the dashboard's sign-in served"

kill -TERM "$server"
wait "$server" || { cat "$work/serve.log" >&2; echo "wheel-check: deja serve did not stop cleanly" >&2; exit 1; }
server=""
echo "wheel-check: passed in $(( $(date +%s) - started )) s"

#!/usr/bin/env bash
# The figures of docs/quality.md: `deja eval --compare` on both labelled files (and on the
# project's own validation pairs when given), JSON and plots into docs/quality/.
# Usage: scripts/quality.sh [DATA_DIR] [VALIDATION_JSONL]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
out=docs/quality
mkdir -p "$out"
run() {  # name, pairs file
  .venv/bin/deja eval --pairs "$2" --compare --json --plot "$out/$1.png" > "$out/$1.json"
  .venv/bin/python - "$out/$1.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for run in report["runs"]:
    d, c = run["deja"], run["cosine_0.9"]
    print(f"{run['name']:60s} P={d['precision']:.3f} R={d['recall']:.3f} false-hit={d['false_hit_rate']:.3f}"
          f" | cosine>=0.9 P={c['precision']:.3f} R={c['recall']:.3f}")
PY
}
run langcache "$data/langcache_chat_pairs.csv"
run paws "$data/paws_wiki_test.tsv"
if [ -n "${2:-}" ]; then run validation "$2"; fi

#!/usr/bin/env bash
# The figures of docs/quality.md: `deja eval --compare` (the full decision, and the decision
# without the cross-encoder, beside plain cosine >= 0.9) on both labelled files, and on the
# pairs the shipped cross-encoder never saw in training. JSON and plots go to docs/quality/.
# Usage: scripts/quality.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
out=docs/quality
held="$(mktemp -d)"
trap 'rm -rf "$held"' EXIT
mkdir -p "$out"
.venv/bin/python scripts/held_out_pairs.py "$data" "$held"
run() {  # name, pairs file
  .venv/bin/deja eval --pairs "$2" --compare --json --plot "$out/$1.png" > "$out/$1.json"
  .venv/bin/python - "$out/$1.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for run in report["runs"]:
    d, c = run["deja"], run["cosine_0.9"]
    print(f"{run['name']:50s} P={d['precision']:.3f} R={d['recall']:.3f} false-hit={d['false_hit_rate']:.3f}"
          f" hits={d['hits']} wrong={d['false_hits']} | cosine>=0.9 P={c['precision']:.3f} R={c['recall']:.3f}"
          f" false-hit={c['false_hit_rate']:.3f}")
PY
}
run langcache_held_out "$held/langcache_held_out.jsonl"
run project_validation "$held/project_validation.jsonl"
run paws_held_out "$held/paws_held_out.jsonl"
run langcache "$data/langcache_chat_pairs.csv"
run paws "$data/paws_wiki_test.tsv"  # 8,000 pairs: about ten minutes on two cores

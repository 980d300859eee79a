#!/usr/bin/env bash
# The figures of docs/quality.md.
#  1. `deja verifier report`: every validation slice, the held-out langcache half and the whole
#     PAWS test split (report only), decided by plain cosine >= 0.9 and the shipped verifier at
#     the default settings (and, given a CANDIDATE_DIR from `deja verifier train --output-dir`,
#     that retrained verifier beside the shipped one); each rule alone; look-alikes served by
#     kind; the thresholds the validation slices call for.
#  2. `deja eval --compare` through the service's own lookup path (database, HNSW, verifier) at
#     the default tenant settings, on the same sets.
# JSON and plots go to docs/quality/.
#    With a PREVIOUS_DIR (an earlier verifier's model.onnx and tokenizer.json, e.g. from
#    `git show`), the shipped verifier's report sets that one beside it at its own defaults.
# Usage: scripts/quality.sh [DATA_DIR] [CANDIDATE_DIR | ""] [PREVIOUS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
candidate="${2:-}"
previous="${3:-}"
out=docs/quality
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
if [ -n "$candidate" ]; then
  .venv/bin/deja verifier report --data-dir "$data" --verifier-dir "$candidate" \
    --previous-dir app/cache/models/verifier-minilm-int8 --json-out "$out/report-candidate.json"
elif [ -n "$previous" ]; then
  .venv/bin/deja verifier report --data-dir "$data" --previous-dir "$previous" --json-out "$out/report.json"
else
  .venv/bin/deja verifier report --data-dir "$data" --json-out "$out/report.json"
fi

.venv/bin/python scripts/held_out_pairs.py "$data" "$work"
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
for name in langcache_held_out project_validation written_validation counter_validation instructions_validation instructions_across_validation swaps_validation qqp_validation mrpc_validation paws_dev_validation; do
  run "$name" "$work/$name.jsonl"
done
run work_prompts_written "$work/work_prompts_written.jsonl"  # written by hand, report only
run work_prompts_second "$work/work_prompts_second.jsonl"  # written apart from the project, report only
run work_prompts_third app/toolkit/ml/data/work_prompts_third.csv  # written apart after the last rule change, report only
run work_prompts_fourth app/toolkit/ml/data/work_prompts_fourth.csv  # every combination of worded alike or apart, same or different: report only
run work_prompts_fifth app/toolkit/ml/data/work_prompts_fifth.csv  # the same, and instructions over texts of up to 350 words: report only
run work_prompts_sixth app/toolkit/ml/data/work_prompts_sixth.csv  # the same kinds, written after the fifth had judged a model: report only
run work_prompts_seventh app/toolkit/ml/data/work_prompts_seventh.csv  # the same kinds, written after the sixth had judged the shipped verifier: report only
run work_prompts_eighth app/toolkit/ml/data/work_prompts_eighth.csv  # the same kinds, written while the seventh waited to judge a model: report only
run work_prompts_ninth app/toolkit/ml/data/work_prompts_ninth.csv  # the same kinds, written while the eighth waited to judge a model: report only
run work_prompts_tenth app/toolkit/ml/data/work_prompts_tenth.csv  # the same kinds, written while the ninth waited to judge a model: report only
run work_prompts_eleventh app/toolkit/ml/data/work_prompts_eleventh.csv  # the same kinds, written once the tenth had judged a model: report only
run work_prompts_twelfth app/toolkit/ml/data/work_prompts_twelfth.csv  # the same kinds, written while the eleventh waited to judge a change: report only
run work_prompts_thirteenth app/toolkit/ml/data/work_prompts_thirteenth.csv  # the same kinds, written while the twelfth waited to judge a change: report only
run work_prompts_fourteenth app/toolkit/ml/data/work_prompts_fourteenth.csv  # the same kinds with more negations, written while the thirteenth waited to judge a change: report only
run work_prompts_fifteenth app/toolkit/ml/data/work_prompts_fifteenth.csv  # the same kinds, written once the fourteenth had judged a change: report only
run work_prompts_sixteenth app/toolkit/ml/data/work_prompts_sixteenth.csv  # the same kinds, written beside the fifteenth: report only
run work_prompts_seventeenth app/toolkit/ml/data/work_prompts_seventeenth.csv  # the same kinds, written while the fifteenth and sixteenth judged: report only
run work_prompts_eighteenth app/toolkit/ml/data/work_prompts_eighteenth.csv  # the same kinds, written beside the nineteenth: report only
run work_prompts_nineteenth app/toolkit/ml/data/work_prompts_nineteenth.csv  # the same kinds, written beside the eighteenth: report only
run instructions_over_text app/toolkit/ml/data/instructions_over_text.csv  # one pasted text, a reworded or another request: chooses their threshold
run work_prompts_stress app/toolkit/ml/data/work_prompts_stress.csv  # topical look-alikes, near-identical paraphrases
run long_prompts app/toolkit/ml/data/long_prompts.csv  # one long text, other requests: report only
run paws_test "$work/paws_test.jsonl"  # 8,000 pairs: about ten minutes on two cores

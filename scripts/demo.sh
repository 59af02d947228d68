#!/usr/bin/env bash
# The README's main job: fine-tune the bundled model (stories260K) on the
# example task (name the animal in a story), then evaluate base vs fine-tuned
# on the held-out test set and print the comparison.
set -euo pipefail
HONE=${1:-build/hone}
here=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${HONE_SHARED:-$here/../shared}
DATA=$SHARED/data/animal
OUT=${HONE_DEMO_OUT:-$here/out/demo}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
rm -rf "$OUT"
mkdir -p "$OUT"
echo "== data check"
"$HONE" data check "$DATA/train.jsonl" --valid "$DATA/valid.jsonl"
echo
echo "== fine-tune (defaults) on $DATA/train.jsonl"
"$HONE" finetune --train "$DATA/train.jsonl" --valid "$DATA/valid.jsonl" --out "$OUT"
echo
echo "== evaluate on $DATA/test.jsonl: base vs fine-tuned"
"$HONE" eval --data "$DATA/test.jsonl" --adapter "$OUT/final" --baseline base \
  --json "$OUT/eval.json" --html "$OUT/eval.html"
echo
echo "metrics: $OUT/metrics.csv   report: $OUT/eval.html"

#!/usr/bin/env bash
# LLM-Pruner's comparison on the real models (docs/PERFORMANCE.md, "Structural pruning (issue 13)"): 20% of the
# pruned blocks' parameters removed with every importance kind, without and with LoRA recovery, then perplexity on the
# valid sample and on WikiText-2 (first 200 documents); then element1's aggregations without recovery.
# Usage: scripts/prune-table.sh [MODEL.bin ...]   (default: stories260K and stories-deep16 from ../shared/models)
# Env: STEPS (LoRA steps, default 500), OUT (checkpoints, default target/prune-table), SKIPFLOW (the CLI to run).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/prune-table}
STEPS=${STEPS:-500}
SKIPFLOW=${SKIPFLOW:-./skipflow}
# one PyTorch thread: these models are tiny and per-op overhead bound; results are the same, runs several times faster
export SKIPFLOW_JAVA_OPTS=${SKIPFLOW_JAVA_OPTS:--Dai.djl.pytorch.num_threads=1}
VALID=../shared/data/tinystories-valid-sample.txt
WIKI=../shared/data/wikitext2-test.txt
MODELS=("$@")
[[ ${#MODELS[@]} -gt 0 ]] || MODELS=(../shared/models/stories260K/stories260K.bin ../shared/models/stories-deep16/stories-deep16.bin)
mkdir -p "$OUT"

ppl() { # model text [max-docs]
  "$SKIPFLOW" eval --model "$1" --text "$2" ${3:+--max-docs $3} --json 2>/dev/null \
    | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["perplexity"])'
}
params() {
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][-1]["settings"]; print("{:,}".format(s["parametersAfter"]))' "$1/skipflow.json"
}
row() { # model name importance aggregation steps
  local dir="$OUT/$2-$3-$4-$5"
  local start=$SECONDS
  "$SKIPFLOW" prune --model "$1" --ratio 0.2 --importance "$3" --aggregation "$4" --recover-steps "$5" --out "$dir" --force \
    > "$dir.log" 2>&1
  local recovery=$([[ $5 == 0 ]] && echo "none" || echo "LoRA, $5 steps")
  echo "| $2 | $3 | $4 | $recovery | $(params "$dir") | $(ppl "$dir" $VALID) | $(ppl "$dir" $WIKI 200) | $((SECONDS - start)) s |"
}

echo "| model | importance | aggregation | recovery | parameters | valid sample | WikiText-2 (200 docs) | time |"
echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"
for model in "${MODELS[@]}"; do
  name=$(basename "$model" .bin)
  echo "| $name | (dense) | | | | $(ppl "$model" $VALID) | $(ppl "$model" $WIKI 200) | |"
  for imp in element1 element2 vector l1 l2 random; do
    for steps in 0 "$STEPS"; do
      row "$model" "$name" "$imp" sum "$steps"
    done
  done
  for agg in mean max prod last; do
    row "$model" "$name" element1 "$agg" 0
  done
done

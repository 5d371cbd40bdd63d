#!/usr/bin/env bash
# SoftLMs against uniform-rank SVD on the real models (docs/PERFORMANCE.md, "Low rank (issue 14)"): 50% and 70% of the
# linear maps' parameters kept, learned soft thresholds (the defaults) and one rank per kind of map, then perplexity on
# the valid sample and on WikiText-2 (first 200 documents). --crossover params: every map below the parameter
# break-even is stored factored (quality depends only on the ranks; the speed crossover changes storage, not output).
# Usage: scripts/lowrank-table.sh [MODEL.bin ...]   (default: stories260K and stories-deep16 from ../shared/models)
# Env: OUT (checkpoints, default target/lowrank-table), SKIPFLOW (the CLI to run), RATIOS (default "0.5 0.7"),
# EXTRA (more lowrank options for the learned rows), MKL_CBWR (default COMPATIBLE).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/lowrank-table}
SKIPFLOW=${SKIPFLOW:-./skipflow}
RATIOS=${RATIOS:-0.5 0.7}
EXTRA=${EXTRA:-}
export SKIPFLOW_JAVA_OPTS=${SKIPFLOW_JAVA_OPTS:--Dai.djl.pytorch.num_threads=1}
# bit-reproducible learned rows: MKL picks gemm kernels by memory alignment unless told not to (--crossover params
# below, so nothing is timed under these kernels)
export MKL_CBWR=${MKL_CBWR:-COMPATIBLE}
VALID=../shared/data/tinystories-valid-sample.txt
WIKI=../shared/data/wikitext2-test.txt
MODELS=("$@")
[[ ${#MODELS[@]} -gt 0 ]] || MODELS=(../shared/models/stories260K/stories260K.bin ../shared/models/stories-deep16/stories-deep16.bin)
mkdir -p "$OUT"

ppl() { # model text [max-docs]
  "$SKIPFLOW" eval --model "$1" --text "$2" ${3:+--max-docs $3} --json 2>/dev/null \
    | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["perplexity"])'
}
kept() {
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["steps"][-1]["settings"]; print("{:,} ({:.1%})".format(s["rankedParameters"], s["rankedParameters"]/s["linearParameters"]))' "$1/skipflow.json"
}
row() { # model name ratio method options...
  local model=$1 name=$2 ratio=$3 method=$4
  shift 4
  local dir="$OUT/$name-$ratio-$method"
  local start=$SECONDS
  "$SKIPFLOW" lowrank --model "$model" --params-ratio "$ratio" --method "$method" --crossover params "$@" --out "$dir" \
    --force > "$dir.log" 2>&1
  echo "| $name | $ratio | $method | $(kept "$dir") | $(ppl "$dir" $VALID) | $(ppl "$dir" $WIKI 200) | $((SECONDS - start)) s |"
}

echo "| model | params ratio | method | linear parameters kept (ranks) | valid sample | WikiText-2 (200 docs) | time |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: |"
for model in "${MODELS[@]}"; do
  name=$(basename "$model" .bin)
  echo "| $name | 1 | (dense) | | $(ppl "$model" $VALID) | $(ppl "$model" $WIKI 200) | |"
  for ratio in $RATIOS; do
    row "$model" "$name" "$ratio" uniform
    # shellcheck disable=SC2086
    row "$model" "$name" "$ratio" learned $EXTRA
  done
done

#!/usr/bin/env bash
# LLM-Pruner's comparison on the real models (docs/PERFORMANCE.md, "Structural pruning (issue 13)"): 20% of the
# pruned blocks' parameters removed with every importance kind, without and with LoRA recovery, then perplexity on the
# valid sample and on WikiText-2 (first 200 documents); then element1's aggregations without recovery.
# Every row runs once per seed (calibration samples, random importance, LoRA init and batches) and shows the median
# and, with several seeds, the range.
# Usage: scripts/prune-table.sh [MODEL.bin ...]   (default: stories260K and stories-deep16 from ../shared/models)
# Env: STEPS (LoRA steps, default 500), SEEDS (default "1 2 3"), KINDS (default: all six), AGGREGATIONS (default
# "mean max prod last"; empty for none), PRUNE_ARGS (more prune options for every row), OUT (checkpoints, default target/prune-table), SKIPFLOW (the CLI to run).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/prune-table}
STEPS=${STEPS:-500}
SEEDS=${SEEDS:-1 2 3}
KINDS=${KINDS:-element1 element2 vector l1 l2 random}
AGGREGATIONS=${AGGREGATIONS-mean max prod last}
SKIPFLOW=${SKIPFLOW:-./skipflow}
PRUNE_ARGS=${PRUNE_ARGS:-}
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
summary() { # values... -> "median" or "median (min-max)"
  python3 -c 'import statistics,sys; v=sorted(map(float,sys.argv[1:])); m=statistics.median(v)
print("%.3f" % m if len(v) == 1 else "%.3f (%.3f-%.3f)" % (m, v[0], v[-1]))' "$@"
}
row() { # model name importance aggregation steps
  local start=$SECONDS valid=() wiki=() dir
  for seed in $SEEDS; do
    dir="$OUT/$2-$3-$4-$5-s$seed"
    "$SKIPFLOW" prune --model "$1" --ratio 0.2 --importance "$3" --aggregation "$4" --recover-steps "$5" --seed "$seed" \
      $PRUNE_ARGS --out "$dir" --force > "$dir.log" 2>&1
    valid+=("$(ppl "$dir" $VALID)")
    wiki+=("$(ppl "$dir" $WIKI 200)")
    echo "${valid[-1]} ${wiki[-1]}" > "$dir.ppl" # this seed's valid and WikiText-2 perplexity
  done
  local recovery=$([[ $5 == 0 ]] && echo "none" || echo "LoRA, $5 steps")
  echo "| $2 | $3 | $4 | $recovery | $(params "$dir") | $(summary "${valid[@]}") | $(summary "${wiki[@]}") | $((SECONDS - start)) s |"
}

echo "| model | importance | aggregation | recovery | parameters | valid sample | WikiText-2 (200 docs) | time, all seeds |"
echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"
for model in "${MODELS[@]}"; do
  name=$(basename "$model" .bin)
  echo "| $name | (dense) | | | | $(ppl "$model" $VALID) | $(ppl "$model" $WIKI 200) | |"
  for imp in $KINDS; do
    for steps in 0 "$STEPS"; do
      row "$model" "$name" "$imp" sum "$steps"
    done
  done
  for agg in $AGGREGATIONS; do
    row "$model" "$name" element1 "$agg" 0
  done
done

#!/usr/bin/env bash
# Stacks against their original under the serving protocol (issue 16; docs/PERFORMANCE.md, "Stacks on stories-deep16").
# Builds each stack with ./skipflow stack (compression steps, then a router and an exit classifier trained on the
# result), evaluates it with eval --original --protocol serving, and the original with its own router and exit;
# then writes OUT/table.md and OUT/pareto.svg (scripts/stack-plot.py).
# Usage: scripts/stack-table.sh [MODEL]; env: STACKS, TEXT, OUT, SKIPFLOW (a frozen CLI for long runs), ROUTER,
# ROUTER_ARGS, EXIT_ARGS, PRUNE_ARGS, LOWRANK_ARGS, MOE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-../shared/models/stories-deep16/stories-deep16.bin}
T=${TEXT:-../shared/data/tinystories-valid-sample.txt}
SK=${SKIPFLOW:-./skipflow}
OUT=${OUT:-target/stack-table}
STACKS=${STACKS:-"prune:0.1 prune:0.2 prune:0.1,lowrank:0.95 prune:0.1,moe:0.9"}
ROUTER=${ROUTER:-0.2}
ROUTER_ARGS=${ROUTER_ARGS:---route prompt --generations 0 --steps 150 --guide static --guide-fraction 0.3 --distillation-weight 1}
EXIT_ARGS=${EXIT_ARGS:---candidates 16 --per-block-thresholds}
PRUNE_ARGS=${PRUNE_ARGS:---recover-steps 300 --recover-objective distill}
LOWRANK_ARGS=${LOWRANK_ARGS:---operator gate}
MOE_ARGS=${MOE_ARGS:-}
mkdir -p "$OUT"
log() { echo "$(date +%T) $*" | tee -a "$OUT/log.txt"; }

# the original: a router and an exit classifier trained on it, evaluated alone and together
mkdir -p "$OUT/original"
if [[ ! -f "$OUT/original/router.json" ]]; then
  log "train-router on the original"
  $SK train-router --model "$M" --sparsity "$ROUTER" $ROUTER_ARGS --out "$OUT/original/router.json" 2>>"$OUT/log.err"
fi
if [[ ! -f "$OUT/original/exit.json" ]]; then
  log "train-exit on the original"
  $SK train-exit --model "$M" $EXIT_ARGS --out "$OUT/original/exit.json" 2>>"$OUT/log.err"
fi
log "eval the original"
$SK eval --model "$M" --text "$T" --protocol serving --router "$OUT/original/router.json" \
  --exit "$OUT/original/exit.json" --json 2>>"$OUT/log.err" > "$OUT/original.json"

for s in $STACKS; do
  name=${s//[:,]/-}
  args=(stack --model "$M" --steps "$s" --router "$ROUTER" --router-args "$ROUTER_ARGS" --exit --exit-args "$EXIT_ARGS"
        --out "$OUT/$name" --force)
  [[ $s == *prune* && -n $PRUNE_ARGS ]] && args+=(--prune-args "$PRUNE_ARGS")
  [[ $s == *lowrank* && -n $LOWRANK_ARGS ]] && args+=(--lowrank-args "$LOWRANK_ARGS")
  [[ $s == *moe* && -n $MOE_ARGS ]] && args+=(--moe-args "$MOE_ARGS")
  log "stack $s"
  $SK "${args[@]}" > "$OUT/$name.stack.txt" 2>>"$OUT/log.err"
  log "eval $s"
  $SK eval --model "$OUT/$name" --original --text "$T" --protocol serving --router "$OUT/$name/router.json" \
    --exit "$OUT/$name/exit.json" --json 2>>"$OUT/log.err" > "$OUT/$name.json"
done
python3 scripts/stack-plot.py "$OUT" original $STACKS
log "done: $OUT/table.md, $OUT/pareto.svg"

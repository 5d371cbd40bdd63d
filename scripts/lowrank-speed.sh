#!/usr/bin/env bash
# Measured speed of a low-rank model against its original, side by side in one run (docs/PERFORMANCE.md, "Low rank
# (issue 14)"): the 110M-shape synthetic model at 50% of the linear parameters (uniform ranks: its random weights give
# thresholds nothing to learn), each map stored factored only up to the crossover rank measured on this machine
# (--crossover measure, at 256 and 64 rows), then prefill of 256 tokens and batch-64 decode, rounds alternating
# original and low-rank inside each bench run. Each bench run is repeated PASSES times, alternating the q|k|v and
# gate|up layouts (STACKS: "true" = one matmul for all first factors, StackedLowRankLinear; "false" = each part its
# own two matmuls, the layout before), and the table gives the median over passes per layout, with every pass's
# speed-ups beside it.
# Usage: flock /tmp/skipflow-mvn.lock scripts/lowrank-speed.sh   (holding the build lock: no build runs meanwhile)
# Env: OUT (default target/lowrank-speed), SKIPFLOW (the CLI to run), ROUNDS (per bench run, default 5), PASSES
# (default 3), RATIOS (default 0.5), CROSSOVERS (default "measure params"), STACKS (default "true false").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/lowrank-speed}
SKIPFLOW=${SKIPFLOW:-./skipflow}
ROUNDS=${ROUNDS:-5}
PASSES=${PASSES:-3}
RATIOS=${RATIOS:-0.5}
CROSSOVERS=${CROSSOVERS:-measure params}
STACKS=${STACKS:-true false}
BASE_OPTS=${SKIPFLOW_JAVA_OPTS:--Dai.djl.pytorch.num_threads=1}
mkdir -p "$OUT"

echo "| stories110M shape | crossover | q\|k\|v, gate\|up | linear parameters stored | maps factored | decode FLOPs saved | prefill 256, original tok/s | low-rank tok/s | speed-up (median) | per pass | decode b=64, original tok/s | low-rank tok/s | speed-up (median) | per pass |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
for ratio in $RATIOS; do
  for cross in $CROSSOVERS; do
    name=uniform-$ratio-$cross
    SKIPFLOW_JAVA_OPTS="$BASE_OPTS" "$SKIPFLOW" lowrank --synthetic stories110M --method uniform --params-ratio "$ratio" \
      --crossover "$cross" --out "$OUT/$name" --force > "$OUT/$name.log" 2>&1
    for pass in $(seq 1 "$PASSES"); do
      for stack in $STACKS; do
        SKIPFLOW_JAVA_OPTS="$BASE_OPTS -Dskipflow.stackLowRank=$stack" "$SKIPFLOW" bench --model "$OUT/$name" --original \
          --batch-sizes 64 --steps 32 --rounds "$ROUNDS" --prefill-tokens 256 --warmup-seconds 10 --json 2>/dev/null \
          > "$OUT/$name-stack-$stack-$pass.json"
      done
    done
    for stack in $STACKS; do
      python3 - "$OUT/$name/skipflow.json" "$ratio" "$cross" "$stack" "$OUT/$name-stack-$stack-"*.json <<'PY'
import json, statistics as st, sys
s = json.load(open(sys.argv[1]))["steps"][-1]["settings"]
runs = [json.load(open(f)) for f in sorted(sys.argv[5:])]
factored = sum(1 for b in s["perBlock"] for k in b["stored"].values() if k == "factored")
total = sum(len(b["stored"]) for b in s["perBlock"])
pre = [r["prefill"] for r in runs]
dec = [r["decode"][0] for r in runs]
med = lambda xs, k: st.median(x[k] for x in xs)
passes = lambda xs: ", ".join(f"{x['speedup']:.2f}" for x in xs)
layout = "stacked (one first-factor matmul)" if sys.argv[4] == "true" else "separate parts"
print(f"| {sys.argv[2]} of linear params | {sys.argv[3]} | {layout} | {s['storedLinearParameters'] / s['linearParameters']:.1%} | "
      f"{factored}/{total} | {runs[0]['decodeFlopsSavedPerToken']:.1%} | {med(pre, 'originalTokensPerSecond'):,.0f} | "
      f"{med(pre, 'tokensPerSecond'):,.0f} | **{med(pre, 'speedup'):.3f}x** | {passes(pre)} | "
      f"{med(dec, 'originalTokensPerSecond'):,.0f} | {med(dec, 'tokensPerSecond'):,.0f} | **{med(dec, 'speedup'):.3f}x** | {passes(dec)} |")
PY
    done
    grep -A4 "^crossover" "$OUT/$name.log" | sed 's/^/    /' >&2 || true
  done
done

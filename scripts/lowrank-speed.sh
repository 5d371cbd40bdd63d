#!/usr/bin/env bash
# Measured speed of a low-rank model against its original, side by side in one run (docs/PERFORMANCE.md, "Low rank
# (issue 14)"): the 110M-shape synthetic model at 50% of the linear parameters (uniform ranks: its random weights give
# thresholds nothing to learn), each map stored factored only up to the crossover rank measured on this machine
# (--crossover measure, at 256 and 64 rows), then prefill of 256 tokens and batch-64 decode, rounds alternating.
# Usage: flock /tmp/skipflow-mvn.lock scripts/lowrank-speed.sh   (alone on the machine: it measures wall-clock)
# Env: OUT (default target/lowrank-speed), SKIPFLOW (the CLI to run), ROUNDS (default 5), RATIOS (default 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/lowrank-speed}
SKIPFLOW=${SKIPFLOW:-./skipflow}
ROUNDS=${ROUNDS:-5}
RATIOS=${RATIOS:-0.5}
mkdir -p "$OUT"

echo "| stories110M shape | crossover | linear parameters stored | maps factored | decode FLOPs saved | prefill 256, original tok/s | low-rank tok/s | speed-up | decode b=64, original tok/s | low-rank tok/s | speed-up |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for ratio in $RATIOS; do
  for cross in measure params; do
    name=uniform-$ratio-$cross
    "$SKIPFLOW" lowrank --synthetic stories110M --method uniform --params-ratio "$ratio" --crossover "$cross" \
      --out "$OUT/$name" --force > "$OUT/$name.log" 2>&1
    "$SKIPFLOW" bench --model "$OUT/$name" --original --batch-sizes 64 --steps 32 --rounds "$ROUNDS" --prefill-tokens 256 \
      --warmup-seconds 10 --json 2>/dev/null > "$OUT/$name.json"
    python3 - "$OUT/$name.json" "$OUT/$name/skipflow.json" "$ratio" "$cross" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))["steps"][-1]["settings"]
factored = sum(1 for b in s["perBlock"] for k in b["stored"].values() if k == "factored")
total = sum(len(b["stored"]) for b in s["perBlock"])
dec = d["decode"][0]
pre = d["prefill"]
print(f"| {sys.argv[3]} of linear params | {sys.argv[4]} | {s['storedLinearParameters'] / s['linearParameters']:.1%} | "
      f"{factored}/{total} | {d['decodeFlopsSavedPerToken']:.1%} | {pre['originalTokensPerSecond']:,.0f} | "
      f"{pre['tokensPerSecond']:,.0f} | **{pre['speedup']:.3f}x** | {dec['originalTokensPerSecond']:,.0f} | "
      f"{dec['tokensPerSecond']:,.0f} | **{dec['speedup']:.3f}x** |")
PY
    grep -A4 "^crossover" "$OUT/$name.log" | sed 's/^/    /' >&2 || true
  done
done

#!/usr/bin/env bash
# Measured speed of ToMoE mixtures against their dense originals, side by side in one run each (docs/PERFORMANCE.md,
# "Mixture of experts (issue 15)"): the MLP-dominated 110M-shape synthetic model at 50% MLP active, converted without
# training (--steps 0: random weights have nothing to learn; the untrained router still spreads tokens over the experts,
# so the grouping, the per-expert matmuls and the router all run as in a trained mixture), then prefill of 256 tokens
# and batch-64 decode, rounds alternating between the mixture and the original.
# Usage: scripts/moe-speed.sh   Env: OUT (default target/moe-speed), SKIPFLOW (the CLI), ROUNDS (default 5),
# EXPERTS (default "8 4 2"), SHARED (moe --shared, default 0). Run it holding the build lock:
# flock /tmp/skipflow-mvn.lock scripts/moe-speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/moe-speed}
SKIPFLOW=${SKIPFLOW:-./skipflow}
ROUNDS=${ROUNDS:-5}
EXPERTS=${EXPERTS:-8 4 2}
SHARED=${SHARED:-0}
export SKIPFLOW_JAVA_OPTS=${SKIPFLOW_JAVA_OPTS:--Dai.djl.pytorch.num_threads=1}
mkdir -p "$OUT"

echo "| stories110M shape, 50% MLP active | decode FLOPs saved | prefill 256, dense tok/s | MoE tok/s | speed-up | decode b=64, dense tok/s | MoE tok/s | speed-up |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for e in $EXPERTS; do
  name=e$e-shared$SHARED
  "$SKIPFLOW" moe --synthetic stories110M --active-ratio 0.5 --experts "$e" --shared "$SHARED" --steps 0 --samples 4 --sample-length 32 \
    --out "$OUT/$name" --force > "$OUT/$name.log" 2>&1
  "$SKIPFLOW" bench --model "$OUT/$name" --original --batch-sizes 64 --steps 32 --rounds "$ROUNDS" --prefill-tokens 256 \
    --warmup-seconds 10 --json 2>/dev/null > "$OUT/$name.json"
  python3 - "$OUT/$name.json" "$e experts$([[ $SHARED == 0 ]] || echo ", --shared $SHARED")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
dec = d["decode"][0]
pre = d["prefill"]
print(f"| {sys.argv[2]} | {d['decodeFlopsSavedPerToken']:.1%} | {pre['originalTokensPerSecond']:,.0f} | "
      f"{pre['tokensPerSecond']:,.0f} | **{pre['speedup']:.3f}x** | {dec['originalTokensPerSecond']:,.0f} | "
      f"{dec['tokensPerSecond']:,.0f} | **{dec['speedup']:.3f}x** |")
PY
done

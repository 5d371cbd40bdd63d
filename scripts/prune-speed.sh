#!/usr/bin/env bash
# Measured speed of pruned models against their originals, side by side in one run each (docs/PERFORMANCE.md,
# "Structural pruning (issue 13)"): the 110M-shape synthetic model pruned with L2 importance (static: its random
# weights have no meaningful gradients), prefill of 256 tokens and batch-64 decode, rounds alternating.
# Usage: scripts/prune-speed.sh   Env: OUT (checkpoints, default target/prune-speed), SKIPFLOW (the CLI to run),
# ROUNDS (default 7). Run it alone on the machine: it measures wall-clock.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/prune-speed}
SKIPFLOW=${SKIPFLOW:-./skipflow}
ROUNDS=${ROUNDS:-7}
mkdir -p "$OUT"

bench() { # name, prune options...
  local name=$1
  shift
  "$SKIPFLOW" prune --synthetic stories110M --importance l2 "$@" --out "$OUT/$name" --force > "$OUT/$name.log" 2>&1
  "$SKIPFLOW" bench --model "$OUT/$name" --original --batch-sizes 64 --steps 32 --rounds "$ROUNDS" --prefill-tokens 256 \
    --warmup-seconds 10 --json 2>/dev/null > "$OUT/$name.json"
  python3 - "$OUT/$name.json" "$name" "$*" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
dec = d["decode"][0]
pre = d["prefill"]
removed = 1 - d["parameters"] / d["originalParameters"]
print(f"| {sys.argv[3]} | {removed:.1%} | {d['decodeFlopsSavedPerToken']:.1%} | {pre['originalTokensPerSecond']:,.0f} | "
      f"{pre['tokensPerSecond']:,.0f} | **{pre['speedup']:.3f}x** | {dec['originalTokensPerSecond']:,.0f} | "
      f"{dec['tokensPerSecond']:,.0f} | **{dec['speedup']:.3f}x** |")
PY
}

echo "| prune options (stories110M shape, l2) | parameters removed | decode FLOPs saved | prefill 256, original tok/s | pruned tok/s | speed-up | decode b=64, original tok/s | pruned tok/s | speed-up |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
bench default-0.20 --ratio 0.2
bench all-0.20 --ratio 0.2 --blocks all
bench all-0.26 --ratio 0.26 --blocks all
bench all-0.26-round1 --ratio 0.26 --blocks all --round-to 1
bench all-0.26-round64 --ratio 0.26 --blocks all --round-to 64

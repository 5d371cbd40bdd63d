#!/usr/bin/env bash
# Issue 12: how a decode share is spread over stories-deep16's blocks (docs/PERFORMANCE.md, "Decode shares by block
# influence"). The same trained router, prompts at P, decoding tokens at D on average, shares uniform or
# proportional to influence^-k (ShortGPT's block influence on the calibration text; k = 2 is what
# --decode-sparsity builds), decode cuts calibrated as served, serving protocol with --route all.
# Usage: scripts/decode-shares.sh [P D]   Env: MODEL, TOKENIZER, ROUTER, CALIBRATION, TEXT, POWERS ("0 1 2 3").
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-../shared/models/stories-deep16/stories-deep16.bin}
TOKENIZER=${TOKENIZER:-$(dirname "$MODEL")/tok512.bin}
ROUTER=${ROUTER:-docs/report/stories-deep16/artifacts/router-0.20.json}
CALIBRATION=${CALIBRATION:-../shared/data/tinystories-train-sample.txt}
TEXT=${TEXT:-../shared/data/tinystories-valid-sample.txt}
[ -f job/target/cli.classpath ] || { echo "build first: mvn -B -q install -DskipTests" >&2; exit 2; }
CP="model/target/classes:$(cat job/target/cli.classpath)"
java -Dai.djl.pytorch.num_threads=1 -cp "$CP" scripts/DecodeShares.java "$MODEL" "$TOKENIZER" "$ROUTER" \
    "$CALIBRATION" "$TEXT" "${1:-0.2}" "${2:-0.2}" ${POWERS:-0 1 2 3} 2>/dev/null

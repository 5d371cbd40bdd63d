#!/usr/bin/env bash
# How much of the exit oracle a better exit decision could take on stories-deep16 (docs/PERFORMANCE.md, "Exit
# headroom"): dumps, for 400 calibration documents, every block's probe (top-1, top prob, gap) and hidden state with
# the dense model, then fits classifiers in numpy on the first 300 documents (logistic regression; with HIDDEN > 0 an
# MLP of that width), tunes one threshold on half of the last 100 for 99 % agreement and reports the other half:
# layers saved, agreement, share of tokens exited, against the perfect classifier's (the oracle's) layers saved.
# Feature sets: p = top prob and gap (AdaInfer), s = + top-1 equal to the previous block's, h = hidden state,
# d = relative change of the hidden state over the block. The simulation uses dense hidden states (no k/v
# propagation) and counts layers, not FLOPs: it bounds what a classifier of that family could save.
# With LENS=1 it also reads every probe through a tuned lens (an affine map per block fitted to the last block's
# output, exit-lens.py) and reports the same classifiers on it.
# Usage: scripts/exit-headroom.sh   Env: MODEL, TOKENIZER, TEXT, DOCS (400), KINDS ("p,ps,h,ph,phd"), HIDDEN (0), LENS.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-../shared/models/stories-deep16/stories-deep16.bin}
TOKENIZER=${TOKENIZER:-$(dirname "$MODEL")/tok512.bin}
TEXT=${TEXT:-../shared/data/tinystories-train-sample.txt}
DOCS=${DOCS:-400}
KINDS=${KINDS:-p,ps,h,ph,phd}
HIDDEN=${HIDDEN:-0}
mkdir -p target/exit-headroom
[ -f job/target/cli.classpath ] || { echo "build first: mvn -B -q install -DskipTests" >&2; exit 2; }
CP="model/target/classes:$(cat job/target/cli.classpath)"
java -Dai.djl.pytorch.num_threads=1 -cp "$CP" scripts/ExitDump.java "$MODEL" "$TOKENIZER" "$TEXT" "$DOCS" \
    target/exit-headroom/dump.bin
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 scripts/exit-headroom.py target/exit-headroom/dump.bin "$KINDS" "$HIDDEN"
if [[ -n "${LENS:-}" ]]; then
  java -cp "$CP" scripts/HeadDump.java "$MODEL" target/exit-headroom/head.bin
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python3 scripts/exit-lens.py target/exit-headroom/dump.bin \
      target/exit-headroom/head.bin logit,affine "$HIDDEN"
fi

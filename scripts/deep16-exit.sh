#!/usr/bin/env bash
# Exit classifiers on stories-deep16: AdaInfer's features and probes beside the extended features and candidate
# probes (docs/PERFORMANCE.md, issue 12). Each run prints the held-out result of every probe policy it tried.
cd "$(dirname "$0")/.."
M=../shared/models/stories-deep16/stories-deep16.bin
for v in "adainfer 0" "extended 0" "adainfer 16" "extended 16" "extended 4"; do
  set -- $v
  echo "== features $1, candidates $2"
  ./skipflow train-exit --model $M --features $1 --candidates $2 --out target/exit-d16-$1-$2.json 2>&1 \
    | tr '\r' '\n' | grep -a "train-exit:" | sed 's/.*train-exit:/train-exit:/'
done
echo EXITDONE

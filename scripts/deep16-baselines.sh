#!/usr/bin/env bash
# The four routing baselines on stories-deep16 at 20%, under both eval protocols (docs/PERFORMANCE.md, issue 12).
cd "$(dirname "$0")/.."
M=../shared/models/stories-deep16/stories-deep16.bin
T=../shared/data/tinystories-valid-sample.txt
for proto in prefill serving; do
  for b in static random importance shortgpt; do
    echo "== $proto $b"; ./skipflow eval --model $M --text $T --protocol $proto --baseline $b --sparsity 0.2 --route all --json 2>/dev/null | python3 -c "
import json,sys; d=json.load(sys.stdin)
v=d['variants'][0] if 'variants' in d else d['adaptive']
print({k: (round(v[k],4) if isinstance(v[k],float) else v[k]) for k in ('agreement','greedyAgreement','perplexity','savedFraction') if k in v}, 'dense', round(d['perplexity'],4))"
  done
done
echo SWEEPDONE

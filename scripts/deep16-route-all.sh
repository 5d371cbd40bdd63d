#!/usr/bin/env bash
# Issue 12, prompt and decode routing on stories-deep16: 20% of all token-blocks split between prompt and decode
# in different ways, the serving protocol with --route all (docs/PERFORMANCE.md). A decoding token's skip costs its
# own prediction, a prompt token's only what later tokens read of it. With --decode-sparsity the decode share is
# spread over blocks by 1/influence^2 and its cuts calibrated on the calibration text (scripts/decode-shares.sh
# compares spreads).
cd "$(dirname "$0")/.."
M=../shared/models/stories-deep16/stories-deep16.bin
T=${TEXT:-../shared/data/tinystories-valid-sample.txt}
A=docs/report/stories-deep16/artifacts
row() {
  local name=$1; shift
  ./skipflow eval --model $M --text $T --protocol serving --route all --json "$@" 2>/dev/null | NAME="$name" python3 -c "
import json,os,sys; d=json.load(sys.stdin); v=d['variants'][0]
tokens=v['tokenBlocksTotal']/d['layers'] if 'layers' in d else None
print('| %s | %.2f%% | %.2f%% | %.4f | %.1f%% | %.1f%% |' % (os.environ['NAME'], 100*v['agreement'], 100*v['greedyAgreement'],
      v['perplexity'], 100*v['tokenBlocksSkipped']/v['tokenBlocksTotal'], 100*v['savedFraction']))"
}
echo "| router (prompt share / decode share asked) | agreement | greedy@32 | perplexity | token-blocks skipped | FLOPs saved |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
row "learned 20/20" --router $A/router-0.20.json --decode-sparsity 0.2
row "learned 25/20" --router $A/router-0.20.json --sparsity 0.25 --decode-sparsity 0.2
row "learned 30/15" --router $A/router-0.20.json --sparsity 0.3 --decode-sparsity 0.15
row "learned 35/10" --router $A/router-0.20.json --sparsity 0.35 --decode-sparsity 0.1
row "learned 35/12" --router $A/router-0.20.json --sparsity 0.35 --decode-sparsity 0.12
row "learned 35/5" --router $A/router-0.20.json --sparsity 0.35 --decode-sparsity 0.05
row "learned 40/0" --router $A/router-0.20.json --sparsity 0.4 --decode-sparsity 0
row "learned 30/10, trained so, its own uniform decode shares and cuts" --router $A/router-all-0.30-decode-0.10.json
row "learned 30/10, trained so, shares and cuts calibrated anew" --router $A/router-all-0.30-decode-0.10.json --decode-sparsity 0.1
row "random 20/20" --baseline random --sparsity 0.2
row "random 30/10" --baseline random --sparsity 0.3 --decode-sparsity 0.1
row "ShortGPT, 3 of 16 blocks removed for every token" --baseline shortgpt --sparsity 0.2
row "static 40/0 (its decode is dense)" --baseline static --sparsity 0.4

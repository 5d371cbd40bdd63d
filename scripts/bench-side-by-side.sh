#!/usr/bin/env bash
# Usage: scripts/bench-side-by-side.sh OTHER_CHECKOUT PAIRS [bench options...]
# Runs `./skipflow bench --json` in this checkout and in OTHER_CHECKOUT (e.g. a worktree of the previous commit),
# alternating PAIRS times so machine noise hits both alike, then prints per configuration the median over runs
# of each side's tokens/s and the ratio this/other. Both checkouts build themselves on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
other="$(cd "$1" && pwd)"
pairs="$2"
shift 2
out="$here/target/bench-side-by-side"
mkdir -p "$out"
rm -f "$out"/*.json
for i in $(seq 1 "$pairs"); do
  for side in this other; do
    dir=$here; [[ $side == other ]] && dir=$other
    echo "pair $i/$pairs: $side" >&2
    (cd "$dir" && ./skipflow bench --json "$@" 2>/dev/null) > "$out/$side-$i.json"
  done
done
python3 - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
def points(doc):
    p = {f"decode batch {d['batch']}": d['tokensPerSecond'] for d in doc['decode']}
    p['prefill %d tokens' % doc['prefill']['tokens']] = doc['prefill']['tokensPerSecond']
    return p
runs = {s: [points(json.load(open(f"{out}/{s}-{i}.json"))) for i in range(1, pairs + 1)] for s in ('this', 'other')}
print(f"{'configuration':<22} {'this tok/s':>12} {'other tok/s':>12} {'this/other':>10}   (medians of {pairs} alternating runs)")
for k in runs['this'][0]:
    a = statistics.median(r[k] for r in runs['this'])
    b = statistics.median(r[k] for r in runs['other'])
    ratios = statistics.median(x[k] / y[k] for x, y in zip(runs['this'], runs['other']))
    print(f"{k:<22} {a:>12.1f} {b:>12.1f} {ratios:>10.3f}")
PY

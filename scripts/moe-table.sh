#!/usr/bin/env bash
# ToMoE against static MLP channel pruning at the same active MLP parameters, and dense (docs/PERFORMANCE.md,
# "Mixture of experts (issue 15)"): each model at 50% and 70% of its MLP parameters active per token, perplexity on the
# valid sample and on WikiText-2 (first 200 documents). Writes the markdown table to stdout and one JSON line per row
# to $OUT/points.jsonl (for scripts/moe-plot.py); each conversion's summary (expert sizes, calibration load) is in
# $OUT/<name>.log.
# Usage: scripts/moe-table.sh [MODEL.bin ...]   (default: stories260K and stories-deep16 from ../shared/models)
# Env: RATIOS (default "0.5 0.7"), EXPERTS (default 8), STEPS (default: the CLI's, 1000), SAMPLES (calibration documents
# of both rows, default: the CLI's, 256), SEED (default 42), SHARED (moe --shared, default 0), OUT (default
# target/moe-table), SKIPFLOW (the CLI to run).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/moe-table}
RATIOS=${RATIOS:-0.5 0.7}
EXPERTS=${EXPERTS:-8}
STEPS=${STEPS:-}
SAMPLES=${SAMPLES:-}
SEED=${SEED:-42}
SHARED=${SHARED:-0}
SKIPFLOW=${SKIPFLOW:-./skipflow}
export SKIPFLOW_JAVA_OPTS=${SKIPFLOW_JAVA_OPTS:--Dai.djl.pytorch.num_threads=1}
VALID=../shared/data/tinystories-valid-sample.txt
WIKI=../shared/data/wikitext2-test.txt
MODELS=("$@")
[[ ${#MODELS[@]} -gt 0 ]] || MODELS=(../shared/models/stories260K/stories260K.bin ../shared/models/stories-deep16/stories-deep16.bin)
mkdir -p "$OUT"
: > "$OUT/points.jsonl"

evaljson() { # model text [max-docs]
  "$SKIPFLOW" eval --model "$1" --text "$2" ${3:+--max-docs $3} --json 2>/dev/null
}
row() { # model-path original name method ratio
  local v w
  v=$(evaljson "$1" "$VALID")
  w=$(evaljson "$1" "$WIKI" 200)
  python3 - "$1" "$2" "$3" "$4" "$5" "$v" "$w" >> "$OUT/points.jsonl" <<'PY'
import json, os, struct, sys
path, original, name, method, ratio, v, w = sys.argv[1:]
v, w = json.loads(v), json.loads(w)
dim, hidden, layers = struct.unpack("7i", open(original, "rb").read(28))[:3]
total = dense = None
manifest = os.path.join(path, "skipflow.json")
if os.path.isfile(manifest):
    s = json.load(open(manifest))["steps"][-1]["settings"]
    before = s["parametersBefore"]
    active = before
    for b in s["perBlock"]:
        k, h = map(int, b["activeChannels"].split("/"))
        active -= 3 * dim * (h - k)
        if method == "tomoe":
            active += dim * s["experts"]
    stored = s["parametersAfter"]
else:
    import subprocess
    before = active = stored = None
print(json.dumps({"model": name, "method": method, "mlpActive": float(ratio), "activeParameters": active,
                  "parameters": before, "storedParameters": stored, "validPerplexity": v["perplexity"],
                  "wikiPerplexity": w["perplexity"], "validSavedFraction": v.get("savedFraction", 0.0)}))
PY
}

for model in "${MODELS[@]}"; do
  name=$(basename "$model" .bin)
  row "$model" "$model" "$name" dense 1.0
  for r in $RATIOS; do
    "$SKIPFLOW" moe --model "$model" --active-ratio "$r" --experts "$EXPERTS" ${STEPS:+--steps "$STEPS"} ${SAMPLES:+--samples "$SAMPLES"} --seed "$SEED" \
      --shared "$SHARED" --out "$OUT/$name-tomoe-$r" --force > "$OUT/$name-tomoe-$r.log" 2>/dev/null
    row "$OUT/$name-tomoe-$r" "$model" "$name" tomoe "$r"
    "$SKIPFLOW" moe --model "$model" --baseline static --active-ratio "$r" ${SAMPLES:+--samples "$SAMPLES"} --seed "$SEED" \
      --out "$OUT/$name-static-$r" --force > "$OUT/$name-static-$r.log" 2>/dev/null
    row "$OUT/$name-static-$r" "$model" "$name" static "$r"
  done
done

python3 - "$OUT/points.jsonl" "$EXPERTS" "$([[ $SHARED == 0 ]] || echo ", --shared $SHARED")" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
dense = {r["model"]: r for r in rows if r["method"] == "dense"}
print("| model | method | MLP active | active params / token | valid ppl | WikiText-2 ppl (200 docs) | FLOPs saved (valid) |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    d = dense[r["model"]]
    if r["method"] == "dense":
        act = "100%"
    else:
        act = "%.1f%%" % (100.0 * r["activeParameters"] / r["parameters"])
    label = {"dense": "dense", "tomoe": "**ToMoE** (%s experts%s)" % (sys.argv[2], sys.argv[3]), "static": "static channels (element1)"}[r["method"]]
    print("| %s | %s | %.0f%% | %s | %.3f | %.3f | %.1f%% |" % (r["model"], label, 100 * r["mlpActive"], act,
          r["validPerplexity"], r["wikiPerplexity"], 100 * r["validSavedFraction"]))
PY

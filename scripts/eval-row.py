#!/usr/bin/env python3
"""One line per variant from `./skipflow eval --json` on stdin: agreement, greedy@32, perplexity, savings."""
import json, sys
label = sys.argv[1] if len(sys.argv) > 1 else ""
d = json.load(sys.stdin)
vs = d.get("variants") or [d["adaptive"]]
for v in vs:
    cols = {k: (round(v[k], 4) if isinstance(v[k], float) else v[k]) for k in
            ("agreement", "greedyAgreement", "perplexity", "layerComputationsSaved", "savedFraction", "speedup") if k in v}
    print(label, v.get("name", "")[:40], cols, "dense ppl", round(d["perplexity"], 4), flush=True)

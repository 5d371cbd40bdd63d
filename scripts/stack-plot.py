#!/usr/bin/env python3
"""Table and Pareto plot of scripts/stack-table.sh's runs (no dependencies: the SVG is written by hand).

Usage: scripts/stack-plot.py OUT NAME... (NAME = original or a --steps value; reads OUT/<name>.json, eval --json)
Writes OUT/table.md (every configuration, on the front or not) and OUT/pareto.svg (agreement against FLOPs saved).
"""
import json, sys

out, names = sys.argv[1], sys.argv[2:]
rows = []
for n in names:
    d = json.load(open(f"{out}/{n.replace(':', '-').replace(',', '-')}.json"))
    for v in d["variants"]:
        vn = v["name"]
        if vn.startswith("this model, dense path"):
            what = "compression only"
        elif vn.startswith("exit "):
            what = "+ exit"
        elif " + exit " in vn:
            what = "+ router + exit"
        else:
            what = "+ router"
        base = "original" if n == "original" or n.startswith("static:") else n
        if n.startswith("static:"):  # the original with FTP's static router at another sparsity (eval --baseline)
            label = f"router (static, {n.split(':')[1]})"
        elif n == "original":
            label = "dense" if what == "compression only" else what.lstrip("+ ")
        else:
            label = f"{n} {what}"
        m = v.get("byMethod", {})
        rows.append(dict(stack=base, label=label, agreement=v["agreement"], greedy=v["greedyAgreement"],
                         ppl=v["perplexity"], saved=v["savedFraction"], speedup=v["speedup"],
                         c=m.get("compression", 0), r=m.get("routing", 0), e=m.get("exit", 0), dense_ppl=d["perplexity"],
                         docs=d["documents"], tokens=d["predictedTokens"]))

def dominated(a):
    return any(b["saved"] >= a["saved"] and b["agreement"] >= a["agreement"] and
               (b["saved"] > a["saved"] or b["agreement"] > a["agreement"]) for b in rows)

for r in rows:
    r["front"] = not dominated(r)
best90 = max([r for r in rows if r["agreement"] >= 0.9], key=lambda r: r["saved"], default=None)

with open(f"{out}/table.md", "w") as f:
    f.write(f"Serving protocol, {rows[0]['docs']} documents, {rows[0]['tokens']} scored continuation tokens; dense = the "
            f"original (perplexity {rows[0]['dense_ppl']:.4f}). FLOPs saved against the original, split by method.\n\n")
    f.write("| configuration | agreement | greedy@32 | perplexity | FLOPs saved | compression | routing | exit | speed-up | on the front |\n")
    f.write("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    for r in sorted(rows, key=lambda r: -r["saved"]):
        f.write(f"| {r['label']} | {100*r['agreement']:.2f}% | {100*r['greedy']:.2f}% | {r['ppl']:.4f} | "
                f"{100*r['saved']:.1f}% | {100*r['c']:.1f}% | {100*r['r']:.1f}% | {100*r['e']:.1f}% | "
                f"{r['speedup']:.2f}x | {'yes' if r['front'] else ''} |\n")
    if best90:
        f.write(f"\nMost FLOPs saved at >= 90% agreement: {best90['label']}, {100*best90['saved']:.1f}% at "
                f"{100*best90['agreement']:.2f}%.\n")

# the plot: x = FLOPs saved (0..60%), y = agreement (40..100%)
W, H, L, B, R, T = 640, 420, 60, 50, 20, 20
xmax = max(0.6, max(r["saved"] for r in rows) + 0.05)
ymin = min(0.4, min(r["agreement"] for r in rows) - 0.05)
X = lambda s: L + (W - L - R) * s / xmax
Y = lambda a: H - B - (H - B - T) * (a - ymin) / (1 - ymin)
colors = ["#444444", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
stacks = list(dict.fromkeys(r["stack"] for r in rows))
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 18 * len(stacks)}" font-family="sans-serif" font-size="11">',
       f'<rect width="100%" height="100%" fill="white"/>']
for i in range(0, int(xmax * 100) + 1, 10):
    svg.append(f'<line x1="{X(i/100)}" y1="{T}" x2="{X(i/100)}" y2="{H-B}" stroke="#eee"/><text x="{X(i/100)}" y="{H-B+14}" text-anchor="middle">{i}%</text>')
for i in range(int(ymin * 100 + 9.99) // 10 * 10, 101, 10):
    svg.append(f'<line x1="{L}" y1="{Y(i/100)}" x2="{W-R}" y2="{Y(i/100)}" stroke="#eee"/><text x="{L-6}" y="{Y(i/100)+4}" text-anchor="end">{i}%</text>')
svg.append(f'<text x="{(L+W-R)/2}" y="{H-B+32}" text-anchor="middle">FLOPs saved against the original (serving protocol)</text>')
svg.append(f'<text x="14" y="{(T+H-B)/2}" transform="rotate(-90 14 {(T+H-B)/2})" text-anchor="middle">top-1 agreement with the original</text>')
svg.append(f'<rect x="{X(0.5)}" y="{Y(1)}" width="{W-R-X(0.5)}" height="{Y(0.9)-Y(1)}" fill="#2ca02c" fill-opacity="0.08" stroke="#2ca02c" stroke-dasharray="4 3"/>'
           f'<text x="{X(0.5)+4}" y="{Y(0.9)-4}" fill="#2ca02c">target: 50% at 90%</text>')
front = sorted([r for r in rows if r["front"]], key=lambda r: r["saved"])
svg.append('<polyline fill="none" stroke="#999" stroke-dasharray="3 3" points="' +
           " ".join(f"{X(r['saved'])},{Y(r['agreement'])}" for r in front) + '"/>')
shapes = {"compression only": "circle", "dense": "circle", "+ exit": "square", "exit": "square", "+ router": "triangle",
          "router": "triangle", "+ router + exit": "diamond", "router + exit": "diamond"}
for r in rows:
    c = colors[stacks.index(r["stack"]) % len(colors)]
    x, y = X(r["saved"]), Y(r["agreement"])
    kind = r["label"] if r["stack"] == "original" else r["label"][len(r["stack"]) + 1:]
    s = shapes.get(kind, "circle")
    if s == "circle":
        svg.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{c}"/>')
    elif s == "square":
        svg.append(f'<rect x="{x-4}" y="{y-4}" width="8" height="8" fill="{c}"/>')
    elif s == "triangle":
        svg.append(f'<polygon points="{x},{y-5} {x-5},{y+4} {x+5},{y+4}" fill="{c}"/>')
    else:
        svg.append(f'<polygon points="{x},{y-5} {x+5},{y} {x},{y+5} {x-5},{y}" fill="{c}"/>')
for i, st in enumerate(stacks):
    svg.append(f'<circle cx="{L+6}" cy="{H+8+18*i}" r="4" fill="{colors[i % len(colors)]}"/><text x="{L+16}" y="{H+12+18*i}">{st}</text>')
svg.append(f'<text x="{L+200}" y="{H+12}">circle: compression only (dense for the original); square: + exit; triangle: + router; diamond: + router + exit</text>')
svg.append("</svg>")
open(f"{out}/pareto.svg", "w").write("\n".join(svg))
print(open(f"{out}/table.md").read())

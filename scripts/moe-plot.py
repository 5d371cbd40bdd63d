#!/usr/bin/env python3
"""Plots scripts/moe-table.sh's results as SVG (no dependencies).

Usage: scripts/moe-plot.py DIR OUT_PREFIX      (DIR: the table's $OUT, default target/moe-table)
Writes OUT_PREFIX-perplexity.svg (perplexity against active parameters per token, ToMoE beside the static channel
baseline and dense, one panel per model and text; log scale) and OUT_PREFIX-load.svg (per block, the share of the
calibration tokens each expert took, from each ToMoE checkpoint's manifest).
"""
import json, math, os, sys

d = sys.argv[1] if len(sys.argv) > 1 else "target/moe-table"
prefix = sys.argv[2] if len(sys.argv) > 2 else "docs/moe"
rows = [json.loads(l) for l in open(os.path.join(d, "points.jsonl"))]
models = list(dict.fromkeys(r["model"] for r in rows))
texts = [("valid sample", "validPerplexity"), ("WikiText-2 (200 docs)", "wikiPerplexity")]
colors = {"tomoe": "#1f77b4", "static": "#d62728", "dense": "#222"}
W, H, PAD = 420, 260, 55

svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * 2}" height="{H * len(models) + 20}" font-family="sans-serif" font-size="11">',
       f'<rect width="100%" height="100%" fill="white"/>']
for mi, model in enumerate(models):
    for ti, (text, key) in enumerate(texts):
        x0, y0, pw, ph = ti * W + PAD, mi * H + 30, W - PAD - 20, H - 80
        pts = [r for r in rows if r["model"] == model]
        for r in pts:
            r["_active"] = 1.0 if r["method"] == "dense" else r["activeParameters"] / r["parameters"]
        xs = [r["_active"] for r in pts]
        ys = [math.log(r[key]) for r in pts]
        xmin, xmax = min(xs) - 0.05, 1.02
        ymin, ymax = min(ys) - 0.1, max(ys) + 0.1
        X = lambda v: x0 + (v - xmin) / (xmax - xmin) * pw
        Y = lambda v: y0 + ph - (v - ymin) / (ymax - ymin) * ph
        svg.append(f'<text x="{x0}" y="{y0 - 10}" font-weight="bold">{model}, {text}</text>')
        svg.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for t in range(5):
            v = ymin + (ymax - ymin) * t / 4
            svg.append(f'<text x="{x0 - 5}" y="{Y(v) + 4}" text-anchor="end">{math.exp(v):.1f}</text>')
        for t in range(5):
            v = xmin + (xmax - xmin) * t / 4
            svg.append(f'<text x="{X(v)}" y="{y0 + ph + 14}" text-anchor="middle">{v:.0%}</text>')
        svg.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 30}" text-anchor="middle">active parameters per token (share of dense)</text>')
        dense = next(r for r in pts if r["method"] == "dense")
        for method in ("tomoe", "static"):
            line = sorted([r for r in pts if r["method"] == method], key=lambda r: r["_active"]) + [dense]
            path = " ".join(f'{X(r["_active"]):.1f},{Y(math.log(r[key])):.1f}' for r in line)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{colors[method]}" stroke-width="2"/>')
            for r in line[:-1]:
                svg.append(f'<circle cx="{X(r["_active"]):.1f}" cy="{Y(math.log(r[key])):.1f}" r="3.5" fill="{colors[method]}"/>')
        svg.append(f'<circle cx="{X(1.0):.1f}" cy="{Y(math.log(dense[key])):.1f}" r="4" fill="{colors["dense"]}"/>')
        svg.append(f'<text x="{x0 + 8}" y="{y0 + 14}" fill="{colors["tomoe"]}">ToMoE</text>')
        svg.append(f'<text x="{x0 + 8}" y="{y0 + 28}" fill="{colors["static"]}">static channels (element1)</text>')
        svg.append(f'<text x="{x0 + 8}" y="{y0 + 42}" fill="{colors["dense"]}">dense</text>')
svg.append('</svg>')
open(prefix + "-perplexity.svg", "w").write("\n".join(svg))

# expert load per block
loads = []
for name in sorted(os.listdir(d)):
    m = os.path.join(d, name, "skipflow.json")
    if "-tomoe-" in name and os.path.isfile(m):
        s = json.load(open(m))["steps"][-1]["settings"]
        loads.append((name, [b["calibrationLoad"] for b in s["perBlock"]]))
palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
LW, LH = 520, 220
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LW * 2}" height="{LH * ((len(loads) + 1) // 2) + 10}" font-family="sans-serif" font-size="11">',
       '<rect width="100%" height="100%" fill="white"/>']
for i, (name, blocks) in enumerate(loads):
    x0, y0 = (i % 2) * LW + 45, (i // 2) * LH + 30
    pw, ph = LW - 70, LH - 70
    svg.append(f'<text x="{x0}" y="{y0 - 10}" font-weight="bold">{name}: calibration tokens per expert, per block</text>')
    bw = pw / len(blocks)
    for b, load in enumerate(blocks):
        total = sum(load) or 1
        y = y0 + ph
        for e, t in enumerate(load):
            h = ph * t / total
            y -= h
            svg.append(f'<rect x="{x0 + b * bw + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="{palette[e % len(palette)]}"/>')
        if len(blocks) <= 16:
            svg.append(f'<text x="{x0 + b * bw + bw / 2:.1f}" y="{y0 + ph + 13}" text-anchor="middle">{b}</text>')
    svg.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 28}" text-anchor="middle">block (colour: expert; height: share of tokens)</text>')
svg.append('</svg>')
open(prefix + "-load.svg", "w").write("\n".join(svg))

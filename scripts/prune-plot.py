#!/usr/bin/env python3
"""Renders scripts/prune-table.sh's markdown table as an SVG bar chart (no dependencies).

Usage: scripts/prune-plot.py TABLE.md OUT.svg
One panel per model and text: perplexity per importance kind, without and with LoRA recovery, the dense model as a
dashed line.
"""
import sys

rows = []
for line in open(sys.argv[1], encoding="utf-8"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 8 and cells[0] not in ("model", "---"):
        rows.append(cells)

models = list(dict.fromkeys(r[0] for r in rows))
order = ["element1", "element2", "vector", "l1", "l2", "random", "ablation"]
kinds = [k for k in order if any(r[1] == k for r in rows)]
texts = [("valid sample", 5), ("WikiText-2 (200 docs)", 6)]
W, H, PAD = 460, 260, 50
svg = []
width = W * len(texts)
height = H * len(models)
svg.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">')
svg.append(f'<rect width="{width}" height="{height}" fill="white"/>')
for mi, model in enumerate(models):
    for ti, (text, col) in enumerate(texts):
        x0, y0 = ti * W + PAD, mi * H + 30
        pw, ph = W - PAD - 20, H - 80
        dense = next(float(r[col].split()[0]) for r in rows if r[0] == model and r[1] == "(dense)")
        vals = {}
        for r in rows:
            if r[0] == model and r[1] in kinds and r[2] == "sum":
                vals[(r[1], r[3] != "none")] = float(r[col].split()[0])  # the median of "median (min-max)"
        top = max(list(vals.values()) + [dense]) * 1.1
        svg.append(f'<text x="{x0}" y="{y0 - 12}" font-size="13">{model}, {text}: perplexity</text>')
        svg.append(f'<line x1="{x0}" y1="{y0 + ph}" x2="{x0 + pw}" y2="{y0 + ph}" stroke="black"/>')
        svg.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + ph}" stroke="black"/>')
        for k in range(5):
            v = top * k / 4
            y = y0 + ph - ph * v / top
            label = f"{v:.0f}" if top > 50 else f"{v:.1f}"
            svg.append(f'<text x="{x0 - 5}" y="{y + 4}" text-anchor="end">{label}</text>')
        slot = pw / len(kinds)
        for ki, kind in enumerate(kinds):
            for j, recovered in enumerate((False, True)):
                v = vals.get((kind, recovered))
                if v is None:
                    continue
                bh = ph * v / top
                bx = x0 + ki * slot + 6 + j * (slot - 12) / 2
                color = "#9ecae1" if not recovered else "#3182bd"
                svg.append(f'<rect x="{bx:.1f}" y="{y0 + ph - bh:.1f}" width="{(slot - 12) / 2:.1f}" height="{bh:.1f}" fill="{color}"/>')
            svg.append(f'<text x="{x0 + ki * slot + slot / 2:.1f}" y="{y0 + ph + 14}" text-anchor="middle">{kind}</text>')
        yd = y0 + ph - ph * dense / top
        svg.append(f'<line x1="{x0}" y1="{yd:.1f}" x2="{x0 + pw}" y2="{yd:.1f}" stroke="#d62728" stroke-dasharray="4,3"/>')
        svg.append(f'<text x="{x0 + pw}" y="{yd - 3:.1f}" text-anchor="end" fill="#d62728">dense {dense:.2f}</text>')
        ly = y0 + ph + 30
        svg.append(f'<rect x="{x0}" y="{ly - 9}" width="10" height="10" fill="#9ecae1"/><text x="{x0 + 14}" y="{ly}">no recovery</text>')
        svg.append(f'<rect x="{x0 + 100}" y="{ly - 9}" width="10" height="10" fill="#3182bd"/><text x="{x0 + 114}" y="{ly}">LoRA recovery</text>')
svg.append("</svg>")
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(svg) + "\n")

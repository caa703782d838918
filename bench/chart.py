#!/usr/bin/env python3
"""Draws bench/chart.svg from bench/results.tsv: server CPU per request
above `bare`, per route, for every variant (one request in flight per
session). No plotting library needed: plain SVG.

    python3 bench/chart.py [results.tsv] [chart.svg]
"""

import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLORS = {"ours": "#2b7bb9", "ts": "#d9822b"}


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results.tsv")
    target = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "chart.svg")
    with open(source) as tsv:
        rows = [r for r in csv.DictReader(tsv, delimiter="\t") if r["inflight"] == "1"]
    bare = {r["route"]: float(r["cpu_us"]) for r in rows if r["variant"] == "bare"}
    bars = []
    for r in rows:
        if r["variant"] == "bare" or r["route"] not in bare:
            continue
        bars.append((f"{r['variant']} {r['route']}", float(r["cpu_us"]) - bare[r["route"]], r["variant"].split("-")[0]))
    width, row_height, label_width = 760, 18, 230
    top = 40
    height = top + row_height * len(bars) + 30
    scale = (width - label_width - 60) / max((value for _, value, _ in bars), default=1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14">Server CPU per request above bare (µs), one request in flight per session</text>']
    for index, (label, value, owner) in enumerate(bars):
        y = top + index * row_height
        length = max(value, 0) * scale
        parts.append(f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">{label}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row_height - 4}" fill="{COLORS.get(owner, "#888")}"/>')
        parts.append(f'<text x="{label_width + length + 4:.1f}" y="{y + 13}">{value:.1f}</text>')
    parts.append(f'<text x="10" y="{height - 10}">blue: this workspace (ours-*); orange: tower-sessions (ts-*)</text>')
    parts.append("</svg>")
    with open(target, "w") as svg:
        svg.write("\n".join(parts) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

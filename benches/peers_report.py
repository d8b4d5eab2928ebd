#!/usr/bin/env python3
"""peers_report.py CSV OUT_DIR [NOTE] -- table.md and sizes.svg from compare-peers.sh rows.

No third-party modules: the SVG is written by hand so the report needs only python3.
"""
import csv
import html
import sys

csv_path, out_dir = sys.argv[1], sys.argv[2]
note = sys.argv[3] if len(sys.argv) > 3 else ""
rows = [r for r in csv.DictReader(open(csv_path))]
pairs, tools = [], []
for r in rows:
    if r["pair"] not in pairs:
        pairs.append(r["pair"])
    if r["tool"] not in tools:
        tools.append(r["tool"])
# deltaseal first, then peers in harness order
tools = [t for t in tools if t.startswith("deltaseal")] + [t for t in tools if not t.startswith("deltaseal")]
cell = {(r["pair"], r["tool"]): r for r in rows}


def pct(r):
    try:
        return float(r["pct"]) if r["ok"] == "ok" else None
    except (KeyError, ValueError):
        return None


out = ["# deltaseal vs peer delta tools", ""]
out.append(f"Written by `benches/compare-peers.sh` ({note}). Sizes are exact; times are wall")
out.append("clock on a shared machine (compare tools within this run only). Every patch was applied")
out.append("and compared with the new image (`ok`). Peers: `../shared/peers/run_peers.sh`.")
out += ["", "## Patch size, % of the new image (best in bold)", ""]
out.append("| pair | new bytes | " + " | ".join(tools) + " |")
out.append("|---|---:|" + "---:|" * len(tools))
for p in pairs:
    vals = [pct(cell[(p, t)]) if (p, t) in cell else None for t in tools]
    best = min((v for v in vals if v is not None), default=None)
    nb = next((cell[(p, t)]["new_bytes"] for t in tools if (p, t) in cell), "")
    cells = []
    for v in vals:
        if v is None:
            cells.append("–")
        elif v == best:
            cells.append(f"**{v:.2f}**")
        else:
            cells.append(f"{v:.2f}")
    out.append(f"| {p} | {nb} | " + " | ".join(cells) + " |")
out += ["", "## Detail", ""]
out.append("| pair | tool | patch bytes | % of new | diff s | diff RSS MiB | apply s | apply RSS MiB | ok |")
out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
for p in pairs:
    for t in tools:
        r = cell.get((p, t))
        if r:
            out.append(
                f"| {p} | {t} | {r['patch_bytes']} | {r['pct']} | {r['diff_s']} | {r['diff_rss_mb']} "
                f"| {r['apply_s']} | {r['apply_rss_mb']} | {r['ok']} |"
            )
out += ["", "![patch sizes](sizes.svg)", ""]
open(f"{out_dir}/table.md", "w").write("\n".join(out))

# Grouped bar chart: one group per pair, bars = tools, height = % of new.
palette = ["#1b5e20", "#2e7d32", "#43a047", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728"]
bw, gap, h, top, left = 12, 24, 260, 30, 50
gw = bw * len(tools) + gap
width = left + gw * len(pairs) + 180
height = top + h + 80
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
       f'<text x="{left}" y="18" font-size="13">Patch size, % of new image, per pair (relative to the largest patch of the pair)</text>']
for gi, p in enumerate(pairs):
    vals = [pct(cell[(p, t)]) if (p, t) in cell else None for t in tools]
    mx = max((v for v in vals if v is not None), default=1.0) or 1.0
    x0 = left + gi * gw
    for ti, v in enumerate(vals):
        if v is None:
            continue
        bh = h * v / mx
        x = x0 + ti * bw
        svg.append(f'<rect x="{x}" y="{top + h - bh:.1f}" width="{bw - 2}" height="{bh:.1f}" fill="{palette[ti % len(palette)]}">'
                   f'<title>{html.escape(p)} {html.escape(tools[ti])}: {v:.2f}%</title></rect>')
    svg.append(f'<text x="{x0}" y="{top + h + 14}">{html.escape(p)}</text>')
    best = min((v for v in vals if v is not None), default=None)
    if best is not None:
        svg.append(f'<text x="{x0}" y="{top + h + 28}" fill="#555">best {best:.2f}%</text>')
svg.append(f'<line x1="{left - 4}" y1="{top + h}" x2="{left + gw * len(pairs)}" y2="{top + h}" stroke="#000"/>')
for ti, t in enumerate(tools):
    y = top + 10 + ti * 16
    lx = left + gw * len(pairs) + 10
    svg.append(f'<rect x="{lx}" y="{y - 9}" width="10" height="10" fill="{palette[ti % len(palette)]}"/>')
    svg.append(f'<text x="{lx + 14}" y="{y}">{html.escape(t)}</text>')
svg.append("</svg>")
open(f"{out_dir}/sizes.svg", "w").write("\n".join(svg) + "\n")

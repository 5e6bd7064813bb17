"""report.md and plots for `wildsim eval fidelity`, written from the fidelity.json mapping.

    python -m eval.fidelity_report runs/fid/fidelity.json   # rewrite report.md and plots

Plots (PNG, matplotlib Agg): divergences.png — forward KL, backward KL, JS and MAUVE per
simulator (and the optimal mixture) with bootstrap intervals and the real-vs-real floor as a
dashed line;
pairwise_js.png — JS between every pair of simulators (with two or more).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

METRICS = (("forward_kl", "forward KL(real‖sim)"), ("backward_kl", "backward KL(sim‖real)"),
           ("js", "JS"), ("mauve", "MAUVE (higher = closer)"))


def _metrics(result: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The metrics this result holds (fidelity.json files written before MAUVE have no `mauve`)."""
    first = next(iter(result["simulators"].values()), {})
    return tuple(m for m in METRICS if m[0] in first)


def plot_divergences(result: dict[str, Any], path: Path) -> Path:
    """One panel per metric, one bar per simulator (+ mixture, where it has the metric); floor
    dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    bars = {n: s for n, s in result["simulators"].items()}
    if result.get("mixture"):
        bars["optimal mixture"] = result["mixture"]
    metrics = _metrics(result)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 4.2))
    colours = plt.cm.tab10(np.arange(len(bars)) % 10)
    for ax, (key, title) in zip(axes, metrics):
        values = [b.get(key, np.nan) for b in bars.values()]
        ax.bar(range(len(bars)), values, color=colours)
        for i, b in enumerate(bars.values()):
            if key in b.get("ci", {}):
                lo, hi = b["ci"][key]
                ax.errorbar(i, b[key], yerr=[[max(b[key] - lo, 0)], [max(hi - b[key], 0)]],
                            color="black", capsize=4)
        ax.axhline(result["floor"][key], color="grey", linestyle="--", label="floor (real vs real)")
        ax.set_xticks(range(len(bars)), list(bars), rotation=30, ha="right")
        ax.set_title(title)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Fidelity ({result['representation']}, view {result['view']}, k = {result['k']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pairwise(result: dict[str, Any], path: Path) -> Path | None:
    """Heatmap of JS between simulators (None with fewer than two)."""
    names = list(result["pairwise_js"])
    if len(names) < 2:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.array([[result["pairwise_js"][a][b] for b in names] for a in names])
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 1.0 * len(names) + 2.5))
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=float(np.log(2)))
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{m[i, j]:.3f}", ha="center", va="center",
                    color="white" if m[i, j] < 0.45 else "black", fontsize=9)
    fig.colorbar(im, ax=ax, label="JS (max ln 2)")
    ax.set_title("JS between simulators")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _value(block: dict[str, Any], key: str) -> str:
    """The block's value of `key`, – when it lacks it."""
    return _fmt(block[key]) if key in block else "–"


def _cell(block: dict[str, Any], key: str) -> str:
    """`value [low, high]`, the value alone without an interval, – when the block lacks it."""
    if key not in block:
        return "–"
    ci = block.get("ci", {}).get(key)
    return _fmt(block[key]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def _divergence_table(result: dict[str, Any]) -> list[str]:
    metrics = _metrics(result)
    heads = {"forward_kl": "forward KL", "backward_kl": "backward KL", "js": "JS", "mauve": "MAUVE"}
    lines = ["| set | n | " + " | ".join(f"{heads[k]} [CI]" for k, _ in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for name, s in result["simulators"].items():
        lines.append(f"| {name} | {s['n_sim']} | " + " | ".join(_cell(s, k) for k, _ in metrics) + " |")
    f = result["floor"]
    lines.append(f"| *floor: real half vs real half* | {f['n_a']} vs {f['n_b']} | "
                 + " | ".join(_cell(f, k) for k, _ in metrics) + " |")
    mix = result.get("mixture")
    if mix:
        lines.append("| *optimal mixture* | – | " + " | ".join(_cell(mix, k) for k, _ in metrics) + " |")
    return lines


def _cluster_tables(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, c in result["clusters"].items():
        lines += ["", f"### {name}: {c['captured']} captured, {c['missed']} missed, "
                      f"{c['hallucinated']} hallucinated clusters", "",
                  "| cluster | label | real | sim | KL term | top terms | examples |",
                  "|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            ex = " / ".join(f"“{e}”" for e in r["examples"]).replace("|", "\\|")
            lines.append(f"| {r['cluster']} | {r['label']} | {r['count_real']} | {r['count_sim']} | "
                         f"{r['kl_term']:.4f} | {', '.join(r['terms'])} | {ex} |")
    return lines


def _other_views(result: dict[str, Any]) -> list[str]:
    if not result.get("per_view"):
        return []
    lines = ["", "## Other views", "",
             "| view | simulator | forward KL | backward KL | JS | MAUVE | floor JS | floor MAUVE |",
             "|---|---|---|---|---|---|---|---|"]
    for view, body in result["per_view"].items():
        for name, s in body["simulators"].items():
            lines.append(f"| {view} | {name} | {_fmt(s['forward_kl'])} | {_fmt(s['backward_kl'])} | "
                         f"{_fmt(s['js'])} | {_value(s, 'mauve')} | {_fmt(body['floor']['js'])} | "
                         f"{_value(body['floor'], 'mauve')} |")
    return lines


def annotation_lines(annotation: dict[str, Any] | None) -> list[str]:
    """The report's line on the facet annotator: per set, conversations annotated, failed (by
    the reason of the last reply) and retried; nothing for other representations."""
    if not annotation:
        return []
    parts = []
    for name, a in annotation.items():
        reasons = "; ".join(f"{why}: {n}" for why, n in a["failure_reasons"].items())
        parts.append(f"{name} {a['annotated']} annotated, {a['failed']} failed"
                     + (f" ({reasons})" if reasons else "") + f", {a['retried']} retried")
    return ["", "Annotator: " + "; ".join(parts) + "."]


def write_report(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.md and the plots into out_dir; returns the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_divergences(result, out / "divergences.png")
    heat = plot_pairwise(result, out / "pairwise_js.png")
    q = result["quantisation"]
    lines = [f"# Simulator fidelity — {result['representation']} ({result['view']})", "",
             f"Command: `{result['command']}`", "",
             f"Representation **{result['representation']}**, unit {result['unit']}, embedder "
             f"{result['embedder'] or '– (style features)'}"
             + (f", annotator `{result['annotator']}`" if result.get("annotator") else "") + ". "
             f"Clusters: **k = {result['k']}** (requested {result['k_requested']}), PCA to "
             f"{q['pca_dims']} dims ({q['variance']:.0%} variance), k-means {q['backend']} with "
             f"{q['restarts']} restarts, seed {result['seed']}.", "",
             "Items per set: " + ", ".join(f"{n} {v}" for n, v in result["n"].items())
             + ". Skipped: " + (", ".join(f"{n}: {s}" for n, s in result["skipped"].items() if s) or "none") + ".",
             *annotation_lines(result.get("annotation")),
             "", "## Divergences from real users", "",
             "Forward KL high = the simulator misses real behaviours; backward KL high = it shows "
             "behaviours real users don't; JS is symmetric (max ln 2 ≈ 0.693). MAUVE is the area "
             "under the divergence curve of the two histograms (scaling c = "
             f"{result.get('mauve_settings', {}).get('scaling', 5):g}, "
             f"{result.get('mauve_settings', {}).get('grid', 25)} mixture weights): 1 = identical, "
             "near 0 = disjoint; higher is closer. The floor compares "
             "two random halves of the real set: a simulator at the floor is indistinguishable at "
             "this sample size.", "", *_divergence_table(result), "", "![divergences](divergences.png)"]
    if result.get("mixture"):
        w = ", ".join(f"{n} {v:.3f}" for n, v in result["mixture"]["weights"].items())
        lines += ["", "## Optimal mixture", "",
                  f"Weights minimising forward KL of the mixed histogram to real: {w} "
                  f"(EM, {result['mixture']['iterations']} iterations, KKT violation "
                  f"{result['mixture']['kkt_violation']:.1e})."]
    if heat:
        lines += ["", "## Simulators compared with each other", "", "![pairwise JS](pairwise_js.png)"]
    lines += ["", "## Behaviour clusters", "",
              "missed: real share ≫ simulated; hallucinated: simulated ≫ real; captured: neither "
              "(see docs/fidelity.md for the threshold). Rows lead with the largest KL terms."]
    lines += _cluster_tables(result) + _other_views(result)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m eval.fidelity_report OUT/fidelity.json")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    path = Path(argv[0])
    print(write_report(json.loads(path.read_text()), path.parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

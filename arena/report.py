"""The analysis written out: arena.json, report.md, a win-rate heatmap and a ratings plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def write_report(result: dict[str, Any], out: str | Path) -> Path:
    """Write DIR/arena.json, report.md, winrate_heatmap.png, ratings.png; returns DIR."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "arena.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(markdown(result))
    heatmap(result, out / "winrate_heatmap.png")
    ratings_plot(result, out / "ratings.png")
    return out


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _section(title: str, part: dict[str, Any], level: float) -> list[str]:
    pct = f"{level:.0%}"
    lines = [f"## {title}", "", f"{part['battles']} battles from {part['judges']} participants.", ""]
    if part["pairs"]:
        lines += [f"| model_a | model_b | battles | wins_a | ties | wins_b | win_rate_a | SE | "
                  f"Wald {pct} | bootstrap {pct} (by participant) | sign test p |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in part["pairs"]:
            lines.append(f"| {r['model_a']} | {r['model_b']} | {r['battles']} | {r['wins_a']} | "
                         f"{r['ties']} | {r['wins_b']} | {_fmt(r['win_rate_a'])} | {_fmt(r['se'])} "
                         f"| [{_fmt(r['wald'][0])}, {_fmt(r['wald'][1])}] | "
                         f"[{_fmt(r['bootstrap'][0])}, {_fmt(r['bootstrap'][1])}] | "
                         f"{_fmt(r['sign_test_p'], 4)} |")
        lines.append("")
    if part["bradley_terry"]:
        lines += [f"Bradley–Terry ratings (Elo scale, mean 1000; {pct} bootstrap by participant):",
                  "", "| model | rating | interval |", "|---|---|---|"]
        for m, r in sorted(part["bradley_terry"].items(), key=lambda kv: -kv[1]["rating"]):
            lines.append(f"| {m} | {r['rating']:.1f} | [{r['ci_low']:.1f}, {r['ci_high']:.1f}] |")
        if part["bradley_terry_separated"]:
            lines.append(f"\nNo finite rating for {', '.join(part['bradley_terry_separated'])} "
                         "(won or lost every battle): read those ratings as bounds only.")
        lines.append("")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """report.md: per-turn and final-preference tables, ratings, how to read them."""
    level = result["settings"]["level"]
    lines = ["# Arena study analysis", "",
             "win_rate_a counts ties as half a win; SE is the tie-adjusted standard error; the "
             "bootstrap resamples participants (their votes are not independent); the sign test "
             "drops ties.", ""]
    lines += _section("Per-turn votes", result, level)
    lines += _section("Final overall preference", result["final"], level)
    lines += ["![win rates](winrate_heatmap.png)", "", "![ratings](ratings.png)", ""]
    return "\n".join(lines)


def heatmap(result: dict[str, Any], path: Path) -> None:
    """Win rate of the row model over the column model (per-turn votes)."""
    models = sorted({m for r in result["pairs"] for m in (r["model_a"], r["model_b"])})
    grid = [[math.nan] * len(models) for _ in models]
    for r in result["pairs"]:
        i, j = models.index(r["model_a"]), models.index(r["model_b"])
        grid[i][j], grid[j][i] = r["win_rate_a"], 1 - r["win_rate_a"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * max(len(models), 2), 1.2 + 0.9 * max(len(models), 2)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i in range(len(models)):
        for j in range(len(models)):
            if not math.isnan(grid[i][j]):
                ax.text(j, i, f"{grid[i][j]:.2f}", ha="center", va="center")
    ax.set_title("win rate of row over column (ties half)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ratings_plot(result: dict[str, Any], path: Path) -> None:
    """Bradley–Terry ratings with their bootstrap intervals (per-turn votes)."""
    bt = sorted(result["bradley_terry"].items(), key=lambda kv: kv[1]["rating"])
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.5 * max(len(bt), 2)))
    for y, (m, r) in enumerate(bt):
        ax.errorbar(r["rating"], y, xerr=[[r["rating"] - r["ci_low"]], [r["ci_high"] - r["rating"]]],
                    fmt="o", capsize=4)
    ax.set_yticks(range(len(bt)), [m for m, _ in bt])
    ax.axvline(1000, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Bradley–Terry rating (Elo scale, mean 1000)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

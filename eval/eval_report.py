"""Markdown and PNG helpers for the evaluation reports (WildBench, cross-simulator matrix).

Small functions: a markdown table, number formatting, a JSON writer that keeps NaN out of the
file, a bar chart with interval whiskers, and a heatmap with the value written in each cell.
Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

SMOKE_TEST_NOTE = (
    "> **Smoke test only.** The judge here is a 135M-parameter model (SmolLM2-135M-Instruct); its "
    "verdicts say nothing about which assistant is better. The run shows that the pipeline works "
    "end to end; real comparisons need a strong judge (see docs/evaluation.md)."
)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command line of this process (or `argv`), shell-quoted, for the record."""
    args = list(sys.argv if argv is None else argv)
    return " ".join(shlex.quote(a) for a in args)


def is_small_model(spec: str) -> bool:
    """Whether an engine spec names the embedded 135M model (reports then carry SMOKE_TEST_NOTE)."""
    return "smollm2-135m" in spec.lower() or "135m" in spec.lower()


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table: fixed digits, '—' for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def fmt_interval(low: float | None, high: float | None, digits: int = 3) -> str:
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table; cells are str()-ed and pipes escaped."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write data as indented JSON; NaN/inf become null so any JSON reader can load the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2, ensure_ascii=False) + "\n")
    return path


def bar_chart(path: str | Path, labels: Sequence[str], values: Sequence[float | None],
              lows: Sequence[float | None], highs: Sequence[float | None], *, title: str,
              ylabel: str, reference: float | None = None) -> Path:
    """Bars with interval whiskers (a missing value gets no bar and an "n/a" label); `reference`
    draws a dashed horizontal line (e.g. 0.5 for a win rate, 0 for a reward)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = [_num(v) for v in values]
    err_lo = [max(v - _num(lo, v), 0.0) for v, lo in zip(vals, lows)]
    err_hi = [max(_num(hi, v) - v, 0.0) for v, hi in zip(vals, highs)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.6))
    xs = range(len(labels))
    ax.bar(xs, vals, yerr=[err_lo, err_hi], capsize=4, color="#4c72b0")
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
    for x, v in zip(xs, values):
        if _missing(v):
            ax.text(x, reference or 0.0, "n/a", ha="center", va="bottom", color="grey")
    ax.set_xticks(list(xs), list(labels), rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def heatmap(path: str | Path, rows: Sequence[str], cols: Sequence[str],
            values: Sequence[Sequence[float | None]], *, title: str, xlabel: str, ylabel: str,
            digits: int = 2) -> Path:
    """A matrix as colours with the value printed in each cell (None → blank, shown as '—')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.array([[math.nan if v is None else float(v) for v in row] for row in values])
    fig, ax = plt.subplots(figsize=(1.6 * len(cols) + 2.5, 0.8 * len(rows) + 1.8))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(cols)), list(cols), rotation=20, ha="right")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    for i in range(len(rows)):
        for j in range(len(cols)):
            text = "—" if math.isnan(grid[i, j]) else f"{grid[i, j]:.{digits}f}"
            ax.text(j, i, text, ha="center", va="center", color="white", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value: float | None, default: float = 0.0) -> float:
    return default if _missing(value) else float(value)


def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

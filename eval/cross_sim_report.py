"""OUT/report.md and OUT/cross_sim.png (heatmap) for a cross-simulator evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval import eval_report as rep


def _cell(result: dict[str, Any], assistant: str, simulator: str) -> dict[str, Any]:
    return next(c for c in result["cells"]
                if c["assistant"] == assistant and c["simulator"] == simulator)


def write_report(result: dict[str, Any], out: Path) -> Path:
    """Write the markdown report (matrix, cell details, paired comparisons) and the heatmap."""
    assistants, simulators = list(result["assistants"]), list(result["simulators"])
    means = [[_cell(result, a, s)["reward"]["mean"] for s in simulators] for a in assistants]
    rep.heatmap(out / "cross_sim.png", assistants, simulators, means,
                title="Mean reward (training judge)", xlabel="simulator at test time",
                ylabel="assistant")
    lines = ["# Cross-simulator evaluation", ""]
    if result.get("smoke_test"):
        lines += [rep.SMOKE_TEST_NOTE, ""]
    lines += [f"- tasks: `{result['config']['tasks']}` ({result['n_tasks']} tasks, "
              f"{result['config']['samples']} conversation(s) per task and cell)",
              f"- reward: `{result['config']['reward']}` (the training reward config)",
              f"- command: `{result['command']}`", "",
              "## Mean reward (rows: assistants, columns: simulators)", "",
              rep.md_table(["assistant \\ simulator", *simulators],
                           [(a, *[_matrix_cell(_cell(result, a, s)) for s in simulators])
                            for a in assistants]),
              "", "Each cell: mean reward [95% bootstrap CI] (n conversations).", "",
              "![matrix](cross_sim.png)", "", "## Cells", "",
              rep.md_table(["assistant", "simulator", "n", "mean", "SE", "unscored",
                            "judge parse failures", "all judges failed", "mean assistant turns",
                            "end reasons"],
                           [(c["assistant"], c["simulator"], c["n"], rep.fmt(c["reward"]["mean"]),
                             rep.fmt(c["reward"]["se"]), c["unscored"], c["judge_parse_failures"],
                             c["judge_fallbacks"], rep.fmt(c["mean_assistant_turns"], 2),
                             ", ".join(f"{k}: {v}" for k, v in sorted(c["end_reasons"].items())))
                            for c in result["cells"]]), ""]
    lines += _comparison_lines(result)
    if result.get("judge_calls"):
        lines += ["", "## Judge calls", "",
                  rep.md_table(["judge", "from cache", "new"],
                               [(j, c["cached"], c["new"]) for j, c in result["judge_calls"].items()])]
    lines += ["", "Conversations with their rewards and judge verdicts: `conversations/*.jsonl`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _matrix_cell(c: dict[str, Any]) -> str:
    r = c["reward"]
    return (f"{rep.fmt(r['mean'])} {rep.fmt_interval(r['bootstrap']['low'], r['bootstrap']['high'])}"
            f" (n={c['n']})")


def _comparison_lines(result: dict[str, Any]) -> list[str]:
    if not result["comparisons"]:
        return ["## Paired comparisons", "", "(only one assistant: nothing to compare)"]
    rows = [(p["a"], p["b"], p["simulator"], p["n_tasks"], f"{p['wins']}/{p['ties']}/{p['losses']}",
             rep.fmt(p["rate"]), rep.fmt(p["se"]),
             rep.fmt_interval(p["wald"]["low"], p["wald"]["high"]), rep.fmt(p["sign_test_p"]))
            for p in result["comparisons"]]
    return ["## Paired comparisons (same tasks, same simulator)", "",
            "Win rate of A over B from per-task rewards (mean over samples); ties count half; SE "
            "is the tie-adjusted sd(s)/√n; the sign test drops ties (two-sided exact binomial).", "",
            rep.md_table(["A", "B", "simulator", "tasks", "W/T/L", "win rate", "SE", "95% Wald CI",
                          "sign test p"], rows)]

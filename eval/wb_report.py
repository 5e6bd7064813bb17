"""OUT/report.md and OUT/wildbench.png for a WildBench evaluation, from the result JSON data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval import eval_report as rep


def write_report(result: dict[str, Any], out: Path) -> Path:
    """Write the markdown report and the bar chart; returns the report path."""
    mode = result["mode"]
    cfg = result["config"]
    lines = [f"# WildBench — {mode}", ""]
    if result.get("smoke_test"):
        lines += [rep.SMOKE_TEST_NOTE, ""]
    lines += [f"- model under test: `{cfg['model_a']}`",
              f"- reference(s): {', '.join(f'`{b}`' for b in cfg['model_b'])}",
              f"- judge(s): {', '.join(f'`{j}`' for j in cfg['judges'])}",
              f"- data: `{cfg['data']}`, {result['n_tasks']} tasks; prompt version "
              f"{result['prompt_version']}",
              f"- command: `{result['command']}`", ""]
    section = {"reward": _reward_section, "checklist": _checklist_section,
               "score": _score_section}[mode]
    lines += section(result, out)
    lines += ["", "## Tasks per tag group", "",
              rep.md_table(["group", "tasks"], list(result["tag_groups"].items())), "",
              "## Judge calls", "",
              rep.md_table(["judge", "from cache", "new"],
                           [(j, c["cached"], c["new"]) for j, c in result["judge_calls"].items()]),
              "", "Empty responses per model: " +
              ", ".join(f"`{m}` {n}" for m, n in result["empty_responses"].items()), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _reward_section(result: dict[str, Any], out: Path) -> list[str]:
    rows, names, vals, lows, highs = [], [], [], [], []
    for ref, data in result["references"].items():
        s = data["summary"]
        m, w = s["mean"], s["win_rate"]
        rows.append((ref, s["n_scored"], rep.fmt(s["task_macro"]), rep.fmt(m["mean"]),
                     rep.fmt_interval(m["bootstrap"]["low"], m["bootstrap"]["high"]),
                     f"{w['wins']}/{w['ties']}/{w['losses']}", rep.fmt(w["rate"]),
                     rep.fmt(w["sign_test_p"]), s["parse"].get("failed", 0), s["n_unscored"],
                     s["length_penalised"]))
        names.append(ref)
        vals.append(m["mean"])
        lows.append(m["bootstrap"]["low"])
        highs.append(m["bootstrap"]["high"])
    rep.bar_chart(out / "wildbench.png", names, vals, lows, highs, reference=0.0,
                  title="WB-Reward of the model under test", ylabel="mean reward (−1…+1)")
    lines = ["## WB-Reward (model under test vs each reference)", "",
             "Reward per task: +1 / +0.5 / 0 / −0.5 / −1 for A++ / A+ / A=B / B+ / B++ from the "
             "tested model's side, averaged over both orders and all judges. Win/tie/loss counts "
             "tasks with reward > 0 / = 0 / < 0.", "",
             rep.md_table(["reference", "tasks scored", "task-macro", "mean", "95% CI (bootstrap)",
                           "W/T/L", "win rate", "sign test p", "unparsed verdicts",
                           "tasks with no parsed verdict", "length-penalised"], rows), ""]
    mix = result.get("mix", {})
    lines += [f"WB-Reward (mix, mean task-macro over references): {rep.fmt(mix.get('task_macro'))}",
              "", "![WB-Reward](wildbench.png)"]
    for ref, data in result["references"].items():
        if data["summary"]["n_scored"] == 0:
            lines += ["", f"No task against `{ref}` has a parsed verdict: the judge is too weak "
                      "for the prompt, or its replies were cut by judge_max_tokens (see the "
                      "replies in cache/judge.jsonl)."]
            continue
        groups = data["summary"]["groups"]
        lines += ["", f"### Tag groups vs `{ref}`", "",
                  rep.md_table(["group", "weight", "tasks", "mean reward"],
                               [(g["group"], g["weight"], g["n"], rep.fmt(g["mean"]))
                                for g in groups])]
    return lines


def _checklist_section(result: dict[str, Any], out: Path) -> list[str]:
    rows, names, vals, lows, highs = [], [], [], [], []
    for ref, data in result["references"].items():
        s, w = data["summary"], data["summary"]["win_rate"]
        rows.append((ref, w["n"], f"{w['wins']}/{w['ties']}/{w['losses']}", rep.fmt(w["rate"]),
                     rep.fmt(w["se"]), rep.fmt_interval(w["wald"]["low"], w["wald"]["high"]),
                     rep.fmt(w["sign_test_p"]), rep.fmt(s["test_satisfied_fraction"]),
                     rep.fmt(s["ref_satisfied_fraction"]), s["parse"].get("failed", 0),
                     s["unanswered_items"], s["n_without_checklist"]))
        names.append(ref)
        vals.append(w["rate"])
        lows.append(w["wald"]["low"])
        highs.append(w["wald"]["high"])
    rep.bar_chart(out / "wildbench.png", names, vals, lows, highs, reference=0.5,
                  title="Checklist win rate of the model under test", ylabel="win rate (ties ½)")
    return ["## Checklist win rate (model under test vs each reference)", "",
            "Each item is satisfied when a strict majority of the judges that answered say so "
            "(an even split counts as not satisfied). The response with more satisfied items wins "
            "the task; ties count half. SE is the tie-adjusted standard error sd(s)/√n.", "",
            rep.md_table(["reference", "tasks", "W/T/L", "win rate", "SE", "95% Wald CI",
                          "sign test p", "satisfied (test)", "satisfied (ref)",
                          "unparsed verdicts", "unanswered items", "tasks w/o checklist"], rows),
            "", "![checklist win rate](wildbench.png)"]


def _score_section(result: dict[str, Any], out: Path) -> list[str]:
    rows, names, vals, lows, highs = [], [], [], [], []
    for model, data in result["models"].items():
        s, m = data["summary"], data["summary"]["mean"]
        rows.append((model, s["n_scored"], rep.fmt(m["mean"], 2),
                     rep.fmt_interval(m["bootstrap"]["low"], m["bootstrap"]["high"], 2),
                     rep.fmt(s["task_macro"], 2), s["parse"].get("failed", 0)))
        names.append(model)
        vals.append(m["mean"])
        lows.append(m["bootstrap"]["low"])
        highs.append(m["bootstrap"]["high"])
    rep.bar_chart(out / "wildbench.png", names, vals, lows, highs, reference=0.0,
                  title="WB-Score", ylabel="(S − 5) × 2")
    pair_rows = [(ref, d["summary"]["n_pairs"], rep.fmt(d["summary"]["win_rate"]["rate"]),
                  rep.fmt(d["summary"]["win_rate"]["sign_test_p"]))
                 for ref, d in result["references"].items()]
    return ["## WB-Score", "", "Scores 1–10 rescaled as (S − 5) × 2, averaged over judges, then over "
            "tasks (mean) and over tag groups with their weights (task-macro).", "",
            rep.md_table(["model", "tasks scored", "mean", "95% CI (bootstrap)", "task-macro",
                          "unparsed verdicts"], rows), "", "![WB-Score](wildbench.png)", "",
            "### Per-task score comparison (model under test vs reference; ties half)", "",
            rep.md_table(["reference", "pairs", "win rate", "sign test p"], pair_rows)]

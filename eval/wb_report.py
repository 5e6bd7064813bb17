"""OUT/report.md and OUT/wildbench.png for a WildBench evaluation, from the result JSON data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval import eval_report as rep


def write_report(result: dict[str, Any], out: Path) -> Path:
    """Write the markdown report and the bar chart; returns the report path."""
    mode = result["mode"]
    cfg = result["config"]
    lines = [f"# WildBench — {mode} (protocol: {result.get('protocol', 'wildsim')})", ""]
    if result.get("smoke_test"):
        lines += [rep.SMOKE_TEST_NOTE, ""]
    lines += [f"- model under test: `{cfg['model_a']}`",
              f"- reference(s): {', '.join(f'`{b}`' for b in cfg['model_b'])}",
              f"- judge(s): {', '.join(f'`{j}`' for j in cfg['judges'])}",
              f"- data: `{cfg['data']}`, {result['n_tasks']} tasks; prompt version "
              f"{result['prompt_version']}",
              f"- protocol: `{result.get('protocol', 'wildsim')}` (docs/evaluation.md lists what it "
              f"fixes); judge tries per call: {result.get('judge_settings', {}).get('tries', 1)}, "
              f"judge reply budget: {result.get('judge_settings', {}).get('max_tokens')} tokens",
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
                     rep.fmt(s["wins_over_n"]), rep.fmt(w["sign_test_p"]),
                     s["parse"].get("failed", 0), s["n_unscored"], s["n_skipped"],
                     s["n_dropped"], s["length_penalised"]))
        names.append(ref)
        vals.append(m["mean"])
        lows.append(m["bootstrap"]["low"])
        highs.append(m["bootstrap"]["high"])
    units = next(iter(result["references"].values()))["summary"].get("units", "reward x 1")
    rep.bar_chart(out / "wildbench.png", names, vals, lows, highs, reference=0.0,
                  title="WB-Reward of the model under test", ylabel=f"mean {units}")
    lines = ["## WB-Reward (model under test vs each reference)", "",
             f"Reward per task: +1 / +0.5 / 0 / −0.5 / −1 for A++ / A+ / A=B / B+ / B++ from the "
             f"tested model's side, averaged over the judged orders and all judges; shown as "
             f"{units}. Win/tie/loss counts tasks with reward > 0 / = 0 / < 0; 'win rate' counts "
             "ties half, 'wins / n' does not (the paper's). Skipped pairs (official: an empty or "
             "truncated response) stay in the mean's denominator; dropped tasks (paper: a verdict "
             "failed in some order) do not.", "",
             rep.md_table(["reference", "tasks scored", "task-macro", "mean", "95% CI (bootstrap)",
                           "W/T/L", "win rate", "wins / n", "sign test p", "unparsed verdicts",
                           "tasks with no parsed verdict", "skipped", "dropped",
                           "length-penalised"], rows), ""]
    mix = result.get("mix", {})
    how = ("sum of the official references' task-macros ÷ 3" if "official_references_found" in mix
           else "mean task-macro over references")
    lines += [f"WB-Reward (mix, {how}): {rep.fmt(mix.get('task_macro'))}"]
    if "official_references_found" in mix:
        lines += ["", "Official mix: the sum of the task-macros against gpt-4-turbo-2024-04-09, "
                  "claude-3-haiku-20240307 and Llama-2-70b-chat-hf ÷ 3 (a missing one counts 0); "
                  f"found: {', '.join(mix['official_references_found']) or 'none'}; "
                  f"mixture of plain rewards: {rep.fmt(mix.get('mixture_of_rewards'))}"]
    lines += ["", "![WB-Reward](wildbench.png)"]
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
                     rep.fmt(s["wins_over_n"]), rep.fmt(w["sign_test_p"]),
                     rep.fmt(s["test_satisfied_fraction"]), rep.fmt(s["ref_satisfied_fraction"]),
                     s["parse"].get("failed", 0), s["left_out_items"], s["n_without_checklist"],
                     s["n_no_comparable_items"], s["n_incomplete"]))
        names.append(ref)
        vals.append(w["rate"])
        lows.append(w["wald"]["low"])
        highs.append(w["wald"]["high"])
    rep.bar_chart(out / "wildbench.png", names, vals, lows, highs, reference=0.5,
                  title="Checklist win rate of the model under test", ylabel="win rate (ties ½)")
    lines = ["## Checklist win rate (model under test vs each reference)", "",
             "Each item is satisfied when a strict majority of the judges that answered say so "
             "(an even split counts as not satisfied; paper protocol: at least 2 of exactly 3). "
             "Items without a majority verdict on either side are left out of both counts; tasks "
             "without a checklist or without comparable items are left out of the win rate. The "
             "response with more satisfied items wins the task; ties count half. SE is the "
             "tie-adjusted standard error sd(s)/√n.", "",
             rep.md_table(["reference", "tasks scored", "W/T/L", "win rate", "SE", "95% Wald CI",
                           "wins / n", "sign test p", "satisfied (test)", "satisfied (ref)",
                           "unparsed verdicts", "items left out", "tasks w/o checklist",
                           "tasks w/o comparable items", "incomplete tasks"], rows),
             "", "![checklist win rate](wildbench.png)"]
    if result.get("incomplete"):
        lines += ["", f"**INCOMPLETE**: {result['incomplete']} task(s) kept incomplete verdicts "
                  "after every try and are not scored."]
    return lines


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
    units = next(iter(result["models"].values()))["summary"].get("units", "(S - 5) x 2 x 1")
    return ["## WB-Score", "", "Scores 1–10 rescaled as (S − 5) × 2, averaged over judges, then over "
            f"tasks (mean) and over tag groups with their weights (task-macro); shown as {units}.",
            "",
            rep.md_table(["model", "tasks scored", "mean", "95% CI (bootstrap)", "task-macro",
                          "unparsed verdicts"], rows), "", "![WB-Score](wildbench.png)", "",
            "### Per-task score comparison (model under test vs reference; ties half)", "",
            rep.md_table(["reference", "pairs", "win rate", "sign test p"], pair_rows)]

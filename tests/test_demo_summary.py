"""The demo's closing summary: each stage's figures in words, not a dump of its JSON."""

from wildsim.demo import _summary


def test_summary_names_each_stage_figures():
    results = {
        "rl": {"steps": 10, "reward": {"kind": "rule", "rule": "length_band", "lo": 3, "hi": 12},
               "reward_first_quarter": 0.405, "reward_last_quarter": 0.913, "out": "runs/d/train_rl"},
        "simulator": {"summary": "simulator fine-tuning: 241 train conversations, 8 steps",
                      "untuned": {"perplexity": 7.1}},
        "crosssim": {"report": "runs/d/cross_sim/report.md",
                     "mean_reward": {"base x roleplay1-cpu": 0.1667, "rl x roleplay1-cpu": 0.91}},
        "wildbench": {"report": "runs/d/wildbench/report.md", "note": "smoke test"},
    }
    text = _summary(results, {"rl": 505.2, "simulator": 111.0, "crosssim": 104.4, "wildbench": 34.0})
    lines = text.splitlines()
    assert ("- GRPO: 10 steps, reward length_band rule (lo=3, hi=12): first quarter 0.405 -> "
            "last quarter 0.913") in text
    assert "- simulator fine-tuning: 241 train conversations, 8 steps" in lines
    assert "perplexity" not in text  # the stage's raw dict is not dumped
    assert "  - mean reward, base x roleplay1-cpu: 0.167" in lines
    assert "  - mean reward, rl x roleplay1-cpu: 0.910" in lines
    assert "- wildbench: runs/d/wildbench/report.md (smoke test)" in lines
    assert "| rl | 505 |" in lines and "| crosssim | 104 |" in lines


def test_summary_names_each_reward_component():
    reward = {"kind": "weighted", "components": [
        {"name": "judge", "weight": 0.5, "kind": "judge", "judges": ["builtin:x"]},
        {"name": "length", "weight": 0.5, "kind": "rule", "rule": "length_band", "lo": 3, "hi": 12}]}
    results = {"rl": {"steps": 4, "reward": reward, "reward_first_quarter": 0.3,
                      "reward_last_quarter": 0.6, "out": "runs/d/train_rl",
                      "components_per_step": {"judge": [0.5, 0.4, 0.6, 0.5],
                                              "length": [0.1, 0.2, 0.5, 0.7]}}}
    lines = _summary(results, {"rl": 100.0}).splitlines()
    assert lines[2].startswith("- GRPO: 4 steps, reward 0.5 × LLM judge (1 judge) + 0.5 × "
                               "length_band rule (lo=3, hi=12): first quarter 0.300")
    assert "  - component judge (unweighted): first quarter 0.500 -> last quarter 0.500" in lines
    assert "  - component length (unweighted): first quarter 0.100 -> last quarter 0.700" in lines

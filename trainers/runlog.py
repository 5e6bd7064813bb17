"""What a training run writes beside its checkpoints, so a person can follow and audit it.

Files in the run's output directory (see docs/metrics.md for every metric):
- metrics.jsonl      one JSON object per logged step: {"step": n, "reward/mean": …, "loss/kl": …}
- transcripts.jsonl  every episode trained on: step, messages, simulator, persona, end reason,
                     reward and its details (Episode.to_record() plus the step and token counts)
- transcripts.html   the same conversations as a readable page (the latest `html_max_episodes`)
- reward_curve.png   mean episode reward per step, with ± one standard deviation, and each
                     weighted-reward component's own mean, titled with the reward it plots
                     (rewards.describe_reward)

Only the main process writes (pass `is_main=False` on other ranks). Metric names from TRL's own
logs are renamed into the project's namespaces by `rename_trl_metrics`.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from corpora.types import Episode

#: TRL log keys with a project name (anything else from TRL is kept as "trl/<key>").
TRL_NAMES = {
    "loss": "loss/total",
    "policy_loss": "loss/policy",
    "kl": "loss/kl",
    "entropy": "policy/entropy",
    "grad_norm": "optim/grad_norm",
    "learning_rate": "optim/lr",
    "frac_reward_zero_std": "reward/frac_zero_std_groups",
    "clip_ratio/region_mean": "policy/clip_ratio",
    "completions/mean_length": "tokens/policy_per_episode",
    "completions/clipped_ratio": "tokens/truncated_ratio",
}


def rename_trl_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """Map a TRL `on_log` dict to project metric names; drop non-numbers (and NaN/None)."""
    out = {}
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            continue
        out[TRL_NAMES.get(key, key if key.startswith(("reward/", "sim/")) else f"trl/{key}")] = value
    return out


def episode_record(episode: Episode, step: int) -> dict[str, Any]:
    """A transcript line: the episode's record plus the step and its token counts."""
    record = {"step": step, **episode.to_record()}
    if episode.tokens is not None:
        record["tokens"] = {"prompt": len(episode.tokens.prompt_ids),
                            "completion": len(episode.tokens.completion_ids),
                            "policy": sum(episode.tokens.env_mask)}
    return record


class RunLog:
    """Appends metrics and transcripts to a run's output directory; writes the page and plot."""

    def __init__(self, out_dir: str | Path, *, is_main: bool = True, html_max_episodes: int = 400,
                 reward_label: str = ""):
        self.out_dir = Path(out_dir)
        self.reward_label = reward_label
        self.is_main = is_main
        self.html_max_episodes = html_max_episodes
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.transcripts_path = self.out_dir / "transcripts.jsonl"
        self.html_path = self.out_dir / "transcripts.html"
        self.curve_path = self.out_dir / "reward_curve.png"
        if is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if self.is_main and values:
            self._append(self.metrics_path, [{"step": step, **values}])

    def episodes(self, step: int, episodes: Iterable[Episode], phase: str = "train") -> None:
        self.records([{**episode_record(ep, step), "phase": phase} for ep in episodes])

    def records(self, records: Sequence[dict[str, Any]]) -> None:
        """Append ready-made transcript records (e.g. gathered from every rank)."""
        if self.is_main and records:
            self._append(self.transcripts_path, records)

    def finish(self) -> None:
        """Write transcripts.html and reward_curve.png from what was logged."""
        if not self.is_main:
            return
        records = _read_jsonl(self.transcripts_path)[-self.html_max_episodes:]
        self.html_path.write_text(transcripts_html(records))
        rows = _read_jsonl(self.metrics_path)
        if any("reward/mean" in r for r in rows):
            plot_reward_curve(rows, self.curve_path, self.reward_label)

    @staticmethod
    def _append(path: Path, rows: Sequence[dict[str, Any]]) -> None:
        with path.open("a") as f:
            for row in rows:
                f.write(json.dumps(row, default=str) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
.ep{border:1px solid #ccc;border-radius:6px;margin:1.2rem 0;padding:.6rem 1rem}
.meta{color:#555;font-size:.9em}.msg{margin:.4rem 0;padding:.4rem .7rem;border-radius:6px;
white-space:pre-wrap}.user{background:#eef4ff}.assistant{background:#f3f3f3}
.intent{background:#fff6e0;padding:.3rem .6rem;border-radius:4px}
details{font-size:.85em;color:#444}"""


def transcripts_html(records: Sequence[dict[str, Any]]) -> str:
    """A self-contained HTML page showing each episode's conversation, intent, reward and details."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>transcripts</title><style>{_CSS}</style>",
             f"<h1>Transcripts ({len(records)} episodes)</h1>"]
    for r in records:
        reward = r.get("reward")
        shown = f"{reward:.3f}" if isinstance(reward, (int, float)) else "—"
        e = html.escape
        parts.append(
            f"<div class='ep'><div class='meta'>{e(str(r.get('phase', 'train')))} step "
            f"{r.get('step')} · task {e(str(r.get('task_id')))}"
            f" · group {e(str(r.get('group_id')))} #{r.get('sample')} · simulator "
            f"{e(str(r.get('simulator')))} · persona {e(str(r.get('persona')))} · ended: "
            f"{e(str(r.get('end_reason')))} · <b>reward {shown}</b></div>"
            f"<p class='intent'><b>hidden intent:</b> {e(str(r.get('intent')))}</p>")
        for m in r.get("messages", []):
            parts.append(f"<div class='msg {e(m['role'])}'><b>{e(m['role'])}:</b> "
                         f"{e(m['content'])}</div>")
        details = json.dumps({"reward": r.get("reward_details"), "simulator": r.get("sim_details")},
                             indent=1, default=str)
        parts.append(f"<details><summary>details</summary><pre>{e(details)}</pre></details></div>")
    return "\n".join(parts)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Means of each run of `window` consecutive values (len(values) - window + 1 of them)."""
    return [sum(values[i:i + window]) / window for i in range(len(values) - window + 1)]


def reward_curve_title(reward_label: str = "") -> str:
    """The reward curve's title: what is plotted, and under it which reward."""
    return "Episode reward during training" + (f"\n{reward_label}" if reward_label else "")


def component_series(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Each weighted-reward component's per-step mean (reward/component/<name>) as (steps, values)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    prefix = "reward/component/"
    for r in rows:
        for key, value in r.items():
            if key.startswith(prefix) and isinstance(value, (int, float)):
                xs, ys = series.setdefault(key[len(prefix):], ([], []))
                xs.append(r["step"])
                ys.append(float(value))
    return series


def plot_reward_curve(rows: Sequence[dict[str, Any]], path: str | Path, reward_label: str = "") -> Path:
    """Plot reward/mean (± reward/std) against step, and each weighted-reward component's own mean
    (dashed) when the rows have them, and save a PNG; `reward_label` names the reward in the title
    (rewards.describe_reward)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r["step"], r["reward/mean"], r.get("reward/std", 0.0)) for r in rows
              if "reward/mean" in r]
    steps, means, stds = zip(*points)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(steps, means, marker="o", ms=3, label="mean episode reward")
    if len(means) >= 5:
        smooth = moving_average(means, 3)
        ax.plot(steps[1:-1], smooth, lw=2, label="3-step moving average")
    ax.fill_between(steps, [m - s for m, s in zip(means, stds)],
                    [m + s for m, s in zip(means, stds)], alpha=0.2, label="± 1 std")
    for name, (xs, ys) in component_series(rows).items():
        ax.plot(xs, ys, ls="--", marker=".", ms=3, label=f"component {name} (unweighted)")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("reward")
    ax.set_title(reward_curve_title(reward_label), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)

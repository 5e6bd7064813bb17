"""The CPU demo (`make demo`, `wildsim demo`): every workflow of wildsim once, small, on 2 cores.

    wildsim demo --out runs/demo                 # all stages
    wildsim demo --stages '[rl]'                 # only GRPO
    wildsim demo --rl_steps 4 --finetune_steps 4  # a shorter run
    wildsim demo --stages '[rl, ppo]'            # GRPO and PPO on the same preset budget

Stages, each writing into its own folder under --out:
1. rl        GRPO on the builtin SmolLM2-135M-Instruct (LoRA) against the role-play simulator
             (configs/experiments/demo_cpu.yaml): metrics, transcripts (JSONL + HTML), the
             reward curve, the adapter.
2. simulator fine-tune the same model as a user simulator on the bundled sample's train split
             and compare untuned vs tuned on held-out conversations (perplexity of real user
             turns, termination F1).
3. crosssim  the base model and the RL adapter x two role-play simulators, scored by the
             training reward (one scorer for training and evaluation).
4. wildbench WildBench-format pairwise judging of the RL adapter against the base model on the
             bundled sample, judged by the 135M model: a smoke test of the pipeline only.
Optional (not in the default stages, to keep the demo within its time budget):
   ppo       multi-turn PPO with a value head on the same model, reward and simulator
             (configs/experiments/ppo_demo_cpu.yaml), writing the same outputs as stage rl.
It ends with a summary (printed and written to OUT/summary.md).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from corpora.types import Task

from foundation.config import option, parse_config, save_config

STAGES = ("rl", "simulator", "crosssim", "wildbench")
OPTIONAL_STAGES = ("ppo",)


@dataclass
class DemoConfig:
    """Settings of the CPU demo."""

    out: str = option("runs/demo", help="output folder; each stage writes a subfolder")
    stages: list[str] = option(list(STAGES), help=f"stages to run, in order, from "
                               f"{list(STAGES + OPTIONAL_STAGES)}")
    rl_config: str = option("configs/experiments/demo_cpu.yaml", help="GRPO preset of stage rl")
    rl_steps: int = option(0, help="GRPO steps (0: the preset's)")
    ppo_config: str = option("configs/experiments/ppo_demo_cpu.yaml", help="PPO preset of stage ppo")
    ppo_steps: int = option(0, help="PPO steps (0: the preset's)")
    sim_config: str = option("configs/simulators/demo_cpu.yaml",
                             help="simulator fine-tuning preset of stage simulator")
    finetune_steps: int = option(8, help="simulator fine-tuning steps (0: the preset's)")
    heldout_limit: int = option(8, help="held-out conversations scored in stage simulator")
    crosssim_config: str = option("configs/eval/cross_sim_demo.yaml", help="preset of stage crosssim")
    crosssim_tasks: int = option(2, help="held-out tasks per cell in stage crosssim")
    wildbench_config: str = option("configs/eval/wildbench_demo.yaml",
                                   help="preset of stage wildbench")
    wildbench_tasks: int = option(2, help="WildBench sample tasks judged in stage wildbench")
    threads: int = option(0, help="torch CPU threads for every stage (0 = torch's default, one "
                          "per core)")

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = torch's default), got {self.threads}")
        unknown = [s for s in self.stages if s not in STAGES + OPTIONAL_STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from "
                             f"{list(STAGES + OPTIONAL_STAGES)}")


def _rl(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    from trainers.train_rl import TrainRLConfig, run_training

    flags = ["--config", cfg.rl_config, "--out", str(out / "train_rl")]
    if cfg.rl_steps:
        flags += ["--grpo.steps", str(cfg.rl_steps)]
    if cfg.threads:
        flags += ["--threads", str(cfg.threads)]
    rl_cfg = parse_config(TrainRLConfig, flags)
    result = run_training(rl_cfg)
    return {"out": str(result.out_dir), "adapter": str(result.final_dir), "steps": result.steps,
            "reward": rl_cfg.reward, "reward_per_step": result.rewards,
            "components_per_step": _components(result.out_dir),
            "reward_first_quarter": result.reward_start, "reward_last_quarter": result.reward_end,
            "wall_s": round(result.wall_s, 1), "peak_rss_mb": round(result.peak_rss_mb)}


def _ppo(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    from trainers.train_ppo import TrainPPOConfig, run_training

    flags = ["--config", cfg.ppo_config, "--out", str(out / "train_ppo")]
    if cfg.ppo_steps:
        flags += ["--ppo.steps", str(cfg.ppo_steps)]
    if cfg.threads:
        flags += ["--threads", str(cfg.threads)]
    ppo_cfg = parse_config(TrainPPOConfig, flags)
    result = run_training(ppo_cfg)
    return {"out": str(result.out_dir), "adapter": str(result.final_dir), "steps": result.steps,
            "reward": ppo_cfg.reward, "reward_per_step": result.rewards,
            "components_per_step": _components(result.out_dir),
            "reward_first_quarter": result.reward_start, "reward_last_quarter": result.reward_end,
            "wall_s": round(result.wall_s, 1), "peak_rss_mb": round(result.peak_rss_mb)}


def _components(run_dir: Path) -> dict[str, list[float]]:
    """Each weighted-reward component's per-step mean, from the run's metrics.jsonl."""
    from trainers.runlog import component_series

    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {name: ys for name, (_, ys) in component_series(rows).items()}


def _quarters(values: Sequence[float]) -> str:
    """"first quarter a -> last quarter b" of a per-step series (quarters of at least one step)."""
    k = max(1, len(values) // 4)
    return f"first quarter {sum(values[:k]) / k:.3f} -> last quarter {sum(values[-k:]) / k:.3f}"


def _split(out: Path) -> Path:
    """The bundled sample, filtered and split (wildsim data prepare)."""
    from corpora.prepare import main as prepare

    data = out / "data"
    if not (data / "train.jsonl").exists():
        if prepare(["--source", "sample", "--out", str(data)]) != 0:
            raise RuntimeError("wildsim data prepare failed on the bundled sample")
    return data


@dataclass
class DemoFinetuneResult:
    """The demo stage's figures."""

    spec: str
    train_conversations: int
    heldout_conversations: int
    steps: int
    first_loss: float
    last_loss: float
    train_wall_s: float
    eval_wall_s: float
    untuned: Any  # eval.simulator_quality.SimulatorQuality
    tuned: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        u, t = self.untuned, self.tuned
        return (f"simulator fine-tuning: {self.train_conversations} train conversations, "
                f"{self.steps} steps in {self.train_wall_s:.0f} s (loss {self.first_loss:.3f} -> "
                f"{self.last_loss:.3f}); on {self.heldout_conversations} held-out conversations: "
                f"perplexity of real user turns {u.perplexity:.2f} untuned -> {t.perplexity:.2f} "
                f"tuned; termination F1 {u.termination.f1:.3f} -> {t.termination.f1:.3f}")


def run_demo_finetune(train: Sequence[Task], heldout: Sequence[Task], out: str | Path, *,
                      config: str | Path = "configs/simulators/demo_cpu.yaml",
                      overrides: Sequence[str] = (), eval_max_length: int = 1024) -> DemoFinetuneResult:
    """Fine-tune the configured base (the demo: builtin SmolLM2-135M, LoRA, CPU) on `train`, then
    compare untuned vs tuned on `heldout`. `overrides` are extra `--field value` flags. Held-out
    conversations are scored up to `eval_max_length` tokens (at least the training max_length),
    so that cutting long conversations short does not hide where real users ended."""
    from eval.simulator_quality import compare_simulators
    from trainers.sft import SimulatorTrainConfig, train_simulator

    cfg = parse_config(SimulatorTrainConfig, ["--config", str(config), "--out", str(out), *overrides])
    result = train_simulator(cfg, list(train))
    start = time.time()
    scores = compare_simulators(cfg.model, str(out), heldout,
                                max_length=max(cfg.max_length, eval_max_length))
    return DemoFinetuneResult(
        spec=result.spec, train_conversations=result.examples, heldout_conversations=len(heldout),
        steps=result.steps, first_loss=result.losses[0] if result.losses else float("nan"),
        last_loss=result.losses[-1] if result.losses else float("nan"), train_wall_s=result.wall_s,
        eval_wall_s=time.time() - start, untuned=scores["untuned"], tuned=scores["tuned"])


def _simulator(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    from corpora.tasks import read_tasks

    data = _split(out)
    train = read_tasks(data, "train")
    heldout = (read_tasks(data, "test") + read_tasks(data, "validation"))[: cfg.heldout_limit]
    overrides = ["--max_steps", str(cfg.finetune_steps)] if cfg.finetune_steps else []
    result = run_demo_finetune(train, heldout, out / "simulator", config=cfg.sim_config,
                               overrides=overrides)
    print(result.summary())
    return {**result.as_dict(), "summary": result.summary()}


def _adapter_spec(adapter: str) -> str:
    from engines.builtin import builtin_model_dir

    return f"hf:{builtin_model_dir('smollm2-135m-instruct')}@lora={adapter}"


def _crosssim(cfg: DemoConfig, out: Path, adapter: str, reward: dict[str, Any]) -> dict[str, Any]:
    from eval.cross_sim import CrossSimConfig, run_cross_sim

    data = _split(out)
    flags = ["--config", cfg.crosssim_config, "--out", str(out / "cross_sim"),
             "--tasks", str(data / "test.jsonl"), "--limit", str(cfg.crosssim_tasks),
             "--assistants", json.dumps({"base": "builtin:smollm2-135m-instruct",
                                         "rl": _adapter_spec(adapter)}),
             "--reward", json.dumps(reward)]
    path = run_cross_sim(parse_config(CrossSimConfig, flags), ["wildsim", "demo"])
    cells = json.loads(path.read_text())["cells"]
    means = {f"{c['assistant']} x {c['simulator']}": c["reward"]["mean"] for c in cells}
    return {"report": str(path.parent / "report.md"), "json": str(path), "mean_reward": means}


def _wildbench(cfg: DemoConfig, out: Path, adapter: str) -> dict[str, Any]:
    from eval.wildbench import WildBenchConfig, run_wildbench

    flags = ["--config", cfg.wildbench_config, "--out", str(out / "wildbench"),
             "--limit", str(cfg.wildbench_tasks), "--model_a", _adapter_spec(adapter)]
    path = run_wildbench(parse_config(WildBenchConfig, flags), ["wildsim", "demo"])
    return {"report": str(path.parent / "report.md"), "json": str(path),
            "note": "judged by a 135M model: a smoke test of the pipeline, not a measurement"}


def _summary(results: dict[str, Any], wall: dict[str, float]) -> str:
    lines = ["# wildsim CPU demo", ""]
    rl = results.get("rl")
    if rl:
        from rewards import describe_reward

        lines += [f"- GRPO: {rl['steps']} steps, reward {describe_reward(rl['reward'])}: first quarter "
                  f"{rl['reward_first_quarter']:.3f} -> last quarter {rl['reward_last_quarter']:.3f}; "
                  f"curve {rl['out']}/reward_curve.png, transcripts {rl['out']}/transcripts.html"]
        lines += [f"  - component {name} (unweighted): {_quarters(values)}"
                  for name, values in rl.get("components_per_step", {}).items() if values]
    ppo = results.get("ppo")
    if ppo:
        lines += [f"- PPO: {ppo['steps']} steps: first quarter {ppo['reward_first_quarter']:.3f} -> "
                  f"last quarter {ppo['reward_last_quarter']:.3f}; curve {ppo['out']}/reward_curve.png"]
        lines += [f"  - component {name} (unweighted): {_quarters(values)}"
                  for name, values in ppo.get("components_per_step", {}).items() if values]
    sim = results.get("simulator")
    if sim:
        lines += [f"- {sim['summary']}"]
    for stage in ("crosssim", "wildbench"):
        if stage in results:
            lines += [f"- {stage}: {results[stage]['report']}"
                      + (f" ({results[stage]['note']})" if "note" in results[stage] else "")]
            lines += [f"  - mean reward, {cell}: {mean:.3f}"
                      for cell, mean in results[stage].get("mean_reward", {}).items()]
    lines += ["", "| stage | wall s |", "|---|---|"]
    lines += [f"| {s} | {w:.0f} |" for s, w in wall.items()]
    return "\n".join(lines) + "\n"


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "demo_config.yaml")
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    results: dict[str, Any] = {}
    wall: dict[str, float] = {}
    adapter = str(out / "train_rl" / "final")
    for stage in cfg.stages:
        print(f"\n=== demo stage: {stage} ===", flush=True)
        start = time.perf_counter()
        if stage == "rl":
            results["rl"] = _rl(cfg, out)
            adapter = results["rl"]["adapter"]
        elif stage == "ppo":
            results["ppo"] = _ppo(cfg, out)
        elif stage == "simulator":
            results["simulator"] = _simulator(cfg, out)
        elif stage in ("crosssim", "wildbench") and not Path(adapter).exists():
            raise RuntimeError(f"stage {stage} needs the RL adapter at {adapter}: run stage rl first")
        elif stage == "crosssim":
            reward = results.get("rl", {}).get("reward") or _rl_reward(cfg)
            results["crosssim"] = _crosssim(cfg, out, adapter, reward)
        else:
            results["wildbench"] = _wildbench(cfg, out, adapter)
        wall[stage] = time.perf_counter() - start
    (out / "demo.json").write_text(json.dumps({"results": results, "wall_s": wall}, indent=2,
                                              default=str))
    summary = _summary(results, wall)
    (out / "summary.md").write_text(summary)
    print("\n" + summary)
    return results


def _rl_reward(cfg: DemoConfig) -> dict[str, Any]:
    from trainers.train_rl import TrainRLConfig

    return parse_config(TrainRLConfig, ["--config", cfg.rl_config]).reward


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(DemoConfig, argv, prog="wildsim demo", description=__doc__)
    run_demo(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())

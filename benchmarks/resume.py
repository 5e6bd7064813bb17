"""Benchmark what checkpointing and resuming cost a GRPO run.

Three runs of trainers/train_rl.py on the same tiny setting (a tiny random chat model built
locally with engines.tiny, LoRA, its own tiny role-play simulator, 4 tasks, `--steps` GRPO steps,
1 torch thread, the same seed), each in its own process:
- plain:      no checkpoints (save_every 0);
- saved:      a checkpoint every step (save_every 1);
- killed:     the saved run, SIGKILLed as soon as its checkpoint of step `--kill-after` is on
              disk, then started again with `--resume auto` until it finishes.
It prints the wall time of each, the checkpointing cost per checkpoint ((saved − plain) / steps),
the size of one checkpoint folder, and the resume overhead: (killed part + resumed part) − saved,
i.e. what a crash costs beyond the work itself (a second start-up, reading the checkpoint). The
steps trained after the kill are not redone work: the resumed run starts at the checkpoint.

Run:
    python benchmarks/resume.py [--steps 4 --kill-after 2 --hidden 64]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def write_inputs(folder: Path, model_dir: Path, max_tokens: int = 8) -> None:
    """4 tasks (folder/tasks.jsonl) and a zoo holding the tiny role-play simulator (folder/zoo.yaml);
    tests/test_resume_grpo.py uses the same inputs."""
    from corpora.tasks import write_tasks
    from corpora.types import Task

    write_tasks([Task(task_id=f"t{i}", intent=f"You want help with item {i}",
                      opening=f"hello can you help me with item {i}") for i in range(4)],
                folder / "tasks.jsonl")
    (folder / "zoo.yaml").write_text(
        "simulators:\n  tiny-roleplay:\n    kind: roleplay\n"
        f"    engine: hf:{model_dir}\n"
        f"    sampling: {{temperature: 1.0, max_tokens: {max_tokens}}}\n    options: {{opening: real}}\n")


def command(folder: Path, model_dir: Path, out: Path, steps: int, save_every: int) -> list[str]:
    return [sys.executable, str(REPO / "trainers" / "train_rl.py"),
            "--config", str(REPO / "configs/experiments/demo_cpu.yaml"),
            "--policy.model", str(model_dir), "--simulator.name", "tiny-roleplay",
            "--simulator.zoo", str(folder / "zoo.yaml"), "--simulator.quantize", "null",
            "--reward", "{kind: rule, rule: length_band, lo: 3, hi: 12}",
            "--data.source", str(folder / "tasks.jsonl"), "--grpo.steps", str(steps),
            "--grpo.prompts_per_step", "2", "--grpo.num_generations", "2",
            "--grpo.per_device_batch_size", "2", "--rollout.max_turns", "2",
            "--rollout.max_tokens", "8", "--save_every", str(save_every), "--threads", "1",
            "--seed", "7", "--out", str(out)]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def killed_then_resumed(cmd: list[str], marker: Path) -> tuple[float, float]:
    """Seconds until the SIGKILL after `marker` appears, and seconds of the resumed run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = time.perf_counter() - start
    if not marker.exists():
        raise SystemExit("the run ended before its checkpoint was written")
    return first, timed(cmd + ["--resume", "auto"])


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="GRPO steps per run")
    parser.add_argument("--kill-after", type=int, default=2, help="SIGKILL after this checkpoint")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the tiny model")
    args = parser.parse_args(argv)
    from engines.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = build_tiny_model(folder / "model", hidden=args.hidden)
        write_inputs(folder, model_dir)
        plain = timed(command(folder, model_dir, folder / "plain", args.steps, 0))
        saved = timed(command(folder, model_dir, folder / "saved", args.steps, 1))
        checkpoint = folder / "saved" / "checkpoints" / f"checkpoint-{args.steps}"
        size = folder_mb(checkpoint) if checkpoint.exists() else float("nan")
        marker = folder / "killed" / "checkpoints" / f"checkpoint-{args.kill_after}" / "runlog.json"
        first, resumed = killed_then_resumed(
            command(folder, model_dir, folder / "killed", args.steps, 1), marker)
    print(f"tiny model (hidden {args.hidden}), {args.steps} GRPO steps, 1 thread")
    print(f"plain (no checkpoints):       {plain:.1f} s")
    print(f"saved (a checkpoint a step):  {saved:.1f} s  -> {(saved - plain) / args.steps:.2f} s "
          f"per checkpoint; one checkpoint folder {size:.1f} MB")
    print(f"killed after checkpoint {args.kill_after} + resumed: {first:.1f} s + {resumed:.1f} s = "
          f"{first + resumed:.1f} s -> resume overhead {first + resumed - saved:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Checkpoints of a GRPO run, and resuming a run from one.

A checkpoint is a transformers Trainer checkpoint, `<out>/checkpoints/checkpoint-<update>`, written
with `save_only_model=False`: the model or LoRA adapter, the optimizer and scheduler states, the
RNG states of every process and `trainer_state.json` (the optimizer-update count, from which the
Trainer skips the batches already trained: TRL's sampler is seeded, so the data order is fixed).
Rollout sampling needs no saved state: its seeds derive from the run seed and the step
(trainers/grpo.py), and the simulator's from its seed and the episodes' keys.

This module adds two files to each checkpoint, written once the Trainer has saved it:
- `run_config.yaml`  the run's config, so a resume under another config is refused with a message
                     naming each difference (settings that do not change what is trained, such as
                     `out` or `threads`, may differ: `RESUMABLE_CHANGES`);
- `runlog.json`      the run log's position: how many lines metrics.jsonl and transcripts.jsonl held.
                     On resume both files are cut back to those lines, so they continue without a
                     duplicated or a missing step. A checkpoint without it is incomplete (the run
                     died while saving) and is never resumed from.
A finished run leaves `finished.json` in its output folder; resuming it trains 0 steps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from foundation.config import ConfigError

POSITION_FILE = "runlog.json"
CONFIG_FILE = "run_config.yaml"
FINISHED_FILE = "finished.json"
#: Config fields that may change between a run and its resume (they do not change what is trained).
RESUMABLE_CHANGES = frozenset({"out", "resume", "threads", "report_to", "html_max_episodes",
                               "save_every", "save_total_limit", "cpu"})
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(out: str | Path) -> Path:
    """Where a run's checkpoints go (the Trainer's output_dir)."""
    return Path(out) / "checkpoints"


def checkpoint_update(path: str | Path) -> int:
    """The optimizer-update count a checkpoint was written at (from its folder name)."""
    match = _CHECKPOINT.match(Path(path).name)
    if not match:
        raise ConfigError(f"{path} is not a checkpoint folder (expected a name like checkpoint-12)")
    return int(match.group(1))


def complete_checkpoints(out: str | Path) -> list[Path]:
    """The run's complete checkpoints (with a run-log position), oldest first."""
    folder = checkpoint_dir(out)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)
             and (p / POSITION_FILE).is_file()]
    return sorted(found, key=checkpoint_update)


def find_checkpoint(resume: str, out: str | Path) -> Path | None:
    """The checkpoint `--resume` names: "auto" = the latest complete one in the run's output folder
    (None when there is none yet); anything else is a checkpoint folder, which must be complete."""
    if resume == "auto":
        found = complete_checkpoints(out)
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_dir():
        raise ConfigError(f"--resume {resume}: no such checkpoint folder (use --resume auto for the "
                          f"latest checkpoint in {checkpoint_dir(out)})")
    checkpoint_update(path)
    if not (path / POSITION_FILE).is_file():
        raise ConfigError(f"--resume {resume}: the checkpoint is incomplete (no {POSITION_FILE}; the "
                          "run stopped while writing it); resume from an earlier one")
    return path


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def config_differences(saved: dict[str, Any], current: dict[str, Any],
                       ignore: Iterable[str] = RESUMABLE_CHANGES) -> list[str]:
    """Dotted settings whose values differ between two config dicts (top-level names in `ignore`
    are skipped), as "name: saved -> current" lines, sorted by name."""
    skip = set(ignore)
    a, b = _flatten(saved), _flatten(current)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        if key.split(".")[0] in skip:
            continue
        old, new = a.get(key, missing), b.get(key, missing)
        if old != new:
            show = (lambda v: "(absent)" if v is missing else repr(v))
            lines.append(f"{key}: {show(old)} -> {show(new)}")
    return lines


def check_same_config(saved_path: Path, current: dict[str, Any], what: str) -> None:
    """Refuse (ConfigError) when the config saved at `saved_path` differs from `current`."""
    if not saved_path.is_file():
        raise ConfigError(f"{what} has no {saved_path.name}; it was not written by this trainer")
    diff = config_differences(yaml.safe_load(saved_path.read_text()) or {}, current)
    if diff:
        raise ConfigError(f"{what} was written under another config; it differs in "
                          f"{len(diff)} setting(s) (checkpoint -> now): " + "; ".join(diff)
                          + ". Resume with the run's own config, or start a new run in another --out")


def save_position(checkpoint: Path, config: dict[str, Any], metrics_path: Path,
                  transcripts_path: Path) -> None:
    """Write the run config and the run log's position into a checkpoint (main process)."""
    (checkpoint / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    position = {"update": checkpoint_update(checkpoint), "metrics_lines": _lines(metrics_path),
                "transcripts_lines": _lines(transcripts_path)}
    tmp = checkpoint / (POSITION_FILE + ".tmp")
    tmp.write_text(json.dumps(position))
    tmp.replace(checkpoint / POSITION_FILE)  # the file's presence marks the checkpoint complete


def restore_position(checkpoint: Path, metrics_path: Path, transcripts_path: Path) -> list[dict]:
    """Cut metrics.jsonl and transcripts.jsonl back to the checkpoint's position; return the kept
    metrics rows. A log shorter than the position means it was lost or replaced: refused."""
    position = json.loads((checkpoint / POSITION_FILE).read_text())
    for path, key in ((metrics_path, "metrics_lines"), (transcripts_path, "transcripts_lines")):
        keep = int(position[key])
        lines = path.read_text().splitlines(keepends=True) if path.exists() else []
        if len(lines) < keep:
            raise ConfigError(f"{path} holds {len(lines)} lines but checkpoint {checkpoint.name} "
                              f"was written when it held {keep}: the run log does not belong to "
                              "this checkpoint")
        path.write_text("".join(lines[:keep]))
    return [json.loads(x) for x in metrics_path.read_text().splitlines() if x.strip()]


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open() as f:
        return sum(1 for _ in f)


def mark_finished(out: Path, steps: int) -> None:
    """Record that the run in `out` trained all its `steps` GRPO steps."""
    (out / FINISHED_FILE).write_text(json.dumps({"steps": steps}))


def finished_steps(out: Path) -> int | None:
    """The GRPO steps of a finished run in `out`, or None when it has not finished."""
    path = out / FINISHED_FILE
    return int(json.loads(path.read_text())["steps"]) if path.is_file() else None


def save_position_callback(config: dict[str, Any], metrics_path: Path, transcripts_path: Path,
                           is_main: bool):
    """A TrainerCallback writing `save_position` into each checkpoint right after the Trainer
    saved it (by then the step's metrics row and transcripts are written)."""
    from transformers import TrainerCallback

    class SavePositionCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if is_main:
                path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                save_position(path, config, metrics_path, transcripts_path)

    return SavePositionCallback()

"""Every YAML shipped under configs/ loads into its job's config class and references only things
that exist: simulator names in the zoo, persona banks, engine specs that parse, and files that are
either in the repository or written by a command the config's comments name.

Nothing here loads weights or reaches a server: engine specs are parsed, not built.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from engines.spec import parse_spec
from foundation.config import from_dict

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

#: (glob under configs/, "module:ConfigClass"): the job each preset belongs to. A YAML file that no
#: pattern covers fails test_every_yaml_has_a_job: add its job here.
JOBS: list[tuple[str, str]] = [
    ("experiments/ppo_*.yaml", "trainers.train_ppo:TrainPPOConfig"),
    ("experiments/*.yaml", "trainers.train_rl:TrainRLConfig"),
    ("simulators/*.yaml", "trainers.sft:SimulatorTrainConfig"),
    ("eval/cross_sim*.yaml", "eval.cross_sim:CrossSimConfig"),
    ("eval/wildbench*.yaml", "eval.wildbench:WildBenchConfig"),
    ("eval/fidelity*.yaml", "eval.fidelity:FidelityConfig"),
    ("arena/*.yaml", "arena.config:StudyConfig"),
]
#: Files that are not job presets, checked by their own tests below.
OTHER_FILES = {"simulators.yaml", "personas.yaml"}
ACCELERATE_GLOB = "accelerate/*.yaml"

ENGINE_PREFIXES = ("builtin:", "hf:", "vllm:", "openai:")
#: Commands that write files a preset may name before they exist.
PRODUCERS = ("wildsim data prepare", "wildsim data intents", "wildsim simulate", "train_simulator",
             "train_rl.py", "wildsim train", "wildsim demo", "make demo")
#: Values that name data sources that are not repository files.
NOT_FILES = {"sample"}
HUB_DATASETS = {"allenai/WildBench", "allenai/WildChat-1M", "allenai/WildChat-4.8M"}
#: Config keys whose values are file or folder paths.
PATH_KEYS = {"source", "data", "tasks", "real", "zoo", "persona_bank", "out_of"}


def _yaml_files() -> list[Path]:
    return sorted(p for p in CONFIGS.rglob("*.yaml"))


def _job_for(path: Path) -> str | None:
    rel = path.relative_to(CONFIGS)
    for pattern, job in JOBS:
        if rel.match(pattern):
            return job
    return None


def _config_class(job: str) -> type:
    module, name = job.split(":")
    return getattr(importlib.import_module(module), name)


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, leaf value) for every leaf of a YAML document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{key}[{i}]")
    else:
        yield key, value


def _engine_specs(doc: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in _walk(doc) if isinstance(v, str) and v.startswith(ENGINE_PREFIXES)]


def _comments(path: Path) -> list[str]:
    """Comment lines, with shell continuations (a trailing backslash) joined into one line, so a
    command spread over several comment lines counts as one."""
    lines, pending = [], ""
    for line in path.read_text().splitlines():
        if not (line.lstrip().startswith("#") or " #" in line):
            pending = ""
            continue
        # a whole-line comment: its text; an inline one: the whole line (key, value and comment)
        text = line.split("#", 1)[1].strip() if line.lstrip().startswith("#") else line.strip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        lines.append(pending + text)
        pending = ""
    return lines


def _produced_by_named_command(path: Path, value: str) -> bool:
    """True when a comment line of the preset names both the path (or its folder) and a command
    that writes it."""
    stem = value.rstrip("/")
    folder = str(Path(stem).parent)
    for line in _comments(path):
        if (stem in line or (folder not in (".", "") and folder in line)) and any(c in line for c in PRODUCERS):
            return True
    return False


def _path_values(doc: Any) -> list[tuple[str, str]]:
    out = []
    for key, value in _walk(doc):
        leaf = re.sub(r"\[\d+\]$", "", key).split(".")[-1]
        if leaf in PATH_KEYS and isinstance(value, str) and value not in NOT_FILES | HUB_DATASETS:
            out.append((key, value))
        elif key.startswith("simulated[") and isinstance(value, str) and "=" in value:
            out.append((key, value.split("=", 1)[1]))
    return out


def test_every_yaml_has_a_job():
    orphans = [str(p.relative_to(CONFIGS)) for p in _yaml_files()
               if _job_for(p) is None and p.name not in OTHER_FILES
               and not p.relative_to(CONFIGS).match(ACCELERATE_GLOB)]
    assert not orphans, f"presets with no job in tests/test_shipped_configs.py JOBS: {orphans}"


@pytest.mark.parametrize("path", [p for p in _yaml_files() if _job_for(p)], ids=lambda p: str(p.relative_to(CONFIGS)))
def test_preset_loads_and_references_exist(path):
    from simulators.zoo import known_simulators

    doc = yaml.safe_load(path.read_text()) or {}
    from_dict(_config_class(_job_for(path)), doc, where=str(path.relative_to(REPO)))  # validates every field
    zoo = set(known_simulators())
    names = []
    sim = doc.get("simulator")
    if isinstance(sim, dict) and sim.get("name"):
        names.append(sim["name"])
    names += [s for s in doc.get("simulators", []) or [] if isinstance(s, str)]
    missing = [n for n in names if n not in zoo]
    assert not missing, f"{path.name}: simulators {missing} are not in configs/simulators.yaml"
    for key, spec in _engine_specs(doc):
        parse_spec(spec)  # raises SpecError naming the problem
    for key, value in _path_values(doc):
        exists = (REPO / value).exists() or Path(value).exists()
        assert exists or _produced_by_named_command(path, value), (
            f"{path.name}: {key} = {value!r} neither exists nor is named, in a comment, with the "
            f"command that writes it ({', '.join(PRODUCERS)})")


def test_data_prepare_outputs_are_named_as_prepare_writes_them():
    """`wildsim data prepare --out DIR` writes DIR/{train,validation,test}.jsonl: a preset that reads
    a single held-out split names that file, not a folder prepare never creates."""
    from corpora.splits import SPLITS

    for path in _yaml_files():
        if not _job_for(path):
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        tasks = doc.get("tasks")
        if isinstance(tasks, str) and tasks.startswith("runs/") and not (REPO / tasks).exists():
            assert any(tasks.endswith(f"/{s}.jsonl") for s in SPLITS), (
                f"{path.name}: tasks = {tasks!r}; `wildsim data prepare --out DIR` writes "
                f"DIR/{{{','.join(SPLITS)}}}.jsonl")


def test_zoo_entries_parse_and_persona_banks_exist():
    from simulators.persona import load_personas, resolve_path
    from simulators.zoo import load_zoo

    zoo = load_zoo()
    assert len(zoo.names()) >= 6
    for name in zoo.names():
        entry = zoo.get(name)
        if entry.engine:
            parse_spec(entry.engine)
        bank = (entry.options or {}).get("persona_bank")
        if isinstance(bank, str):
            assert resolve_path(bank).exists(), f"zoo entry {name}: persona bank {bank} missing"
            load_personas(bank, (entry.options or {}).get("personas"))
        for member in (entry.options or {}).get("members", []) or []:
            assert member["simulator"] in zoo.names(), f"mixture {name}: unknown member {member}"


def test_accelerate_configs_are_accelerate_yaml():
    for path in CONFIGS.glob(ACCELERATE_GLOB):
        doc = yaml.safe_load(path.read_text())
        assert isinstance(doc, dict) and "distributed_type" in doc, f"{path.name}: not an accelerate config"
        if doc.get("distributed_type") == "DEEPSPEED":
            assert "deepspeed_config" in doc, f"{path.name}: DEEPSPEED without deepspeed_config"


def test_gpu_validation_script_command_lines_parse():
    """benchmarks/gpu_validate.sh --dry-run: both training command lines it would run on a GPU
    parse into valid configs with this project's code (it runs nothing else)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WILDSIM_GPU_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_validate.sh"), "--dry-run"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("  ok: ") == 2, proc.stdout[-2000:] + proc.stderr[-2000:]

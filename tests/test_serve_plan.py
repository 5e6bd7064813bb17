"""`wildsim serve` planning (no server started): which servers a config needs, env-var specs,
per-judge engine options. The servers themselves are started for real in tests/test_vllm_server.py."""

from __future__ import annotations

import pytest
import yaml

from engines.spec import SpecError, parse_spec
from rewards.judge import JudgeReward, judge_entry
from wildsim.serve import config_specs, main, plan_servers


def test_spec_reads_environment_variables_with_defaults(monkeypatch):
    spec = "openai:${WILDSIM_T_URL:-http://localhost:8003/v1}#m"
    monkeypatch.delenv("WILDSIM_T_URL", raising=False)
    assert parse_spec(spec).base_urls == ("http://localhost:8003/v1",)
    monkeypatch.setenv("WILDSIM_T_URL", "http://10.0.0.2:9000/v1")
    assert parse_spec(spec).base_urls == ("http://10.0.0.2:9000/v1",)
    with pytest.raises(SpecError, match=r"WILDSIM_T_UNSET.*not set"):
        parse_spec("openai:${WILDSIM_T_UNSET}#m")


def test_published_config_plans_simulator_and_two_judges(monkeypatch):
    for var in ("WILDSIM_SIMULATOR_URL", "WILDSIM_JUDGE1_URL", "WILDSIM_JUDGE2_URL"):
        monkeypatch.delenv(var, raising=False)
    config = yaml.safe_load(open("configs/experiments/published_grpo.yaml"))
    plans = plan_servers(list(config_specs(config)), models={}, loras={}, gpus=["5", "6,7", "4"])
    assert [(p.port, p.served_name, p.gpus) for p in plans] == [
        (8001, "mistralai/Mistral-Small-3.1-24B-Instruct-2503", "5"),
        (8002, "Qwen/Qwen3-32B", "6,7"), (8003, "Qwen/Qwen2.5-14B-Instruct", "4")]
    assert plans[2].roles == ("simulator roleplay2",)


def test_mixture_needs_both_simulator_servers_and_sftuser_loads_the_merged_folder():
    config = {"simulator": {"name": "mixture"}}
    plans = plan_servers(list(config_specs(config)),
                         models={"sftuser": "runs/simulators/qwen14b/merged"}, loras={}, gpus=[])
    assert [(p.port, p.model, p.served_name) for p in plans] == [
        (8003, "Qwen/Qwen2.5-14B-Instruct", "Qwen/Qwen2.5-14B-Instruct"),
        (8004, "runs/simulators/qwen14b/merged", "sftuser")]
    assert "--served-model-name" in plans[1].command("py")


def test_lora_names_share_their_port_and_unknown_base_is_an_error():
    specs = [("a", "openai:http://localhost:8000/v1#base"), ("b", "openai:http://localhost:8000/v1#rl")]
    plan, = plan_servers(specs, models={}, loras={"rl": "runs/rl/final"}, gpus=[])
    cmd = plan.command("py", cpu=True)
    assert cmd[cmd.index("--lora-modules") + 1] == "rl=runs/rl/final" and "--enforce-eager" in cmd
    assert plan.specs() == ["openai:http://127.0.0.1:8000/v1#base", "openai:http://127.0.0.1:8000/v1#rl"]
    with pytest.raises(SystemExit, match="one server serves one base model"):
        plan_servers(specs, models={}, loras={}, gpus=[])


def test_remote_and_local_engines_are_not_served():
    specs = [("j", "openai:https://api.example.com/v1#gpt"), ("s", "builtin:smollm2-135m-instruct")]
    assert plan_servers(specs, models={}, loras={}, gpus=[]) == []


def test_dry_run_prints_the_commands(capsys):
    assert main(["--config", "configs/eval/cross_sim_gpu.yaml", "--dry-run", "--python", "py",
                 "--lora", "rl-roleplay1=a", "--lora", "rl-roleplay3=b", "--lora", "rl-sftuser=c",
                 "--port-args", "8002=--tensor-parallel-size 2"]) == 0
    out = capsys.readouterr().out
    assert out.count("vllm.entrypoints.openai.api_server") == 5  # assistants, 2 judges, 2 simulators
    assert "--port 8002 --tensor-parallel-size 2" in out


def test_per_judge_engine_options_reach_only_their_judge():
    loaded = []
    config = {"kind": "judge", "engine_options": {"timeout": 30},
              "judges": ["openai:http://localhost:8001/v1#mistral",
                         {"spec": "openai:http://localhost:8002/v1#qwen3",
                          "engine_options": {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}}]}
    JudgeReward.from_config(config, engine_loader=lambda spec, **o: loaded.append((spec, o)) or object())
    assert loaded == [("openai:http://localhost:8001/v1#mistral", {"timeout": 30}),
                      ("openai:http://localhost:8002/v1#qwen3",
                       {"timeout": 30, "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}})]
    with pytest.raises(ValueError, match="unknown keys"):
        judge_entry({"spec": "x", "options": {}})

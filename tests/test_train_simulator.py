"""Simulator fine-tuning on a tiny model: the loss falls, and the saved output (LoRA adapter with
the new token, or a full model) loads back by engine spec, reproduces the trained model and plays
the user."""

from __future__ import annotations

import pytest
import torch

from corpora.types import Episode, Message, Task
from engines.base import Sampling
from simulators.finetuned import FinetunedSimulator, load_simulator_engine
from simulators.flipped import END_TOKEN, build_examples
from trainers.sft import (LoraOptions, SimulatorTrainConfig, load_base, save_outputs,
                          train_on_examples, train_simulator, wrap_lora)

torch.set_num_threads(1)
INTENT = "You are a user chatting with an assistant language model to get a poem."


def tasks(n: int = 8) -> list[Task]:
    conv = (Message("user", "please help me write a poem"), Message("assistant", "sure here"),
            Message("user", "make it shorter"), Message("assistant", "ok"))
    return [Task(f"t{i}", INTENT, conv[0].content, conv) for i in range(n)]


def config(model_dir, out, lora: bool, max_steps: int = 8, **kw) -> SimulatorTrainConfig:
    return SimulatorTrainConfig(model=f"hf:{model_dir}", out=str(out), max_steps=max_steps,
                                learning_rate=5e-3, min_learning_rate=0.0, warmup_ratio=0.0,
                                global_batch_size=4, per_device_batch_size=4, cpu=True,
                                lora=LoraOptions(enabled=lora), **kw)


@pytest.mark.parametrize("lora", [True, False])
def test_a_few_steps_lower_the_loss(tiny_model_dir, tmp_path, lora):
    result = train_simulator(config(tiny_model_dir, tmp_path / "out", lora, save_merged=lora), tasks())
    assert result.examples == 8 and result.steps == 8
    assert result.losses[-1] < result.losses[0] - 0.05
    assert (tmp_path / "out" / "config.yaml").exists()
    weights = "adapter_model.safetensors" if lora else "model.safetensors"
    assert (tmp_path / "out" / weights).exists()
    if lora:  # the merged copy loads as a plain model and knows the end token
        merged = load_simulator_engine(f"hf:{tmp_path / 'out' / 'merged'}")
        adapter = load_simulator_engine(str(tmp_path / "out"))
        probe = adapter.render([Message("system", INTENT), Message("user", "hi")]) + [
            adapter.tokenizer.convert_tokens_to_ids(END_TOKEN)]
        assert torch.allclose(_logits(merged.model, probe), _logits(adapter.model, probe), atol=1e-4)
    assert result.spec == (f"hf:{tiny_model_dir.resolve()}@lora={(tmp_path / 'out').resolve()}"
                           if lora else f"hf:{(tmp_path / 'out').resolve()}")


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("lora", [True, False])
def test_saved_simulator_loads_back_and_plays_the_user(tiny_model_dir, tmp_path, lora):
    cfg = config(tiny_model_dir, tmp_path / "out", lora)
    model, tokenizer, base_path, end_id = load_base(cfg)
    eos_row = model.get_input_embeddings().weight[tokenizer.eos_token_id].detach().clone()
    if lora:
        model = wrap_lora(model, cfg.lora, end_id)
    examples, _ = build_examples(tokenizer, [(t.task_id, t.intent, t.conversation) for t in tasks()])
    trainer = train_on_examples(cfg, model, tokenizer, examples)
    spec = save_outputs(cfg, trainer, tokenizer, base_path)

    engine = load_simulator_engine(spec)
    assert engine.tokenizer.convert_tokens_to_ids(END_TOKEN) == end_id
    probe = examples[0].input_ids  # holds the end token
    assert end_id in probe
    trained = trainer.model.eval()
    assert torch.allclose(_logits(trained, probe), _logits(engine.model, probe), atol=1e-5)
    loaded_row = engine.model.get_input_embeddings()(torch.tensor([end_id]))[0]
    assert not torch.allclose(loaded_row, eos_row)  # the new token's trained row came back

    sim = FinetunedSimulator(engine, sampling=Sampling(temperature=1.0, max_tokens=12), seed=3)
    ep = Episode(task=tasks(1)[0], simulator="sftuser",
                 messages=[Message("user", "please help me write a poem"),
                           Message("assistant", "sure here")])
    turn = sim.reply([ep])[0]
    assert isinstance(turn.text, str) and "guardrail_retries" in ep.sim_details
    again = FinetunedSimulator(engine, sampling=Sampling(temperature=1.0, max_tokens=12), seed=3)
    ep2 = Episode(task=ep.task, simulator="sftuser", messages=list(ep.messages))
    assert again.reply([ep2])[0] == turn  # deterministic under a seed


def test_zoo_entry_loads_a_training_output_folder(tiny_model_dir, tmp_path):
    from simulators.zoo import load_simulator

    out = tmp_path / "sim"
    train_simulator(config(tiny_model_dir, out, lora=True, max_steps=1), tasks(4))
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(f"simulators:\n  sft:\n    kind: finetuned\n    engine: hf:{out}\n"
                   "    sampling: {max_tokens: 8}\n    options: {no_end_turns: 2}\n")
    sim = load_simulator("sft", zoo, seed=1)
    assert isinstance(sim, FinetunedSimulator) and sim.name == "sft" and sim.no_end_turns == 2
    assert sim.engine.tokenizer.convert_tokens_to_ids(END_TOKEN) == len(sim.engine.tokenizer) - 1
    ep = Episode(task=tasks(1)[0], simulator="sft")
    assert sim.open([ep]) == ["please help me write a poem"]


def _wildchat_record(i: int) -> dict:
    turns = ["please help me write a poem", "sure here", "make it shorter", "ok"]
    conv = [{"role": "user" if k % 2 == 0 else "assistant", "content": t, "language": "English",
             "toxic": False, "redacted": False, "turn_identifier": 100 * i + k,
             "hashed_ip": "ip" if k % 2 == 0 else None, "country": "France" if k % 2 == 0 else None,
             "state": None, "header": {} if k % 2 == 0 else None,
             "timestamp": None} for k, t in enumerate(turns)]
    return {"conversation_hash": f"h{i}", "model": "gpt-4", "timestamp": "2023-04-11T05:52:56+00:00",
            "turn": 2, "language": "English", "toxic": False, "redacted": False, "state": None,
            "country": "France", "hashed_ip": "ip", "header": {}, "openai_moderation": [],
            "detoxify_moderation": [], "conversation": conv, "intent": INTENT}


def test_entry_script_trains_from_a_wildchat_file(tiny_model_dir, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(_wildchat_record(i)) + "\n" for i in range(4)))
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(root / "trainers" / "train_simulator.py"), "--model", f"hf:{tiny_model_dir}",
         "--data", str(data), "--split", "train", "--out", str(out), "--max_steps", "2",
         "--global_batch_size", "2", "--per_device_batch_size", "2", "--cpu", "true"],
        capture_output=True, text=True, cwd=root, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4/4 conversations kept" in proc.stdout
    assert f"simulator engine spec: hf:{tiny_model_dir.resolve()}@lora={out.resolve()}" in proc.stdout
    assert "max_steps: 2" in (out / "config.yaml").read_text()

    bad = subprocess.run([sys.executable, str(root / "trainers" / "train_simulator.py"),
                          "--data", str(tmp_path / "missing")], capture_output=True, text=True,
                         cwd=root, timeout=300)
    assert bad.returncode == 2 and "no such file or folder" in bad.stderr
    assert "Traceback" not in bad.stderr

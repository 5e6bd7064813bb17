"""The UserLM turn layout: token-by-token masks on the builtin model's chat template, the
inference prompt equal to the training prefix, and a tiny model trained in that layout that,
reloaded (also as a plain "released" checkpoint named by a zoo entry), writes the user's turn
in the user slot and ends the conversation."""

from __future__ import annotations

import shutil

import pytest
import torch

from corpora.types import Episode, Message, Task
from simulators.finetuned import FinetunedSimulator, recorded_layout
from simulators.flipped import (END_TOKEN, IGNORE, build_example, generation_prompt_ids,
                                user_turn_prompt, userlm_messages)
from trainers.sft import LoraOptions, SimulatorTrainConfig, train_simulator

torch.set_num_threads(1)
INTENT = "You are a user chatting with an assistant language model to get a short poem."
CONV = (Message("user", "please help me write a poem"), Message("assistant", "sure, here it is"),
        Message("user", "make it shorter"), Message("assistant", "ok"))


@pytest.fixture(scope="module")
def smol_tokenizer():
    """The builtin SmolLM2 tokenizer (converted once and cached by engines.builtin) with the end
    token added."""
    from transformers import AutoTokenizer

    from engines.builtin import builtin_model_dir

    tok = AutoTokenizer.from_pretrained(str(builtin_model_dir("smollm2-135m-instruct")))
    tok.add_special_tokens({"extra_special_tokens": [END_TOKEN]}, replace_extra_special_tokens=False)
    return tok


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_userlm_masks_token_by_token_on_the_builtin_template(smol_tokenizer):
    tok = smol_tokenizer
    ex = build_example(tok, INTENT, CONV)  # the default layout
    pieces = [(f"<|im_start|>system\n{INTENT}<|im_end|>\n", False),
              ("<|im_start|>user\n", False), ("please help me write a poem", True),
              ("<|im_end|>", True), ("\n", True),
              ("<|im_start|>assistant\nsure, here it is<|im_end|>\n", False),
              ("<|im_start|>user\n", False), ("make it shorter", True), ("<|im_end|>", True),
              ("\n", True),
              ("<|im_start|>assistant\nok<|im_end|>\n", False),
              ("<|im_start|>user\n", False), (END_TOKEN, True), ("<|im_end|>", True), ("\n", True)]
    ids, labels = [], []
    for text, trained in pieces:
        piece = _ids(tok, text)
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    assert ex.input_ids == ids and ex.labels == labels
    end_id, eot = tok.convert_tokens_to_ids(END_TOKEN), tok.convert_tokens_to_ids("<|im_end|>")
    trained = [t for t in ex.labels if t != IGNORE]
    assert trained[-3:] == [end_id, eot, _ids(tok, "\n")[0]]


def test_inference_prompt_is_the_training_prefix(smol_tokenizer):
    """Before each trained user turn the ids are exactly the simulator's inference prompt (the
    conversation so far, then the user header)."""
    tok = smol_tokenizer
    ex = build_example(tok, INTENT, CONV)
    messages = userlm_messages(INTENT, CONV)
    starts = [i for i in range(len(ex.labels))
              if ex.labels[i] != IGNORE and (i == 0 or ex.labels[i - 1] == IGNORE)]
    assert len(starts) == 3  # two user turns and the end turn
    for k, start in enumerate(starts):
        prefix = messages[: 1 + 2 * k]
        assert ex.input_ids[:start] == generation_prompt_ids(tok, prefix)
        assert user_turn_prompt(tok, prefix).endswith("<|im_start|>user\n")


TASK_CONV = (Message("user", "please help me write a poem"), Message("assistant", "sure here"),
             Message("user", "make it shorter"), Message("assistant", "ok"))


@pytest.fixture(scope="module")
def trained_userlm(tiny_model_dir, tmp_path_factory):
    """A tiny model fully fine-tuned in the userlm layout on one repeated conversation."""
    out = tmp_path_factory.mktemp("userlm") / "sim"
    tasks = [Task(f"t{i}", INTENT, TASK_CONV[0].content, TASK_CONV) for i in range(8)]
    cfg = SimulatorTrainConfig(model=f"hf:{tiny_model_dir}", out=str(out), max_steps=40,
                               learning_rate=1e-2, min_learning_rate=1e-3, warmup_ratio=0.0,
                               global_batch_size=4, per_device_batch_size=4, cpu=True,
                               lora=LoraOptions(enabled=False))
    result = train_simulator(cfg, tasks)
    assert result.examples == 8 and result.losses[-1] < result.losses[0]
    return out


def _play(sim: FinetunedSimulator) -> tuple:
    ep = Episode(task=Task("t", INTENT, TASK_CONV[0].content, TASK_CONV), simulator=sim.name,
                 messages=list(TASK_CONV[:2]))
    second = sim.reply([ep])[0]
    ep.messages += [Message("user", second.text), Message("assistant", "ok")]
    return second, sim.reply([ep])[0]


def test_trained_userlm_model_plays_the_user_and_ends(trained_userlm):
    assert recorded_layout(str(trained_userlm)) == "userlm"
    from engines.base import Sampling

    sim = FinetunedSimulator(str(trained_userlm), sampling=Sampling(temperature=0.0, max_tokens=12))
    second, last = _play(sim)
    assert (second.text, second.ends) == ("make it shorter", False)  # the user's turn, in the user slot
    assert last.ends and last.text == ""                            # then it leaves


def test_zoo_entry_names_a_released_checkpoint_by_engine_spec(trained_userlm, tmp_path):
    """A plain model folder (no wildsim files, as a released checkpoint is) plays the user in the
    userlm layout through a zoo entry."""
    from simulators.zoo import load_simulator

    released = tmp_path / "released"
    shutil.copytree(trained_userlm, released)
    (released / "wildsim_simulator.json").unlink()
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(f"simulators:\n  released-user:\n    kind: finetuned\n    engine: hf:{released}\n"
                   "    sampling: {temperature: 0.0, max_tokens: 12}\n")
    sim = load_simulator("released-user", zoo)
    assert isinstance(sim, FinetunedSimulator) and sim.layout == "userlm"
    second, last = _play(sim)
    assert (second.text, second.ends) == ("make it shorter", False)
    assert last.ends

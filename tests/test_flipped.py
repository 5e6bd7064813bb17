"""Flipped-dialogue examples: roles, token-by-token label masks, stats, and the added end token."""

from __future__ import annotations

import pytest
import torch

from corpora.types import Message
from engines.tiny import build_tiny_tokenizer
from simulators.flipped import (END_TOKEN, IGNORE, FlipError, add_end_token, build_example,
                                build_examples, flip_messages)

torch.set_num_threads(1)

CONV = (Message("user", "please help me write a poem"), Message("assistant", "sure, here it is"),
        Message("user", "make it shorter"), Message("assistant", "ok"))
INTENT = "You are a user chatting with an assistant language model to get a short poem."


@pytest.fixture(scope="module")
def tokenizer():
    tok = build_tiny_tokenizer()
    tok.add_special_tokens({"extra_special_tokens": [END_TOKEN]}, replace_extra_special_tokens=False)
    return tok


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_flip_messages_swaps_roles_and_appends_end():
    flipped = flip_messages(INTENT, CONV)
    assert [m.role for m in flipped] == ["system", "assistant", "user", "assistant", "user", "assistant"]
    assert flipped[0].content == INTENT
    assert flipped[1].content == "please help me write a poem"
    assert flipped[-1].content == END_TOKEN
    assert flip_messages(INTENT, CONV, end=False)[-1].content == "ok"


def test_swapped_labels_token_by_token(tokenizer):
    ex = build_example(tokenizer, INTENT, CONV, layout="swapped")
    # expected (text, trained) pieces, each tokenised on its own
    pieces = [(f"<|im_start|>system\n{INTENT}<|im_end|>\n", False),
              ("<|im_start|>assistant\n", False), ("please help me write a poem", True),
              ("<|im_end|>", True), ("\n", False),
              ("<|im_start|>user\nsure, here it is<|im_end|>\n", False),
              ("<|im_start|>assistant\n", False), ("make it shorter", True), ("<|im_end|>", True),
              ("\n", False),
              ("<|im_start|>user\nok<|im_end|>\n", False),
              ("<|im_start|>assistant\n", False), (END_TOKEN, True), ("<|im_end|>", True), ("\n", False)]
    ids, labels = [], []
    for text, trained in pieces:
        piece = _ids(tokenizer, text)
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    assert ex.input_ids == ids
    assert ex.labels == labels
    end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
    trained = [t for t in ex.labels if t != IGNORE]
    assert trained[-2:] == [end_id, tokenizer.eos_token_id]
    assert ex.n_label_tokens == len(trained)


def test_example_ids_match_inference_prompts(tokenizer):
    """The ids before each trained user turn are exactly what the chat template gives at inference
    (flipped conversation so far + generation prompt), so training and generation agree."""
    ex = build_example(tokenizer, INTENT, CONV, layout="swapped")
    flipped = flip_messages(INTENT, CONV)
    starts = [i for i in range(len(ex.labels))
              if ex.labels[i] != IGNORE and (i == 0 or ex.labels[i - 1] == IGNORE)]
    assert len(starts) == 3  # two user turns and the end turn
    for k, start in enumerate(starts):
        prefix = flipped[: 1 + 2 * k]
        prompt = tokenizer.apply_chat_template([m.as_dict() for m in prefix], tokenize=False,
                                               add_generation_prompt=True)
        assert ex.input_ids[:start] == _ids(tokenizer, prompt)


def test_build_examples_counts_what_it_skips(tokenizer):
    items = [("ok", INTENT, CONV),
             ("trailing", INTENT, CONV + (Message("user", "one more thing"),)),
             ("bad-roles", INTENT, (Message("assistant", "hi"), Message("user", "x"))),
             ("empty-turn", INTENT, (Message("user", " "), Message("assistant", "x"))),
             ("no-intent", "", CONV)]
    examples, stats = build_examples(tokenizer, items)
    assert [e.task_id for e in examples] == ["ok", "trailing"]
    assert examples[0].input_ids == examples[1].input_ids  # the dangling user turn was trimmed
    assert stats.offered == 5 and stats.kept == 2 and stats.trimmed_trailing_user == 1
    assert stats.skipped == {"roles do not alternate starting with the user": 1,
                             "an empty turn": 1, "no intent": 1}
    full = len(examples[0].input_ids)
    kept, stats = build_examples(tokenizer, items[:1], max_length=full)
    assert kept[0].input_ids == examples[0].input_ids and not stats.skipped
    short, stats = build_examples(tokenizer, items[:1], max_length=full - 1)
    assert not short and stats.skipped == {"longer than max_length": 1}  # dropped, never cut


def test_build_example_needs_the_end_token():
    with pytest.raises(FlipError, match="add_end_token"):
        build_example(build_tiny_tokenizer(), INTENT, CONV)


@pytest.mark.parametrize("tied", [True, False])
def test_add_end_token_initialises_from_eos(tied):
    from transformers import AutoModelForCausalLM, LlamaConfig

    tok = build_tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         tie_word_embeddings=tied)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    new_id = add_end_token(model, tok)
    assert new_id == len(tok) - 1 == tok.convert_tokens_to_ids(END_TOKEN)
    assert _ids(tok, f"hi{END_TOKEN}")[-1] == new_id  # one token, never split
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings().weight
    assert emb.shape[0] == out.shape[0] >= len(tok)
    assert torch.equal(emb[new_id], emb[tok.eos_token_id])
    assert torch.equal(out[new_id], out[tok.eos_token_id])
    assert (emb.data_ptr() == out.data_ptr()) == tied
    assert add_end_token(model, tok) == new_id and len(tok) == new_id + 1  # idempotent

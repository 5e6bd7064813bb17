"""HFEngine on a tiny random model: left padding, logprobs, seeding, finish reasons, stop strings, chat."""

from __future__ import annotations

import pytest
import torch

from corpora.types import Message
from engines.base import ChatEngine, Sampling, TokenEngine
from engines.hf import HFEngine, cut_at_stop, left_pad, load_hf, sample_categorical

torch.set_num_threads(1)

GREEDY = Sampling(temperature=0.0, max_tokens=12)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    return HFEngine(model, tokenizer)


@pytest.fixture(scope="module")
def prompts(engine):
    texts = ["hello world please", "a", "write code python function error fix thanks again"]
    return [engine.tokenizer.encode(t) for t in texts]


def test_implements_both_protocols(engine):
    assert isinstance(engine, ChatEngine) and isinstance(engine, TokenEngine)


def test_left_pad_puts_padding_on_the_left():
    ids, mask = left_pad([[5, 6, 7], [9]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 9]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batched_greedy_equals_one_by_one(engine, prompts):
    assert len({len(p) for p in prompts}) == 3  # different lengths, so padding matters
    batched = engine.generate(prompts, GREEDY)
    for prompt, out in zip(prompts, batched):
        alone = engine.generate([prompt], GREEDY)[0]
        assert out.ids == alone.ids
        assert out.finish == alone.finish
        assert out.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_greedy_logprobs_match_a_forward_pass(engine, prompts):
    outs = engine.generate(prompts, GREEDY)
    for prompt, out in zip(prompts, outs):
        assert len(out.logprobs) == len(out.ids) > 0
        assert all(lp <= 0 for lp in out.logprobs)
        full = torch.tensor([prompt + out.ids])
        with torch.no_grad():
            logits = engine.model(full).logits[0]  # (P+T, V)
        logp = torch.log_softmax(logits.float(), -1)
        positions = range(len(prompt) - 1, len(prompt) - 1 + len(out.ids))
        expected = [logp[pos, tok].item() for pos, tok in zip(positions, out.ids)]
        assert out.logprobs == pytest.approx(expected, abs=1e-4)
        # greedy picks the argmax at every step
        assert out.ids == [logp[pos].argmax().item() for pos in positions]


def test_sample_categorical_draws_each_index_with_its_probability():
    probs = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 1.0]])
    torch.manual_seed(0)
    draws = sample_categorical(probs.repeat(20_000, 1)).view(20_000, 2)  # column r: draws of row r
    freq = [torch.bincount(draws[:, r], minlength=4).float() / 20_000 for r in range(2)]
    # 20,000 draws: the standard error of each frequency is at most 0.0036
    assert freq[0].tolist() == pytest.approx([0.5, 0.3, 0.2, 0.0], abs=0.015)
    assert freq[1].tolist() == [0.0, 0.0, 0.0, 1.0]  # zero-probability entries never win


def test_greedy_decoding_equals_transformers_generate(engine, prompts):
    """The engine's own KV-cache loop decodes exactly what `model.generate` decodes, padding included."""
    ids, mask = left_pad(prompts, engine.pad_token_id)
    with torch.no_grad():
        reference = engine.model.generate(
            input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=GREEDY.max_tokens,
            eos_token_id=sorted(engine.eos_token_ids), pad_token_id=engine.pad_token_id)
    ours = engine.generate(prompts, GREEDY)
    for row, out in enumerate(ours):
        expected = reference[row, ids.shape[1]:].tolist()
        eos_at = next((i for i, t in enumerate(expected) if t in engine.eos_token_ids), None)
        expected = expected if eos_at is None else expected[:eos_at + 1]
        assert out.ids == expected


def test_top_p_samples_only_from_the_nucleus(engine, prompts):
    """With top_p every sampled token lies in the smallest set of most likely tokens whose mass
    reaches top_p; the recorded log-prob is still the untruncated one."""
    sampling = Sampling(temperature=1.0, top_p=0.3, max_tokens=6, seed=3)
    outs = engine.generate(prompts, sampling)
    for prompt, out in zip(prompts, outs):
        full = torch.tensor([prompt + out.ids])
        with torch.no_grad():
            logp = torch.log_softmax(engine.model(full).logits[0].float(), -1)
        for step, tok in enumerate(out.ids):
            probs = logp[len(prompt) - 1 + step].exp()
            ranked = probs.argsort(descending=True).tolist()
            mass_before = probs[ranked].cumsum(0) - probs[ranked]
            nucleus = {t for t, m in zip(ranked, mass_before.tolist()) if m < 0.3}
            assert tok in nucleus
            assert out.logprobs[step] == pytest.approx(logp[len(prompt) - 1 + step, tok].item(), abs=1e-4)


def test_sampled_logprobs_use_temperature_scaled_logits(engine, prompts):
    sampling = Sampling(temperature=0.7, max_tokens=8, seed=11)
    out = engine.generate(prompts[:1], sampling)[0]
    full = torch.tensor([prompts[0] + out.ids])
    with torch.no_grad():
        logp = torch.log_softmax(engine.model(full).logits[0].float() / 0.7, -1)
    positions = range(len(prompts[0]) - 1, len(prompts[0]) - 1 + len(out.ids))
    assert out.logprobs == pytest.approx([logp[p, t].item() for p, t in zip(positions, out.ids)],
                                         abs=1e-4)


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(engine, prompts):
    sampling = Sampling(temperature=1.0, top_p=0.9, max_tokens=10, seed=123)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    first = engine.generate(prompts, sampling)
    after = torch.rand(1)
    second = engine.generate(prompts, sampling)
    assert [o.ids for o in first] == [o.ids for o in second]
    assert before.item() == after.item()  # the caller's RNG stream was not consumed
    other = engine.generate(prompts, sampling.with_(seed=124))
    assert [o.ids for o in other] != [o.ids for o in first]


def test_max_tokens_gives_length_and_eos_gives_stop(engine, prompts):
    eos = engine.tokenizer.eos_token_id
    finishes = set()
    for seed in range(20):  # a random model seldom samples EOS: gather both kinds over seeds
        outs = engine.generate(prompts * 4, Sampling(temperature=1.5, max_tokens=6, seed=seed))
        for out in outs:
            assert len(out.ids) <= 6
            if out.finish == "length":
                assert len(out.ids) == 6 and eos not in out.ids
            else:
                assert out.ids[-1] == eos and eos not in out.ids[:-1]
            finishes.add(out.finish)
    assert finishes == {"stop", "length"}


def test_training_mode_is_restored(engine, prompts):
    engine.model.train()
    engine.generate(prompts[:1], GREEDY)
    assert engine.model.training
    engine.model.eval()
    engine.generate(prompts[:1], GREEDY)
    assert not engine.model.training


def test_stop_string_cuts_ids_before_it(engine, prompts):
    tok = engine.tokenizer
    free = engine.generate(prompts[:1], Sampling(temperature=0.0, max_tokens=16))[0]
    text = tok.decode(free.ids, skip_special_tokens=True)
    stop = text[3:5]  # a piece of what greedy decoding will write anyway
    assert stop.strip(), f"greedy text too short for this test: {text!r}"
    out = engine.generate(prompts[:1], Sampling(temperature=0.0, max_tokens=16, stop=(stop,)))[0]
    before = text[:text.find(stop)]
    cut_text = tok.decode(out.ids, skip_special_tokens=True)
    assert out.finish == "stop"
    assert cut_text.startswith(before)
    assert out.ids == free.ids[:len(out.ids)] and len(out.logprobs) == len(out.ids)
    # one token fewer would no longer cover the text before the stop string
    assert not tok.decode(out.ids[:-1]).startswith(before) or before == ""


def test_cut_at_stop_on_hand_built_ids(engine):
    tok = engine.tokenizer
    ids = tok.encode("hello world STOP more text")
    kept, found = cut_at_stop(ids, ["STOP"], tok)
    assert found and tok.decode(kept).startswith("hello world ")
    assert "STOP" not in tok.decode(kept[:-1])
    assert cut_at_stop(ids, ["absent"], tok) == (ids, False)


def test_chat_returns_text_per_conversation(engine):
    convs = [[Message("user", "hello")],
             [Message("system", "be brief"), Message("user", "write a poem")]]
    replies = engine.chat(convs, Sampling(temperature=0.0, max_tokens=8))
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    assert "<|im_end|>" not in "".join(replies)
    ids = engine.render(convs[0])
    assert engine.tokenizer.decode(ids).endswith("<|im_start|>assistant\n")


def test_empty_prompt_is_rejected(engine):
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        engine.generate([[1, 2], []], GREEDY)


def test_peft_wrapped_model_generates(tiny_model_dir, prompts):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    outs = HFEngine(peft_model, tokenizer).generate(prompts, GREEDY)
    assert len(outs) == 3 and all(len(o.ids) == len(o.logprobs) > 0 for o in outs)


def test_lora_adapter_loads_from_its_folder(tiny_model_dir, prompts, tmp_path):
    """An adapter saved with an added token (its own tokenizer) loads on top of the base model and
    generates exactly what the in-memory adapted model does."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|end_conv|>"]})
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # a visible change from the base model
    peft_model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    expected = HFEngine(peft_model, tokenizer).generate(prompts, GREEDY)

    loaded, loaded_tok = load_hf(str(tiny_model_dir), dtype="float32", device="cpu",
                                 adapter=str(tmp_path / "adapter"))
    assert len(loaded_tok) == len(tokenizer)
    got = HFEngine(loaded, loaded_tok).generate(prompts, GREEDY)
    assert [o.ids for o in got] == [o.ids for o in expected]
    base = HFEngine(*load_hf(str(tiny_model_dir), dtype="float32", device="cpu")).generate(prompts, GREEDY)
    assert [o.ids for o in base] != [o.ids for o in expected]


def test_int8_quantized_engine_decodes_close_to_float32(tiny_model_dir, prompts):
    """quantize="int8": every Linear becomes a dynamically quantized one, the embeddings stay, and
    the greedy continuation's log-probs stay close to the float32 model's on its own tokens."""
    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu", quantize="int8")
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    quantized = [m for m in model.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")]
    assert not linears and quantized
    q = HFEngine(model, tokenizer)
    outs = q.generate(prompts, GREEDY)
    ref_model, _ = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    for prompt, out in zip(prompts, outs):
        assert len(out.ids) > 0
        with torch.no_grad():
            logits = ref_model(torch.tensor([prompt + out.ids])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        ref = [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(out.ids)]
        assert max(abs(a - b) for a, b in zip(out.logprobs, ref)) < 0.5


def test_int8_quantization_is_cpu_only_and_named(tiny_model_dir):
    from engines.hf import quantize_int8

    model, _ = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    with pytest.raises(ValueError, match="CPU dynamic quantization"):
        quantize_int8(model, "int8", "cuda")
    with pytest.raises(ValueError, match="quantize must be one of"):
        quantize_int8(model, "int4", "cpu")

"""The fine-tuned simulator's guardrails, with a scripted token engine (no model)."""

from __future__ import annotations

import pytest

from corpora.types import Episode, Message, Task
from engines.base import Sampling, TokenOutput
from engines.tiny import build_tiny_tokenizer
from simulators.base import SIMULATOR_KINDS
from simulators.finetuned import FinetunedSimulator, guardrail_problem, retry_temperature
from simulators.flipped import END_TOKEN

INTENT = "You are a user chatting with an assistant language model to get a sorting function in python."
END = object()  # scripted "the model wrote only the end token"


class ScriptedTokenEngine:
    """Answers call k, prompt i with script(k, i, prompt_text); records every call."""

    def __init__(self, script):
        self.tokenizer = build_tiny_tokenizer()
        self.tokenizer.add_special_tokens({"extra_special_tokens": [END_TOKEN]},
                                          replace_extra_special_tokens=False)
        self.script = script
        self.calls: list[tuple[int, float, int | None]] = []  # (batch size, temperature, seed)

    def generate(self, prompt_ids, sampling: Sampling):
        k = len(self.calls)
        self.calls.append((len(prompt_ids), sampling.temperature, sampling.seed))
        outs = []
        for i, ids in enumerate(prompt_ids):
            reply = self.script(k, i, self.tokenizer.decode(ids))
            text = END_TOKEN if reply is END else reply
            gen = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            outs.append(TokenOutput(gen + [self.tokenizer.eos_token_id], None, "stop"))
        return outs


def episode(users: list[str], task_id: str = "t") -> Episode:
    msgs = []
    for u in users:
        msgs += [Message("user", u), Message("assistant", "here you go")]
    return Episode(task=Task(task_id, INTENT, opening=users[0] if users else None), simulator="sftuser",
                   messages=msgs)


def test_registered_as_finetuned():
    assert SIMULATOR_KINDS.get("finetuned") is FinetunedSimulator


def test_prompt_keeps_roles_and_ends_in_the_user_slot():
    seen = []
    engine = ScriptedTokenEngine(lambda k, i, prompt: seen.append(prompt) or "thanks")
    FinetunedSimulator(engine).reply([episode(["sort my list"])])
    assert seen[0] == (f"<|im_start|>system\n{INTENT}<|im_end|>\n<|im_start|>user\nsort my list"
                       "<|im_end|>\n<|im_start|>assistant\nhere you go<|im_end|>\n<|im_start|>user\n")


def test_swapped_layout_prompt_is_the_flipped_conversation():
    seen = []
    engine = ScriptedTokenEngine(lambda k, i, prompt: seen.append(prompt) or "thanks")
    FinetunedSimulator(engine, layout="swapped").reply([episode(["sort my list"])])
    assert seen[0].startswith(f"<|im_start|>system\n{INTENT}<|im_end|>")
    assert "<|im_start|>assistant\nsort my list<|im_end|>\n<|im_start|>user\nhere you go<|im_end|>" in seen[0]
    assert seen[0].endswith("<|im_start|>assistant\n")


def test_userlm_layout_refuses_a_chat_engine():
    class ChatOnly:
        def chat(self, conversations, sampling):
            return ["hi"] * len(conversations)

    with pytest.raises(ValueError, match="layout: swapped"):
        FinetunedSimulator(ChatOnly())
    assert FinetunedSimulator(ChatOnly(), layout="swapped").reply([episode(["a"])])[0].text == "hi"


def test_repeats_are_resampled_with_rising_temperature_in_batched_rounds():
    # episode 0 repeats its earlier turn twice, then says something new; episode 1 is fine at once
    def script(k, i, prompt):
        if i == 0 and k < 2:
            return "sort my list"
        return "now sort it descending"

    engine = ScriptedTokenEngine(script)
    sim = FinetunedSimulator(engine, sampling=Sampling(temperature=0.7, top_p=0.9, max_tokens=64))
    eps = [episode(["sort my list"], "a"), episode(["fix this bug"], "b")]
    turns = sim.reply(eps)
    assert [t.text for t in turns] == ["now sort it descending"] * 2
    assert [c[0] for c in engine.calls] == [2, 1, 1]  # one call per round, only what needs it
    assert [c[1] for c in engine.calls] == pytest.approx([0.7, 0.75, 0.8])
    assert eps[0].sim_details == {"guardrail_retries": 2, "retries_repeat": 2}
    assert eps[1].sim_details == {"guardrail_retries": 0}
    assert turns[0].details["retries"] == 2 and not turns[0].details["exhausted"]


def test_retries_cap_temperature_and_stop_after_five():
    engine = ScriptedTokenEngine(lambda k, i, p: "sort my list")  # always a repeat
    sim = FinetunedSimulator(engine, sampling=Sampling(temperature=0.9, max_tokens=32))
    ep = episode(["sort my list"])
    (turn,) = sim.reply([ep])
    assert [c[1] for c in engine.calls] == pytest.approx([0.9, 0.95, 1.0, 1.0, 1.0, 1.0])
    assert ep.sim_details == {"guardrail_retries": 5, "retries_repeat": 5, "guardrail_exhausted": 1}
    assert turn.text == "sort my list" and turn.details["exhausted"]


def test_no_ending_on_the_first_turn_but_later_ends():
    engine = ScriptedTokenEngine(lambda k, i, p: END if k == 0 else "and make it faster")
    sim = FinetunedSimulator(engine, no_end_turns=2)
    ep = episode(["sort my list"])  # one user turn so far: may not end yet
    (turn,) = sim.reply([ep])
    assert (turn.text, turn.ends) == ("and make it faster", False)
    assert ep.sim_details["retries_early_end"] == 1

    engine = ScriptedTokenEngine(lambda k, i, p: END)
    late = episode(["sort my list", "and make it faster"])
    (turn,) = FinetunedSimulator(engine, no_end_turns=2).reply([late])
    assert (turn.text, turn.ends) == ("", True)
    assert late.sim_details == {"guardrail_retries": 0} and len(engine.calls) == 1


def test_intent_copy_and_too_short_are_resampled():
    body = INTENT.removeprefix("You are a user chatting with an assistant language model to")
    script = iter([body, "k", "please write a sort function"])
    engine = ScriptedTokenEngine(lambda k, i, p: next(script))
    ep = episode(["hi"])
    (turn,) = FinetunedSimulator(engine).reply([ep])
    assert turn.text == "please write a sort function"
    assert ep.sim_details == {"guardrail_retries": 2, "retries_intent_copy": 1, "retries_too_short": 1}


def test_open_uses_the_real_opening_and_writes_missing_ones():
    engine = ScriptedTokenEngine(lambda k, i, p: END if k == 0 else "write me a sort function")
    with_opening = Episode(task=Task("a", INTENT, opening="real first turn"), simulator="sftuser")
    without = Episode(task=Task("b", INTENT), simulator="sftuser")
    assert FinetunedSimulator(engine).open([with_opening, without]) == [
        "real first turn", "write me a sort function"]
    assert without.sim_details["retries_early_end"] == 1


def test_same_seed_same_sampling_seeds():
    runs = []
    for _ in range(2):
        engine = ScriptedTokenEngine(lambda k, i, p: "sort my list" if k == 0 else "ok then go")
        FinetunedSimulator(engine, seed=7).reply([episode(["sort my list"])])
        runs.append(engine.calls)
    assert runs[0] == runs[1] and runs[0][0][2] != runs[0][1][2]


def test_guardrail_problem_by_hand():
    kw = dict(earlier={"sort my list"}, intent=INTENT, may_end=True, min_chars=2)
    assert guardrail_problem("Sort  my LIST", False, **kw) == "repeat"
    assert guardrail_problem("", True, **kw) is None
    assert guardrail_problem("", True, **{**kw, "may_end": False}) == "early_end"
    assert guardrail_problem("a", False, **kw) == "too_short"
    assert guardrail_problem(INTENT, False, **kw) == "intent_copy"
    assert guardrail_problem("something new", False, **kw) is None
    assert retry_temperature(0.7, 0) == 0.7 and retry_temperature(0.7, 2) == pytest.approx(0.8)
    assert retry_temperature(0.98, 1) == 1.0 and retry_temperature(1.2, 3) == 1.2


def test_published_dedup_resamples_only_an_exact_repeat_of_the_previous_turn():
    # episode a repeats its previous turn exactly (every time: 0.7 + 0.05k, five resamples, then
    # accepted); b repeats an OLDER turn and c changes only the case: both accepted at once
    def script(k, i, prompt):
        return {0: "make it shorter", 1: "sort my list", 2: "Make It Shorter"}[i] if k == 0 else "make it shorter"

    engine = ScriptedTokenEngine(script)
    sim = FinetunedSimulator(engine, dedup="published",
                             sampling=Sampling(temperature=0.7, top_p=0.9, max_tokens=32))
    eps = [episode(["sort my list", "make it shorter"], t) for t in "abc"]
    turns = sim.reply(eps)
    assert [t.text for t in turns] == ["make it shorter", "sort my list", "Make It Shorter"]
    assert [c[0] for c in engine.calls] == [3, 1, 1, 1, 1, 1]
    assert [c[1] for c in engine.calls] == pytest.approx([0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    assert eps[0].sim_details == {"guardrail_retries": 5, "retries_repeat": 5, "guardrail_exhausted": 1}
    assert eps[1].sim_details == eps[2].sim_details == {"guardrail_retries": 0}
    # the project rule resamples b's repeat of an older turn and c's case-only change
    project = FinetunedSimulator(ScriptedTokenEngine(script), sampling=Sampling(temperature=0.7))
    eps = [episode(["sort my list", "make it shorter"], t) for t in "abc"]
    project.reply(eps)
    assert all(ep.sim_details["retries_repeat"] >= 1 for ep in eps)


def test_published_problem_by_hand():
    from simulators.finetuned import published_problem

    assert published_problem("  hi there ", False, previous="hi there", may_end=True) == "repeat"
    assert published_problem("hi there!", False, previous="hi there", may_end=True) is None
    assert published_problem("", True, previous="x", may_end=False) == "early_end"
    assert published_problem("", True, previous="x", may_end=True) is None
    assert published_problem("x", False, previous=None, may_end=True) is None
    with pytest.raises(ValueError, match="dedup must be one of"):
        FinetunedSimulator(ScriptedTokenEngine(lambda k, i, p: "x"), dedup="fuzzy")


# ---- the userlm layout over a served model: openai: engine + the model's tokenizer -------------
@pytest.fixture
def served_tokenizer(tiny_model_dir, tmp_path):
    """The tiny model's tokenizer with the end token, saved as a train_simulator folder has it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tok.add_special_tokens({"extra_special_tokens": [END_TOKEN]}, replace_extra_special_tokens=False)
    tok.save_pretrained(tmp_path / "merged")
    return tok, tmp_path / "merged"


def _zoo(tmp_path, spec, options):
    import yaml

    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump({"simulators": {"sft": {
        "kind": "finetuned", "engine": spec, "options": options,
        "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 32}}}}))
    return path


def test_userlm_layout_plays_the_user_over_the_openai_engine(served_tokenizer, tmp_path, monkeypatch):
    """A zoo entry like the shipped sftuser one: the user turn comes from /v1/completions on
    prompt ids built with the tokenizer option's folder (read through an environment reference)."""
    from simulators.zoo import load_simulator
    from tests.eval_fixtures import ScriptedChatServer
    from tests.test_engines_http import vllm_choice

    tok, folder = served_tokenizer
    bodies = []

    def complete(body):  # the served model: ends the chat once thanked, else asks for more
        bodies.append(body)
        reply = END_TOKEN if "thanks, that works" in tok.decode(body["prompt"]) else "now sort it descending"
        return vllm_choice(tok(reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])

    monkeypatch.setenv("SFT_TOKENIZER", str(folder))
    with ScriptedChatServer(lambda body: "never asked", complete) as srv:
        sim = load_simulator("sft", _zoo(tmp_path, srv.spec("sftuser"),
                                         {"tokenizer": "${SFT_TOKENIZER:-/nowhere}"}), seed=4)
        turns = sim.reply([episode(["sort my list"]), episode(["sort my list", "thanks, that works"])])
    assert sim.layout == "userlm" and srv.calls == {"sftuser": 2}  # no chat request at all
    assert (turns[0].text, turns[0].ends) == ("now sort it descending", False)
    assert (turns[1].text, turns[1].ends) == ("", True)
    first = min(bodies, key=lambda b: len(b["prompt"]))  # episode 0's prompt, in the user slot
    assert tok.decode(first["prompt"]) == (
        f"<|im_start|>system\n{INTENT}<|im_end|>\n<|im_start|>user\nsort my list<|im_end|>\n"
        "<|im_start|>assistant\nhere you go<|im_end|>\n<|im_start|>user\n")
    assert all(b["stop_token_ids"] == [tok.eos_token_id] and b["temperature"] == 0.7
               and b["max_tokens"] == 32 and "seed" in b for b in bodies)


def test_userlm_over_a_server_without_tokenizer_names_the_option(tmp_path):
    from simulators.zoo import load_simulator

    with pytest.raises(ValueError, match="option `tokenizer: "):
        load_simulator("sft", _zoo(tmp_path, "openai:http://127.0.0.1:9/v1#sftuser", {}))
    with pytest.raises(ValueError, match=r"tokenizer '/nowhere/merged' could not be loaded.*--save_merged"):
        load_simulator("sft", _zoo(tmp_path, "openai:http://127.0.0.1:9/v1#sftuser",
                                   {"tokenizer": "/nowhere/merged"}))


def test_the_served_folder_s_training_record_sets_the_layout(served_tokenizer, tmp_path):
    """OUT/merged is served; OUT/wildsim_simulator.json records a swapped-layout training run, so
    the entry writes the user turn after the assistant header."""
    import json

    from simulators.zoo import load_simulator
    from tests.eval_fixtures import ScriptedChatServer
    from tests.test_engines_http import vllm_choice

    tok, folder = served_tokenizer
    (folder.parent / "wildsim_simulator.json").write_text(json.dumps({"spec": "hf:x", "layout": "swapped"}))
    prompts = []

    def complete(body):
        prompts.append(tok.decode(body["prompt"]))
        return vllm_choice(tok("descending please", add_special_tokens=False)["input_ids"] + [tok.eos_token_id])

    with ScriptedChatServer(lambda body: "never asked", complete) as srv:
        sim = load_simulator("sft", _zoo(tmp_path, srv.spec("sftuser"), {"tokenizer": str(folder)}))
        turn = sim.reply([episode(["sort my list"])])[0]
    assert sim.layout == "swapped" and turn.text == "descending please"
    assert prompts[0].endswith("<|im_start|>user\nhere you go<|im_end|>\n<|im_start|>assistant\n")

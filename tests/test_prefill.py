"""The shared-prefix prompt pass (engines/prefill.py): the plan on hand-made prompts, and decoding
through it against the plain pass on a tiny random model."""

from __future__ import annotations

import pytest
import torch

from engines.base import Sampling
from engines.hf import HFEngine, load_hf
from engines.prefill import common_prefix, plan_prefill

torch.set_num_threads(1)


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([7, 8], [7, 8]) == 2


def test_plan_groups_rows_that_share_a_prefix():
    a = list(range(100, 140))          # 40 tokens
    b = list(range(200, 240))
    prompts = [a + [1, 2], b + [3], a + [4], b + [5, 6, 7]]
    plan = plan_prefill(prompts, min_shared=16, max_cost=1.0)
    assert plan is not None
    assert sorted(plan.groups) == [(0, 2), (1, 3)]
    by_group = dict(zip(plan.groups, plan.prefix_len))
    assert by_group[(0, 2)] == 40 and by_group[(1, 3)] == 40
    # cost: 2 groups x 40 prefix tokens + 4 rows x 3 (longest suffix) = 92; plain: 4 x 43 = 172
    assert (plan.cost, plan.plain_cost) == (92, 172)
    assert plan.group_of(4) == [plan.groups.index((0, 2)), plan.groups.index((1, 3))] * 2


def test_identical_prompts_keep_one_token_each():
    p = list(range(50))
    plan = plan_prefill([p, p, p], min_shared=16)
    assert plan is not None and plan.groups == ((0, 1, 2),) and plan.prefix_len == (49,)
    assert (plan.cost, plan.plain_cost) == (49 + 3, 150)


def test_a_lone_row_gets_its_own_group_with_all_but_its_last_token():
    shared = list(range(30))
    prompts = [shared + [1], shared + [2], list(range(500, 520))]
    plan = plan_prefill(prompts, min_shared=16, max_cost=1.0)
    assert plan is not None
    assert dict(zip(plan.groups, plan.prefix_len)) == {(0, 1): 30, (2,): 19}
    # 2 groups x 30 + 3 rows x 1 = 63 against 3 x 31 = 93
    assert (plan.cost, plan.plain_cost) == (63, 93)


@pytest.mark.parametrize("prompts", [
    [[1, 2, 3]],                                  # one row
    [list(range(40)), list(range(100, 140))],     # nothing shared
    [list(range(10)) + [1], list(range(10)) + [2]],  # shares fewer than min_shared tokens
])
def test_no_plan_when_nothing_worth_sharing(prompts):
    assert plan_prefill(prompts, min_shared=16) is None


def test_no_plan_when_it_would_not_save_enough():
    # the shared part is short next to the rows' own long, unequal tails
    shared = list(range(20))
    prompts = [shared + list(range(100, 160)), shared + [5]]
    assert plan_prefill(prompts, min_shared=16, max_cost=0.8) is None


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    return HFEngine(model, tokenizer), HFEngine(model, tokenizer, share_prefixes=False)


def _grouped_prompts(tokenizer):
    system = tokenizer.encode("you are a user who wants help with python code and errors " * 3)
    tails = ["fix my loop", "why does it crash", "thanks", "what is a list comprehension in python"]
    other = tokenizer.encode("translate this sentence into french please and keep it short " * 2)
    return [system + tokenizer.encode(t) for t in tails] + [other + tokenizer.encode(t) for t in tails[:2]]


def test_shared_pass_decodes_like_the_plain_pass(engines):
    shared, plain = engines
    prompts = _grouped_prompts(shared.tokenizer)
    assert plan_prefill(prompts) is not None
    before = dict(shared.prefill_stats)
    greedy = Sampling(temperature=0.0, max_tokens=10)
    a, b = shared.generate(prompts, greedy), plain.generate(prompts, greedy)
    assert shared.prefill_stats["calls_shared"] == before["calls_shared"] + 1
    assert shared.prefill_stats["shared_tokens_saved"] > before["shared_tokens_saved"]
    assert plain.prefill_stats["calls_shared"] == 0
    for x, y in zip(a, b):
        assert x.ids == y.ids and x.finish == y.finish
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
    seeded = Sampling(temperature=1.0, top_p=0.9, max_tokens=10, seed=3)
    a, b = shared.generate(prompts, seeded), plain.generate(prompts, seeded)
    assert [x.ids for x in a] == [y.ids for y in b]
    for x, y in zip(a, b):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_shared_pass_logprobs_match_a_full_forward(engines):
    shared, _ = engines
    prompts = _grouped_prompts(shared.tokenizer)
    outs = shared.generate(prompts, Sampling(temperature=1.0, max_tokens=8, seed=1))
    for prompt, out in zip(prompts, outs):
        with torch.no_grad():
            logits = shared.model(torch.tensor([prompt + out.ids])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        expected = [logp[len(prompt) - 1 + i, tok].item() for i, tok in enumerate(out.ids)]
        assert out.logprobs == pytest.approx(expected, abs=1e-4)


def test_rows_sharing_only_a_generic_opening_split_by_task():
    opening = list(range(30))                        # e.g. the simulator's instructions
    task_a, task_b = list(range(100, 300)), list(range(400, 600))
    prompts = [opening + task_a + [1], opening + task_b + [2], opening + task_a + [3],
               opening + task_b + [4, 5]]
    plan = plan_prefill(prompts, min_shared=16)
    assert plan is not None
    assert dict(zip(plan.groups, plan.prefix_len)) == {(0, 2): 230, (1, 3): 230}
    # 2 x 230 + 4 x 2 = 468, against one group sharing only the opening: 30 + 4 x 202 = 838
    assert (plan.cost, plan.plain_cost) == (468, 4 * 232)

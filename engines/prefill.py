"""The prompt pass of local decoding, computing each shared prompt prefix once.

Batches of a multi-turn rollout repeat long prompt prefixes: the episodes of a GRPO group share
their whole opening prompt, a simulator's prompts share its instructions and the task's intent,
a judge's share its rubric. On a CPU the prompt pass is compute-bound (its cost grows with the
number of prompt tokens, padding included), while a decoding step is bound by reading the weights
and costs about the same for 1 row as for 16. So HFEngine (engines/hf.py) runs the prompt pass in
two parts when that saves work:

1. `plan_prefill` sorts the prompts and splits them into groups of neighbours that share a
   prefix (at least `min_shared` tokens), choosing the split with the fewest padded tokens,
   G·Pmax + B·Smax; each group gets the longest prefix all its rows share, always leaving each row
   at least one token of its own. The plan is kept only when it costs at most `max_cost` of the
   plain pass's B·Lmax.
2. `shared_prefill` runs the G group prefixes (left-padded) through the model, copies each
   group's KV cache to its rows, and runs every row's own suffix (left-padded) on top of it, with
   position ids counted from each row's real prefix length and the padding between prefix and
   suffix masked out.

The result has the same shape contract as a plain left-padded pass: the model output (logits of
the last position, the KV cache of all B rows), the (B, Pmax + Smax) attention mask to keep
extending while decoding, and the (B, 1) position of each row's last prompt token. The logits are
those of the plain pass up to floating-point summation order (tests/test_prefill.py compares
them). Not used when the model's forward passes are collectives (a ZeRO-3-partitioned or FSDP
policy): every rank must make the same number of passes, and a plan depends on the rank's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

MIN_SHARED = 16   # tokens a group's rows must share before sharing is worth a second pass
MAX_COST = 0.8    # use a plan only if it pads and computes at most this share of the plain pass


@dataclass(frozen=True)
class PrefillPlan:
    """How to split one batch's prompt pass.

    groups:     each group's row indices (into the batch), in batch order within the group
    prefix_len: each group's shared prefix length (>= 1; every row keeps >= 1 token of its own)
    cost:       padded tokens the plan computes, G·max(prefix_len) + B·max(suffix length)
    plain_cost: padded tokens of the plain pass, B·max(prompt length)
    """

    groups: tuple[tuple[int, ...], ...]
    prefix_len: tuple[int, ...]
    cost: int
    plain_cost: int

    def group_of(self, batch: int) -> list[int]:
        """Each row's group index."""
        owner = [0] * batch
        for g, rows in enumerate(self.groups):
            for row in rows:
                owner[row] = g
        return owner


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens a and b share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def plan_prefill(prompts: Sequence[Sequence[int]], *, min_shared: int = MIN_SHARED,
                 max_cost: float = MAX_COST) -> PrefillPlan | None:
    """The shared-prefix plan for `prompts` (see the module docstring), or None when it would
    not save enough: fewer than two rows, no two rows sharing `min_shared` tokens, or a cost above
    `max_cost` × the plain pass.

    Groups are runs of the sorted prompts; a threshold t splits the run wherever two neighbours
    share fewer than t tokens. Every threshold >= `min_shared` that occurs between neighbours is
    tried and the cheapest plan kept, so prompts that share a generic opening but differ after it
    (two tasks' simulator prompts) form one group per task, not one group with a short prefix."""
    if len(prompts) < 2:
        return None
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    lcps = [common_prefix(prompts[a], prompts[b]) for a, b in zip(order, order[1:])]
    plain = len(prompts) * max(len(p) for p in prompts)
    best: PrefillPlan | None = None
    for threshold in sorted({n for n in lcps if n >= min_shared}):
        plan = _plan_at(prompts, order, lcps, threshold, plain)
        if plan is not None and (best is None or plan.cost < best.cost):
            best = plan
    if best is None or best.cost > max_cost * plain:
        return None
    return best


def _plan_at(prompts: Sequence[Sequence[int]], order: list[int], lcps: list[int], threshold: int,
             plain: int) -> PrefillPlan | None:
    """The plan whose groups split the sorted prompts where neighbours share < threshold tokens."""
    groups: list[list[int]] = [[order[0]]]
    shared: list[int] = [len(prompts[order[0]])]
    for row, lcp in zip(order[1:], lcps):
        if lcp >= threshold:
            groups[-1].append(row)
            shared[-1] = min(shared[-1], lcp)
        else:
            groups.append([row])
            shared.append(len(prompts[row]))
    prefix_len = [min(s, min(len(prompts[r]) for r in g) - 1) for g, s in zip(groups, shared)]
    if min(prefix_len) < 1:
        return None
    suffix = max(len(prompts[r]) - n for g, n in zip(groups, prefix_len) for r in g)
    cost = len(groups) * max(prefix_len) + len(prompts) * suffix
    return PrefillPlan(groups=tuple(tuple(sorted(g)) for g in groups), prefix_len=tuple(prefix_len),
                       cost=cost, plain_cost=plain)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad prompts to one length.

    Returns input_ids (B, L) and attention_mask (B, L), L = the longest prompt; the mask is 0 on
    padding. Left padding keeps every prompt's last token in the last column, where generation
    continues.
    """
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if len(p):
            ids[row, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[row, width - len(p):] = 1
    return ids.to(device), mask.to(device)


def shared_prefill(model: Any, prompts: Sequence[Sequence[int]], plan: PrefillPlan, pad_id: int,
                   device: torch.device, extra: dict[str, Any]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Run the prompt pass of `prompts` by `plan`; returns (model output, attention mask (B, W),
    position ids of the last prompt token (B, 1)). `extra`: keyword arguments for both forward
    passes (e.g. logits_to_keep=1)."""
    owner = plan.group_of(len(prompts))
    heads = [list(prompts[g[0]][:n]) for g, n in zip(plan.groups, plan.prefix_len)]
    head_ids, head_mask = left_pad(heads, pad_id, device)
    head_pos = (head_mask.cumsum(-1) - 1).masked_fill(head_mask == 0, 0)
    out = model(input_ids=head_ids, attention_mask=head_mask, position_ids=head_pos, use_cache=True,
                **extra)
    index = torch.tensor(owner, dtype=torch.long, device=device)
    cache = out.past_key_values
    cache.reorder_cache(index)  # copies each group's cache to its rows (indices repeat)
    tails = [list(p[plan.prefix_len[owner[r]]:]) for r, p in enumerate(prompts)]
    tail_ids, tail_mask = left_pad(tails, pad_id, device)
    start = torch.tensor([plan.prefix_len[g] for g in owner], device=device)[:, None]
    tail_pos = (start + tail_mask.cumsum(-1) - 1).masked_fill(tail_mask == 0, 0)
    mask = torch.cat([head_mask.index_select(0, index), tail_mask], dim=1)
    out = model(input_ids=tail_ids, attention_mask=mask, position_ids=tail_pos,
                past_key_values=cache, use_cache=True, **extra)
    return out, mask, tail_pos[:, -1:]

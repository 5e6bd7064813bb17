"""The PPO math, as pure tensor functions: reward placement, GAE, whitening, losses, KL, entropy.

Every tensor is (B, T) over the COMPLETION tokens of B episodes (right-padded to T), unless said
otherwise. `mask` is the rollout's env_mask (trainers/rollout.py): 1 exactly on tokens the policy
generated, 0 on environment tokens (template glue, simulator turns) and on padding. A position i
holds the action "emit token i"; values[i] is V(s_i), the critic's estimate before token i.

Rewards (`token_rewards`), per episode row:
    r_i = −kl_coef · kl_i                      on every generated token i
        + R_turn(k)    on the last generated token of assistant turn k (turn-level, optional)
        + R_terminal   on the episode's last generated token
and 0 on environment positions.

GAE over the generated positions only (`masked_gae`). Take a row's generated positions in order
g_1 < g_2 < … < g_n and skip every environment position between them, so a user turn neither adds
a step nor discounts the return:

    δ_k = r_{g_k} + γ · V_{g_{k+1}} − V_{g_k}        (V_{g_{n+1}} = 0: the episode ends)
    A_k = δ_k + γλ · A_{k+1}                          (A_{n+1} = 0)
    returns_k = A_k + V_{g_k}

Both outputs are 0 where mask is 0; a row with no generated token is all zeros.

Losses, over mask-1 tokens only (`masked_mean` = Σ mask·x / Σ mask):
    ratio = exp(logp − logp_old)
    policy loss  = mean(max(−A · ratio, −A · clip(ratio, 1 − ε, 1 + ε)))
    value loss   = ½ · mean(max((V − R)², (V_old + clip(V − V_old, −ε_v, ε_v) − R)²))
    approx_kl    = mean((ratio − 1) − log ratio)    (k3 estimator of KL(old ‖ new), ≥ 0)
    KL penalty k1 = logp − logp_ref;  k3 = exp(logp_ref − logp) − 1 − (logp_ref − logp)
    entropy      = mean(−Σ_v p_v log p_v) of the policy's next-token distribution
    explained variance = 1 − Var(R − V) / Var(R)

Variances are unbiased (Bessel's correction, n − 1), as in the field's PPO implementations; with
fewer than two masked values the variance is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


def _check_same_shape(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"tensors must share one (B, T) shape, got {shapes}")


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Σ mask·x / Σ mask over all elements (dim None, a scalar) or along `dim`; 0 where the mask
    is empty. x, mask: same shape."""
    mask = mask.to(x.dtype)
    total = (x * mask).sum() if dim is None else (x * mask).sum(dim)
    count = mask.sum() if dim is None else mask.sum(dim)
    return total / count.clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of the masked elements (scalar); 0 with fewer than two of them."""
    mask = mask.to(x.dtype)
    count = mask.sum()
    if count < 2:
        return x.new_zeros(())
    centred = (x - masked_mean(x, mask)) * mask
    return (centred ** 2).sum() / (count - 1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True,
                  eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / sqrt(var + eps) with the masked mean and unbiased variance; with shift_mean
    False the mean is added back (only the scale changes). 0 where mask is 0. Shape kept."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask.to(x.dtype)


def masked_gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
               lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation skipping environment positions (module docstring).

    rewards, values, mask: (B, T) float. Returns (advantages, returns), both (B, T), 0 where mask
    is 0. Raises ValueError when a reward sits on a mask-0 position (rewards belong to the
    policy's tokens: a reward there would be silently lost)."""
    _check_same_shape(rewards=rewards, values=values, mask=mask)
    keep = mask > 0
    stray = (rewards != 0) & ~keep
    if bool(stray.any()):
        where = [tuple(i) for i in stray.nonzero().tolist()[:5]]
        raise ValueError(f"non-zero rewards on environment (mask 0) positions {where}: place rewards "
                         "on generated tokens only")
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = rewards.new_zeros(B)
    next_adv = rewards.new_zeros(B)
    for t in range(T - 1, -1, -1):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv = delta + gamma * lam * next_adv
        on = keep[:, t]
        advantages[:, t] = torch.where(on, adv, torch.zeros_like(adv))
        next_value = torch.where(on, values[:, t], next_value)
        next_adv = torch.where(on, adv, next_adv)
    returns = (advantages + values) * keep.to(values.dtype)
    return advantages, returns


def turn_ends(mask_row: Sequence[int]) -> list[int]:
    """Positions of the last generated token of each assistant turn in one env_mask row: the end
    of every run of consecutive 1s (a turn's generated ids are contiguous and turns are separated
    by environment tokens). [0, 1, 1, 0, 1] -> [2, 4]."""
    ends = []
    for i, m in enumerate(mask_row):
        if m and (i + 1 == len(mask_row) or not mask_row[i + 1]):
            ends.append(i)
    return ends


def token_rewards(mask: torch.Tensor, terminal: torch.Tensor,
                  turn_rewards: Sequence[Sequence[float]] | None = None,
                  kl: torch.Tensor | None = None, kl_coef: float = 0.0) -> torch.Tensor:
    """Per-token rewards (module docstring). mask: (B, T); terminal: (B,) episode rewards;
    turn_rewards: per row, one reward per assistant turn (as many as the row has runs of 1s);
    kl: (B, T) per-token KL to the reference. Returns (B, T), 0 where mask is 0; a row with no
    generated token gets nothing (its terminal and turn rewards have no token to land on)."""
    out = torch.zeros(mask.shape, dtype=terminal.dtype)
    if kl is not None:
        _check_same_shape(mask=mask, kl=kl)
        out = out - kl_coef * kl.to(out.dtype) * mask.to(out.dtype)
    for b in range(mask.shape[0]):
        ends = turn_ends([int(m) for m in mask[b].tolist()])
        if turn_rewards is not None:
            if len(turn_rewards[b]) != len(ends):
                raise ValueError(f"row {b}: {len(turn_rewards[b])} turn rewards for {len(ends)} "
                                 "assistant turns in the mask (one reward per turn)")
            for pos, r in zip(ends, turn_rewards[b]):
                out[b, pos] += float(r)
        if ends:
            out[b, ends[-1]] += terminal[b]
    return out


@dataclass
class PolicyLoss:
    """The clipped policy objective and its diagnostics (scalars)."""

    loss: torch.Tensor       # masked mean of max(−A·ratio, −A·clip(ratio))
    clipfrac: torch.Tensor   # share of tokens where the clipped term was taken
    approx_kl: torch.Tensor  # k3 estimate of KL(old ‖ new)


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, clip: float) -> PolicyLoss:
    """PPO's clipped surrogate (module docstring). All inputs (B, T)."""
    _check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).to(logp.dtype), mask)
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
    return PolicyLoss(loss, clipfrac, approx_kl)


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       mask: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """½ · masked mean of max((V − R)², (V_clipped − R)²), V_clipped = V_old + clip(V − V_old,
    ±clip). Inputs (B, T). Returns (loss, share of tokens where the clipped term was taken)."""
    _check_same_shape(values=values, old_values=old_values, returns=returns, mask=mask)
    v_clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    plain = (values - returns) ** 2
    clipped = (v_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(plain, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > plain).to(values.dtype), mask)
    return loss, clipfrac


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
               estimator: str = "k1") -> torch.Tensor:
    """Per-token KL(π ‖ π_ref) estimate from sampled tokens' log-probs: k1 = logp − ref_logp
    (unbiased, can be negative), k3 = exp(ref − logp) − 1 − (ref − logp) (≥ 0). (B, T) -> (B, T),
    0 where mask is 0."""
    _check_same_shape(logp=logp, ref_logp=ref_logp, mask=mask)
    if estimator == "k1":
        kl = logp - ref_logp
    elif estimator == "k3":
        r = ref_logp - logp
        kl = torch.exp(r) - 1.0 - r
    else:
        raise ValueError(f"unknown KL estimator {estimator!r}; use k1 or k3")
    return kl * mask.to(kl.dtype)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy −Σ_v p_v log p_v of each position's distribution. (B, T, V) -> (B, T)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def masked_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy over mask-1 positions. logits (B, T, V), mask (B, T) -> scalar."""
    return masked_mean(entropy_from_logits(logits), mask)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) over mask-1 positions; nan when the returns do not vary."""
    var_r = masked_var(returns, mask)
    if float(var_r) == 0.0:
        return float("nan")
    return float(1.0 - masked_var(returns - values, mask) / var_r)


def adaptive_kl_coef(coef: float, observed_kl: float, target: float, n_steps: int,
                     horizon: int) -> float:
    """The proportional KL controller of Ziegler et al. (2019): error = clip(KL/target − 1, ±0.2),
    coef · (1 + error · n_steps / horizon). n_steps: episodes in the batch just trained on."""
    error = max(-0.2, min(0.2, observed_kl / target - 1.0))
    return coef * (1.0 + error * n_steps / horizon)

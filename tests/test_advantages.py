"""The PPO math of trainers/advantages.py against tensors computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.advantages import (adaptive_kl_coef, clipped_policy_loss, clipped_value_loss,
                                 entropy_from_logits, explained_variance, kl_penalty, masked_gae,
                                 masked_mean, masked_var, masked_whiten, token_rewards, turn_ends)

T = torch.tensor


def close(a, b, tol=1e-5):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32),
                          torch.as_tensor(b, dtype=torch.float32), atol=tol)


def test_masked_gae_skips_environment_positions_by_hand():
    # γ = λ = 0.5 (γλ = 0.25). Row 0 starts AND ends with environment tokens, and has one in the
    # middle; the 9s sit on environment positions and must play no part.
    mask = T([[0, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.float)
    values = T([[9, 1, 2, 9, 4, 9], [5, 5, 5, 5, 5, 5], [0, 0, 0, 0, 0, 0]], dtype=torch.float)
    rewards = T([[0, 0, 1, 0, 2, 0], [0] * 6, [0, 0, 0, 0, 0, 1]], dtype=torch.float)
    adv, ret = masked_gae(rewards, values, mask, gamma=0.5, lam=0.5)
    # row 0, generated positions 1, 2, 4:
    #   pos 4: δ = 2 + 0.5·0 − 4 = −2,          A = −2,                  R = 2
    #   pos 2: δ = 1 + 0.5·4 − 2 = 1,           A = 1 + 0.25·(−2) = 0.5,  R = 2.5
    #   pos 1: δ = 0 + 0.5·2 − 1 = 0,           A = 0 + 0.25·0.5 = 0.125, R = 1.125
    assert close(adv[0], [0, 0.125, 0.5, 0, -2, 0]) and close(ret[0], [0, 1.125, 2.5, 0, 2, 0])
    # row 1 has no generated token: all zeros
    assert close(adv[1], [0] * 6) and close(ret[1], [0] * 6)
    # row 2: only the last token is rewarded, values 0 -> A_k = 0.25^(5-k)
    assert close(adv[2], [0.25 ** 5, 0.25 ** 4, 0.25 ** 3, 0.25 ** 2, 0.25, 1.0])
    assert close(ret[2], adv[2])


def test_masked_gae_is_blind_to_environment_tokens_between_turns():
    # the same two generated tokens with or without environment tokens between them
    plain = masked_gae(T([[0.0, 1.0]]), T([[0.3, 0.7]]), T([[1.0, 1.0]]), gamma=0.9, lam=0.8)
    spaced = masked_gae(T([[0.0, 0, 0, 1.0]]), T([[0.3, 5, 6, 0.7]]), T([[1.0, 0, 0, 1.0]]),
                        gamma=0.9, lam=0.8)
    assert close(spaced[0][0, [0, 3]], plain[0][0]) and close(spaced[1][0, [0, 3]], plain[1][0])
    # δ_1 = 1 − 0.7 = 0.3; δ_0 = 0 + 0.9·0.7 − 0.3 = 0.33; A_0 = 0.33 + 0.72·0.3 = 0.546
    assert close(plain[0], [[0.546, 0.3]])


def test_masked_gae_rejects_rewards_on_environment_positions():
    with pytest.raises(ValueError, match=r"mask 0\) positions \[\(0, 2\)\]"):
        masked_gae(T([[0.0, 1.0, 0.5]]), T([[0.0, 0, 0]]), T([[1.0, 1, 0]]), 1.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        masked_gae(T([[0.0, 1.0]]), T([[0.0, 0, 0]]), T([[1.0, 1]]), 1.0, 1.0)


def test_masked_mean_var_whiten_by_hand():
    x, m = T([[1.0, 2.0], [3.0, 4.0]]), T([[1.0, 0.0], [1.0, 1.0]])
    assert close(masked_mean(x, m), 8 / 3) and close(masked_mean(x, m, dim=1), [1.0, 3.5])
    assert close(masked_mean(x, torch.zeros_like(m)), 0.0)  # empty mask: 0, not nan
    y, k = T([1.0, 2.0, 3.0, 100.0]), T([1.0, 1.0, 1.0, 0.0])
    assert close(masked_var(y, k), 1.0)  # ((1−2)² + 0 + (3−2)²) / (3 − 1)
    assert close(masked_var(y, T([0.0, 1, 0, 0])), 0.0)
    assert close(masked_whiten(y, k), [-1.0, 0.0, 1.0, 0.0], tol=1e-4)
    assert close(masked_whiten(y, k, shift_mean=False), [1.0, 2.0, 3.0, 0.0], tol=1e-4)


def test_clipped_policy_loss_by_hand():
    # ratios 1.5, 0.5, 1 and a masked token with a wild ratio; ε = 0.2
    old = T([[0.0, 0.0, 0.0, 0.0]])
    logp = T([[math.log(1.5), math.log(0.5), 0.0, 5.0]])
    adv = T([[1.0, 1.0, -2.0, 100.0]])
    mask = T([[1.0, 1.0, 1.0, 0.0]])
    out = clipped_policy_loss(logp, old, adv, mask, clip=0.2)
    # token 0: max(−1.5, −1.2) = −1.2 (clipped); token 1: max(−0.5, −0.8) = −0.5; token 2: 2
    assert close(out.loss, (-1.2 - 0.5 + 2.0) / 3) and close(out.clipfrac, 1 / 3)
    k3 = ((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5)) + 0.0) / 3
    assert close(out.approx_kl, k3)


def test_clipped_value_loss_by_hand():
    values, old = T([[1.0, 3.0, 7.0]]), T([[0.0, 2.9, 0.0]])
    returns, mask = T([[2.0, 0.0, 0.0]]), T([[1.0, 1.0, 0.0]])
    loss, clipfrac = clipped_value_loss(values, old, returns, mask, clip=0.5)
    # t0: clipped V = 0.5 -> max(1, 2.25) = 2.25 (clipped); t1: clipped V = 3.0 -> 9 (tie)
    assert close(loss, 0.5 * (2.25 + 9.0) / 2) and close(clipfrac, 0.5)


def test_kl_estimators_and_entropy_by_hand():
    logp, ref, mask = T([[-1.0, -2.0, -3.0]]), T([[-1.5, -1.0, 0.0]]), T([[1.0, 1.0, 0.0]])
    assert close(kl_penalty(logp, ref, mask, "k1"), [[0.5, -1.0, 0.0]])
    assert close(kl_penalty(logp, ref, mask, "k3"),
                 [[math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 2.0, 0.0]])
    with pytest.raises(ValueError, match="k1 or k3"):
        kl_penalty(logp, ref, mask, "k2")
    logits = T([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    assert close(entropy_from_logits(logits), [[math.log(4), 0.0]])


def test_explained_variance_and_kl_controller_by_hand():
    r, m = T([[1.0, 2.0, 3.0, 50.0]]), T([[1.0, 1.0, 1.0, 0.0]])
    assert explained_variance(r, r, m) == pytest.approx(1.0)
    assert explained_variance(torch.zeros_like(r), r, m) == pytest.approx(0.0)
    assert math.isnan(explained_variance(r, T([[2.0, 2.0, 2.0, 0.0]]), m))
    assert adaptive_kl_coef(0.1, 0.12, 0.1, 100, 1000) == pytest.approx(0.102)
    assert adaptive_kl_coef(0.1, 5.0, 0.1, 100, 1000) == pytest.approx(0.102)  # error clipped at 0.2
    assert adaptive_kl_coef(0.1, 0.09, 0.1, 100, 1000) == pytest.approx(0.099)


def test_token_rewards_placement_by_hand():
    assert turn_ends([0, 1, 1, 0, 1]) == [2, 4] and turn_ends([1, 0, 0]) == [0] and turn_ends([0, 0]) == []
    mask = T([[0, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.float)
    kl = T([[9.0, 1.0, 2.0, 9.0, 3.0, 9.0], [9.0] * 6])
    out = token_rewards(mask, T([2.0, 5.0]), [[0.5, 0.25], []], kl, kl_coef=0.1)
    assert close(out[0], [0, -0.1, 0.5 - 0.2, 0, 0.25 + 2.0 - 0.3, 0])
    assert close(out[1], [0] * 6)  # no generated token: nothing lands
    with pytest.raises(ValueError, match="2 assistant turns"):
        token_rewards(mask, T([2.0, 5.0]), [[0.5], []])

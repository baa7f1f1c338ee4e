import pytest
import torch

from reasonlab.algos import (ADVANTAGES, AGGREGATIONS, IS_CORRECTIONS, KL_ESTIMATORS, POLICY_LOSSES,
                             clipped_policy_loss)
from reasonlab.algos.losses import BatchNorm
from reasonlab.config import ConfigError


def test_advantages_hand_computed():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    grpo = ADVANTAGES.get("grpo")(r)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std()  # unbiased: 0.5774
    assert torch.allclose(grpo[0], torch.tensor([0.5, -0.5, -0.5, 0.5]) / (std + 1e-4))
    assert torch.equal(grpo[1], torch.zeros(4))
    assert torch.allclose(ADVANTAGES.get("dr_grpo")(r)[0], torch.tensor([0.5, -0.5, -0.5, 0.5]))
    # rloo: r_i - mean(others); first: 1 - (0+0+1)/3
    assert torch.allclose(ADVANTAGES.get("rloo")(r)[0], torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]))


def trl_per_token_loss(logp, old, adv, eps_low, eps_high):
    """TRL GRPOTrainer's formula (docs, 'loss'): -min(ratio*A, clip(ratio, 1-eps_low, 1+eps_high)*A)."""
    coef_1 = torch.exp(logp - old)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    return -torch.min(coef_1 * adv[:, None], coef_2 * adv[:, None])


def test_clipped_loss_equals_trl_formula_and_aggregations():
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(3, 5, generator=g) * 3
    old = logp + (torch.rand(3, 5, generator=g) - 0.5)
    adv = torch.tensor([1.0, -0.5, 2.0])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.float32)
    ours, clipped = clipped_policy_loss(logp, old, adv, mask, 0.2, 0.28)
    ref = trl_per_token_loss(logp, old, adv, 0.2, 0.28)
    assert torch.allclose(ours, ref)
    assert clipped.sum() > 0
    norm = BatchNorm(tokens=float(mask.sum()), sequences=3.0, max_len=5)
    # TRL "dapo"/token-level: sum / total tokens; "grpo": per-seq mean then mean; "dr_grpo": / (B * max_len)
    assert torch.allclose(AGGREGATIONS.get("token_mean")(ref, mask, norm), (ref * mask).sum() / mask.sum())
    seq = ((ref * mask).sum(-1) / mask.sum(-1)).mean()
    assert torch.allclose(AGGREGATIONS.get("seq_mean_token_mean")(ref, mask, norm), seq)
    assert torch.allclose(AGGREGATIONS.get("seq_mean_token_sum_norm")(ref, mask, norm), (ref * mask).sum() / 15)


def test_microbatched_aggregation_equals_full_batch():
    loss = torch.rand(6, 4)
    mask = (torch.rand(6, 4) > 0.3).float()
    mask[:, 0] = 1
    norm = BatchNorm(tokens=float(mask.sum()), sequences=6.0, max_len=4)
    for name in AGGREGATIONS.names():
        agg = AGGREGATIONS.get(name)
        parts = agg(loss[:2], mask[:2], norm) + agg(loss[2:], mask[2:], norm)
        assert torch.allclose(parts, agg(loss, mask, norm)), name


def test_ratio_one_gives_policy_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    loss, _ = clipped_policy_loss(logp, logp.detach(), torch.tensor([2.0]), torch.ones_like(logp))
    loss.sum().backward()
    assert torch.allclose(logp.grad, torch.tensor([[-2.0, -2.0]]))


def test_kl_estimators():
    logp = torch.tensor([-1.0, -0.5])
    ref = torch.tensor([-1.2, -0.5])
    assert torch.allclose(KL_ESTIMATORS.get("k1")(logp, ref), torch.tensor([0.2, 0.0]))
    k3 = KL_ESTIMATORS.get("k3")(logp, ref)
    d = torch.tensor(-0.2)
    assert k3[0] == pytest.approx(float(torch.exp(d) - d - 1)) and k3[1] == 0
    assert (k3 >= 0).all()


def rollout_batch(seed: int = 0):
    """logp, old, advantages, mask of 4 sequences of different lengths (right padding)."""
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(4, 6, generator=g) * 3).requires_grad_(True)
    old = logp.detach() + (torch.rand(4, 6, generator=g) - 0.5) * 0.02
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]],
                        dtype=torch.float32)
    return logp, old, torch.tensor([1.0, -0.5, 2.0, -1.5]), mask


def test_microbatched_policy_losses_equal_full_batch():
    """Every registered loss, under every aggregation: two micro-batches' summed losses and
    gradients equal the full batch's (gspo reduces within a sequence, never across rows)."""
    logp, old, adv, mask = rollout_batch()
    norm = BatchNorm(tokens=float(mask.sum()), sequences=4.0, max_len=6)
    for loss_name in POLICY_LOSSES.names():
        fn = POLICY_LOSSES.get(loss_name)
        for agg_name in AGGREGATIONS.names():
            agg = AGGREGATIONS.get(agg_name)
            full = agg(fn(logp, old, adv, mask, 0.003, 0.004)[0], mask, norm)
            (g_full,) = torch.autograd.grad(full, logp)
            parts = sum(agg(fn(logp[r], old[r], adv[r], mask[r], 0.003, 0.004)[0], mask[r], norm)
                        for r in (slice(0, 2), slice(2, 4)))
            (g_parts,) = torch.autograd.grad(parts, logp)
            assert torch.allclose(parts, full), (loss_name, agg_name)
            assert torch.allclose(g_parts, g_full), (loss_name, agg_name)


def test_gspo_on_policy_is_the_sequence_mean_policy_gradient():
    logp, _, adv, mask = rollout_batch()
    gspo = POLICY_LOSSES.get("gspo")
    loss, clipped = gspo(logp, logp.detach(), adv, mask)
    assert torch.allclose(loss, -adv[:, None].expand_as(loss)) and clipped.sum() == 0  # ratio 1
    norm = BatchNorm(tokens=float(mask.sum()), sequences=4.0, max_len=6)
    (grad,) = torch.autograd.grad(AGGREGATIONS.get("seq_mean_token_mean")(loss, mask, norm), logp)
    # -A_i * (mean over the sequence's tokens of grad logp), averaged over sequences
    ref = -(adv * (logp * mask).sum(-1) / mask.sum(-1)).mean()
    (ref_grad,) = torch.autograd.grad(ref, logp)
    assert torch.allclose(grad, ref_grad)


def gspo_paper_objective(logp, old, adv, mask, eps_low, eps_high):
    """GSPO eq. (5)-(7) as written: s_i = (pi / pi_old)(y_i) ** (1/|y_i|), clipped per sequence."""
    s = torch.exp(((logp - old) * mask).sum(-1) / mask.sum(-1))
    return -torch.minimum(s * adv, torch.clamp(s, 1 - eps_low, 1 + eps_high) * adv).mean()


def test_gspo_off_policy_matches_the_paper_and_clips_whole_sequences():
    logp, old, adv, mask = rollout_batch()
    old = old.clone()
    old[0] = logp[0].detach() - 0.01  # s_0 = e^0.01, above 1 + 4e-4 with A > 0: clipped
    old[2] = logp[2].detach() + 1e-4  # s_2 = e^-1e-4, inside the range: not clipped
    gspo = POLICY_LOSSES.get("gspo")
    loss, clipped = gspo(logp, old, adv, mask, 3e-4, 4e-4)
    assert clipped[0, :3].tolist() == [1.0] * 3 and clipped[2, 0] == 0
    norm = BatchNorm(tokens=float(mask.sum()), sequences=4.0, max_len=6)
    ours = AGGREGATIONS.get("seq_mean_token_mean")(loss, mask, norm)
    paper = gspo_paper_objective(logp, old, adv, mask, 3e-4, 4e-4)
    (g_ours,) = torch.autograd.grad(ours, logp)
    (g_paper,) = torch.autograd.grad(paper, logp)
    assert torch.allclose(ours, paper) and torch.allclose(g_ours, g_paper)
    assert torch.all(g_ours[0] == 0) and torch.any(g_ours[2] != 0)  # a clipped sequence gets no gradient


def test_gspo_ratio_ignores_padding():
    logp, old, adv, mask = rollout_batch()
    gspo = POLICY_LOSSES.get("gspo")
    noisy_old = torch.where(mask.bool(), old, old + 5.0)  # garbage where mask is 0
    a, _ = gspo(logp, old, adv, mask)
    b, _ = gspo(logp, noisy_old, adv, mask)
    assert torch.allclose(a * mask, b * mask)


def test_truncated_importance_sampling_weights():
    old = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
    sampler = torch.log(torch.tensor([[0.25, 0.4, 0.1]]))  # ratios 2, 0.5, 9
    w = IS_CORRECTIONS.get("tis")(old.requires_grad_(True), sampler, 3.0)
    assert torch.allclose(w, torch.tensor([[2.0, 0.5, 3.0]])) and not w.requires_grad  # capped, detached
    assert torch.equal(IS_CORRECTIONS.get("none")(old, None, 3.0), torch.ones_like(old))
    with pytest.raises(ConfigError, match="algo.correction: tis needs the sampler's per-token log-probs"):
        IS_CORRECTIONS.get("tis")(old, None, 3.0)

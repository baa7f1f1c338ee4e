import pytest
import torch

from reasonlab.algos import ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, clipped_policy_loss
from reasonlab.algos.losses import BatchNorm


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
    ours, clipped = clipped_policy_loss(logp, old, adv, 0.2, 0.28)
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
    loss, _ = clipped_policy_loss(logp, logp.detach(), torch.tensor([2.0]))
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

"""sft_loss: summed cross-entropy over target tokens, LM head only where there is a target."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reasonlab.models import tiny_llama
from reasonlab.train.sft_data import IGNORE, SFTExample, collate, n_targets
from reasonlab.train.sft_loss import sft_loss


def _batch():
    g = torch.Generator().manual_seed(0)
    rows = []
    for n, first_target in [(20, 12), (9, 3), (14, 14)]:  # the last one has no target at all
        ids = torch.randint(3, 128, (n,), generator=g).tolist()
        rows.append([SFTExample("t", tuple(ids), tuple(int(k >= first_target) for k in range(n)))])
    return collate(rows, pad_id=0)


def _reference(model, batch):
    """Plain full-vocabulary cross-entropy, HF style."""
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), batch["target_ids"].flatten(),
                           ignore_index=IGNORE, reduction="sum")


def test_loss_sum_and_gradient_match_full_vocab_cross_entropy():
    model, batch = tiny_llama(), _batch()
    ref = _reference(model, batch)
    ref.backward()
    ref_grad = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    loss, n = sft_loss(model, batch)
    loss.backward()
    assert n == n_targets(batch) == (20 - 12) + (9 - 3)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    for p, g in zip(model.parameters(), ref_grad):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-4)


def test_lm_head_runs_only_on_target_positions(monkeypatch):
    """transformers' forward (``logits_to_keep``) and the fused one both run the LM head on the
    target positions only: (targets, V)."""
    from reasonlab.train import fused_forward

    model, batch = tiny_llama(), _batch()
    shapes = []
    hook = model.lm_head.register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape)))
    try:
        _, n = sft_loss(model, batch, fused=False)
    finally:
        hook.remove()
    real = fused_forward.head_logprobs  # the fused path's LM head: (rows of hidden, V)

    def head(model, p, hidden, *a, **k):
        shapes.append((hidden.shape[0], model.lm_head.weight.shape[0]))
        return real(model, p, hidden, *a, **k)

    monkeypatch.setattr(fused_forward, "head_logprobs", head)
    sft_loss(model, batch)
    assert shapes == [(n, model.config.vocab_size)] * 2


def test_bf16_autocast_is_close_to_fp32():
    model, batch = tiny_llama(), _batch()
    fp32, n = sft_loss(model, batch)
    bf16, _ = sft_loss(model, batch, autocast_dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32 and bf16.requires_grad
    assert bf16.item() / n == pytest.approx(fp32.item() / n, rel=2e-2)


def _shared_rows():
    g = torch.Generator().manual_seed(1)
    head = torch.randint(3, 128, (10,), generator=g).tolist()
    rows = []
    for n, first_target in [(25, 13), (18, 16), (30, 11)]:
        ids = head + torch.randint(3, 128, (n - 10,), generator=g).tolist()
        rows.append([SFTExample("t", tuple(ids), tuple(int(k >= first_target) for k in range(n)))])
    return rows


def test_shared_prefix_gives_the_same_loss_and_gradient():
    model, rows = tiny_llama(), _shared_rows()
    plain = collate(rows, pad_id=0)
    shared = collate(rows, pad_id=0, share_prefix=True)
    assert shared["prefix_ids"].tolist() == [list(rows[0][0].ids[:10])]  # the whole common head
    assert shared["position_ids"][:, 0].tolist() == [10, 10, 10] and n_targets(shared) == n_targets(plain)
    results = []
    for batch in (plain, shared):
        model.zero_grad()
        loss, n = sft_loss(model, batch)
        loss.backward()
        results.append((loss.item(), n, [p.grad.clone() for p in model.parameters()]))
    assert results[0][1] == results[1][1]
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_shared_prefix_stops_before_the_first_target_and_refuses_packed_rows():
    rows = _shared_rows()
    rows[2] = [SFTExample("t", rows[2][0].ids, tuple(int(k >= 6) for k in range(30)))]
    assert collate(rows, pad_id=0, share_prefix=True)["prefix_ids"].shape == (1, 5)
    with pytest.raises(ValueError, match="unpacked"):
        collate([rows[0] + rows[1]], pad_id=0, share_prefix=True)

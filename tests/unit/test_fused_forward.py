"""The fused training forward (``train/fused_forward.py``) gives transformers' loss and gradients.

For every family in ``tiny_archs.py`` (sliding windows shorter than the sequences, Llama-3 RoPE
scaling, NoPE layers, Gemma's two RoPE tables, softcap, perturbed norms and biases), fp32:
GRPO's log-probs and entropy (shared prompts, temperature), SFT's summed cross-entropy (packed
rows and a shared prefix) and the PRM's value logits, each against transformers' forward of the
same sequences, values and every parameter's gradient; LoRA-wrapped Llama; the fallback (an
architecture ``arch.describe`` refuses warns once and runs transformers' forward). Each
comparison first checks the fused path ran (transformers' decoder layers were not called).
"""

import warnings

import pytest
import torch
import torch.nn.functional as F
from tiny_archs import FAMILIES, V, build

from reasonlab.models import LoraConfig, attach_lora, tiny_llama
from reasonlab.search.scorers import ValueModel
from reasonlab.train import fused_forward
from reasonlab.train.policy import completion_logprobs, build_batch, shared_prefix_logprobs
from reasonlab.train.prm import value_logits
from reasonlab.train.sft_data import IGNORE, SFTExample, collate
from reasonlab.train.sft_loss import sft_loss

TEMP = 0.7
PROMPTS = [tuple(range(5, 15)), tuple(range(5, 15)), (9, 10, 3), (9, 10, 3), (9, 10, 3)]
COMPS = [tuple(range(40, 52)), (14,), (15, 16, 17, 18, 19), (20, 21), ()]  # one empty completion


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_grads_close(ours: dict, ref: dict, rtol: float = 1e-4) -> None:
    assert ours.keys() == ref.keys() and ref
    for name, g in ref.items():
        err = (ours[name] - g).abs().max() / g.abs().max().clamp(min=1e-8)
        assert err <= rtol, f"{name}: relative gradient error {err:.2e}"


class _NoTransformersLayers:
    """Fails if any of transformers' decoder layers runs (the fused path must not call them)."""

    def __init__(self, model):
        self.hooks = [layer.register_forward_pre_hook(self._fail)
                      for layer in fused_forward.base_model(model).model.layers]

    @staticmethod
    def _fail(*_):
        raise AssertionError("transformers' decoder layer ran on the fused path")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()


def _reference_logprobs(model):
    """Each row's prompt + completion through transformers' forward, unpadded, one at a time."""
    logp, ent = torch.zeros(len(PROMPTS), 12), torch.zeros(len(PROMPTS), 12)
    for b, (p, c) in enumerate(zip(PROMPTS, COMPS)):
        if c:
            lp = (model(torch.tensor([p + c])).logits[0, len(p) - 1:-1].float() / TEMP).log_softmax(-1)
            logp[b, :len(c)] = lp.gather(-1, torch.tensor(c)[:, None]).squeeze(-1)
            ent[b, :len(c)] = -(lp.exp() * lp).sum(-1).detach()
    return logp, ent


def _weights(shape) -> torch.Tensor:
    return torch.linspace(-1, 1, shape.numel()).view(shape)


def _check_grpo(model, rtol=1e-4):
    ref, ref_ent = _reference_logprobs(model)
    (ref * _weights(ref.shape)).sum().backward()
    ref_grads = _grads(model)
    model.zero_grad()
    with _NoTransformersLayers(model):
        logp, ent, mask = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, None, True, TEMP)
    assert torch.equal(mask, (ref != 0).float())
    torch.testing.assert_close(logp, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent * mask, ref_ent, atol=1e-5, rtol=1e-5)
    (logp * _weights(logp.shape)).sum().backward()
    _assert_grads_close(_grads(model), ref_grads, rtol)


@pytest.mark.parametrize("family", FAMILIES)
def test_grpo_logprobs_entropy_and_gradients_equal_transformers(family):
    model = build(family).train()
    assert fused_forward.plan(model) is not None
    _check_grpo(model)


def test_lora_llama_gradients_land_on_the_adapters():
    model = build("llama3")
    lora = attach_lora(model, LoraConfig(r=4, alpha=8)).train()
    with torch.no_grad():  # B starts at zero: make the adapters matter in the forward too
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    assert fused_forward.plan(lora) is not None
    _check_grpo(lora)
    assert all("lora_" in n for n in _grads(lora))


def test_completion_logprobs_fused_equals_transformers():
    model = tiny_llama(vocab_size=64, hidden=32, layers=2)
    batch = build_batch(PROMPTS, COMPS, pad_id=0)
    ref, ref_ent = completion_logprobs(model, batch, None, with_entropy=True, fused=False)
    with _NoTransformersLayers(model):
        ours, ent = completion_logprobs(model, batch, None, with_entropy=True)
    torch.testing.assert_close(ours, ref * batch.mask, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent, ref_ent * batch.mask, atol=1e-5, rtol=1e-5)


def _sft_batches():
    g = torch.Generator().manual_seed(0)

    def example(n, first):
        return SFTExample("t", tuple(torch.randint(3, V, (n,), generator=g).tolist()),
                          tuple(int(k >= first) for k in range(n)))

    packed = collate([[example(12, 5), example(9, 3)], [example(14, 6)], [example(6, 6), example(10, 2)]], 0)
    head = torch.randint(3, V, (7,), generator=g).tolist()
    rows = [SFTExample("t", tuple(head) + tuple(e.ids), (0,) * 7 + tuple(e.mask)) for e in
            (example(8, 1), example(13, 4), example(5, 0))]
    shared = collate([[r] for r in rows], 0, share_prefix=True)
    assert "prefix_ids" in shared
    return {"packed": packed, "shared_prefix": shared}


@pytest.mark.parametrize("layout", ["packed", "shared_prefix"])
@pytest.mark.parametrize("family", FAMILIES)
def test_sft_loss_and_gradients_equal_transformers(family, layout):
    model, batch = build(family).train(), _sft_batches()[layout]
    ref, n_ref = sft_loss(model, batch, fused=False)
    ref.backward()
    ref_grads = _grads(model)
    model.zero_grad()
    with _NoTransformersLayers(model):
        loss, n = sft_loss(model, batch)
    loss.backward()
    assert n == n_ref == int((batch["target_ids"] != IGNORE).sum())
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    _assert_grads_close(_grads(model), ref_grads)


@pytest.mark.parametrize("family", ["smollm2", "qwen3", "gemma3"])
def test_prm_value_logits_and_gradients_equal_transformers(family):
    value = ValueModel(build(family)).train()
    torch.nn.init.normal_(value.head.weight, 0, 0.1)
    ids = torch.randint(3, V, (3, 20))
    attn = torch.ones(3, 20, dtype=torch.long)
    attn[1, 12:], attn[2, 5:] = 0, 0
    real = attn.bool()
    ref = value(ids, attn)
    (ref[real] * _weights(ref[real].shape)).sum().backward()
    ref_grads = _grads(value)
    value.zero_grad()
    with _NoTransformersLayers(value.lm):
        ours = value_logits(value, ids, attn)
    torch.testing.assert_close(ours[real], ref[real], atol=1e-5, rtol=1e-5)
    (ours[real] * _weights(ours[real].shape)).sum().backward()
    _assert_grads_close(_grads(value), ref_grads)


@pytest.mark.parametrize("family", FAMILIES)
def test_transformers_fallback_keeps_prompts_longer_than_a_sliding_window(family):
    """``fused=False`` (transformers' forward with the shared prompt pass): the 10-token prompts
    are longer than the tiny families' 8-token windows; transformers' own cache would keep the
    last 7 keys of each sliding layer (wrong log-probs on Mistral, a shape error on Qwen2)."""
    model = build(family).train()
    ref, _ = _reference_logprobs(model)
    (ref * _weights(ref.shape)).sum().backward()
    ref_grads = _grads(model)
    model.zero_grad()
    logp, _, mask = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, None, False, TEMP, fused=False)
    torch.testing.assert_close(logp * mask, ref, atol=1e-5, rtol=1e-5)
    (logp * mask * _weights(logp.shape)).sum().backward()
    _assert_grads_close(_grads(model), ref_grads)


@pytest.mark.parametrize("family", ["mistral", "qwen2.5", "gemma3"])
def test_sft_transformers_fallback_keeps_a_shared_prefix_longer_than_a_sliding_window(family):
    """A 12-token shared header against 8-token windows: the prefix-cache path of transformers'
    forward gives the loss of the same rows run whole."""
    g = torch.Generator().manual_seed(1)
    head = tuple(torch.randint(3, V, (12,), generator=g).tolist())
    rows = [SFTExample("t", head + tuple(torch.randint(3, V, (n,), generator=g).tolist()),
                       (0,) * 12 + (1,) * n) for n in (6, 9, 4)]
    model = build(family).train()
    whole, n_whole = sft_loss(model, collate([[r] for r in rows], 0), fused=False)
    shared_batch = collate([[r] for r in rows], 0, share_prefix=True)
    assert shared_batch["prefix_ids"].shape[1] > 8
    shared, n_shared = sft_loss(model, shared_batch, fused=False)
    assert n_shared == n_whole == 19
    assert shared.item() == pytest.approx(whole.item(), rel=1e-5)


@pytest.mark.parametrize("sdpa", [None, True])  # bf16's default (batched matmuls) and SDPA's kernel
def test_bf16_is_close_to_transformers_autocast(sdpa, monkeypatch):
    monkeypatch.setattr(fused_forward, "SDPA", sdpa)
    model = build("smollm2").train()
    ref, _, mask = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, torch.bfloat16, fused=False)
    ours, _, _ = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, torch.bfloat16)
    assert ours.dtype == torch.float32 and ours.requires_grad
    assert (ours - ref).abs().max() <= 0.1 * ref[mask.bool()].abs().mean()


def test_unsupported_model_warns_once_and_runs_transformers_forward():
    model = tiny_llama(vocab_size=64, hidden=32, layers=2)
    model.config.rope_parameters = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, _, mask = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, None)
        second, _, _ = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, None)
    notes = [str(w.message) for w in caught if "training forward" in str(w.message)]
    assert len(notes) == 1 and "dynamic" in notes[0] and "transformers' forward" in notes[0]
    assert fused_forward.plan(model) is None
    plain, _, _ = shared_prefix_logprobs(model, PROMPTS, COMPS, 0, None, fused=False)
    assert torch.equal(first * mask, plain * mask) and torch.equal(second, first)
    with pytest.raises(fused_forward.Unsupported):
        fused_forward.plan(model, fused=True)


def test_token_logprobs_match_log_softmax_in_value_and_gradient():
    z = torch.randn(7, 50, requires_grad=True)
    tok = torch.randint(0, 50, (7,))
    ours, ent = fused_forward.token_logprobs(z, tok, 0.5, with_entropy=True)
    ref_all = F.log_softmax(z / 0.5, -1)
    ref = ref_all.gather(-1, tok[:, None]).squeeze(-1)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ent, -(ref_all.exp() * ref_all).sum(-1).detach())
    g = torch.randn(7)
    (gz,) = torch.autograd.grad((ours * g).sum(), z)
    (gz_ref,) = torch.autograd.grad((ref * g).sum(), z)
    torch.testing.assert_close(gz, gz_ref)


def _head_case(frozen_head: bool = False):
    model = tiny_llama()
    p = fused_forward.plan(model)
    model.lm_head.weight.requires_grad_(not frozen_head)
    h = torch.randn(11, model.config.hidden_size, requires_grad=True)
    tok = torch.randint(0, model.config.vocab_size, (11,))
    return model, p, h, tok


@pytest.mark.parametrize("frozen_head", [False, True])
def test_head_logprobs_equal_logits_then_log_softmax_across_chunks(frozen_head, monkeypatch):
    """The chunked LM head + softmax (``_HeadLogProb``: 11 rows in chunks of 3, the last short)
    gives the log-probs, entropy and gradients of the plain (K, V) logits path, in fp32."""
    model, p, h, tok = _head_case(frozen_head)
    monkeypatch.setattr(fused_forward, "CHUNK_ELEMENTS", 3 * model.config.vocab_size)
    g = torch.randn(11)
    ours, ent = fused_forward.head_logprobs(model, p, h, tok, torch.float32, TEMP, with_entropy=True)
    wanted = [h] + ([] if frozen_head else [model.lm_head.weight])
    grads = torch.autograd.grad((ours * g).sum(), wanted)
    ref_all = F.log_softmax(model.lm_head(h) / TEMP, -1)
    ref = ref_all.gather(-1, tok[:, None]).squeeze(-1)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ent, -(ref_all.exp() * ref_all).sum(-1).detach())
    for ours_g, ref_g in zip(grads, torch.autograd.grad((ref * g).sum(), wanted)):
        torch.testing.assert_close(ours_g, ref_g)
    assert not ent.requires_grad


def test_head_logprobs_refuse_a_second_backward():
    model, p, h, tok = _head_case()
    lp, _ = fused_forward.head_logprobs(model, p, h, tok, torch.float32)
    lp.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        lp.sum().backward()


def test_head_logprobs_bf16_is_close_to_fp32():
    model, p, h, tok = _head_case()
    lp32, _ = fused_forward.head_logprobs(model, p, h, tok, torch.float32)
    lp16, _ = fused_forward.head_logprobs(model, p, h, tok, torch.bfloat16)
    assert lp16.dtype == torch.float32
    torch.testing.assert_close(lp16, lp32, atol=0.05, rtol=0.02)


@pytest.mark.parametrize("family", ["mistral", "gemma3"])
def test_explicit_matmul_attention_equals_transformers_too(family, monkeypatch):
    """The baddbmm + softmax + bmm attention (``SDPA = False``) is exact as well."""
    monkeypatch.setattr(fused_forward, "SDPA", False)
    _check_grpo(build(family).train())


def test_all_empty_completions_still_backpropagate():
    """A micro-batch whose completions are all empty (the model ended at once): zero log-probs
    that backward() accepts, as transformers' path gives."""
    from reasonlab.models import tiny_llama
    from reasonlab.train.policy import shared_prefix_logprobs

    m = tiny_llama()
    logp, _, mask = shared_prefix_logprobs(m, [(1, 2, 3), (1, 2, 3)], [(), ()], 0, None, fused=True)
    assert logp.shape == mask.shape == (2, 1) and not mask.any() and not logp.any()
    (logp * mask).sum().backward()
    assert all(w.grad is None or not w.grad.any() for w in m.parameters())

"""The token sampler draws from exactly the distribution it reports log-probs for."""

import torch

from reasonlab.backends.sampling import sample, top_p_filter


def test_frequencies_match_the_tempered_softmax_and_logprobs_are_its_logs():
    """20,000 draws over a 600-token vocabulary (not a multiple of the block): empirical
    frequencies within 5 standard errors of softmax(logits / T) per token; log-probs exact."""
    g = torch.Generator().manual_seed(0)
    V, N, T = 600, 20_000, 0.7
    logits = torch.randn(V, generator=g) * 2
    logits[17] = -float("inf")  # zero mass: must never be drawn
    tok, lp = sample(logits.expand(N, V).contiguous(), T, 1.0, g, block=64)
    p = torch.softmax(logits / T, -1)
    freq = torch.bincount(tok, minlength=V).double() / N
    se = (p * (1 - p) / N).sqrt().double()
    assert ((freq - p).abs() <= 5 * se + 1e-4).all()
    assert freq[17] == 0
    assert torch.allclose(lp, torch.log_softmax(logits / T, -1)[tok], atol=1e-5)


def test_top_p_draws_only_inside_the_nucleus_and_renormalises():
    g = torch.Generator().manual_seed(1)
    logits = torch.tensor([3.0, 2.5, 2.0, 0.0, -1.0, -2.0] * 50)  # ties across blocks
    z = top_p_filter(logits[None], 0.5)[0]
    allowed = torch.isfinite(z)
    tok, lp = sample(logits.expand(5000, -1).contiguous(), 1.0, 0.5, g, block=16)
    assert allowed[tok].all()
    assert torch.allclose(lp, torch.log_softmax(z, -1)[tok], atol=1e-5)


def test_greedy_takes_the_argmax_with_the_untempered_logprob():
    logits = torch.tensor([[0.1, 2.0, -1.0], [5.0, 4.0, 0.0]])
    tok, lp = sample(logits, 0.0, 1.0, None)
    assert tok.tolist() == [1, 0]
    assert torch.allclose(lp, torch.log_softmax(logits, -1)[[0, 1], [1, 0]])


def test_same_seed_same_tokens():
    logits = torch.randn(8, 1000)
    a = sample(logits, 1.0, 0.9, torch.Generator().manual_seed(3))[0]
    b = sample(logits, 1.0, 0.9, torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)

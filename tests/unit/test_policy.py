"""Policy log-probs: the shared-prefix forward equals the plain one (values and gradients), and
micro-batch planning covers every row once and picks the cheaper order."""

import torch

from reasonlab.models import tiny_llama
from reasonlab.train.policy import build_batch, completion_logprobs, plan_micro_batches, shared_prefix_logprobs


def test_shared_prefix_logprobs_and_gradients_match_the_plain_forward():
    torch.manual_seed(0)
    model = tiny_llama(vocab_size=64, hidden=32, layers=2)
    prompts = [(5, 6, 7, 8), (5, 6, 7, 8), (9, 10), (9, 10), (9, 10)]
    comps = [(11, 12, 13), (14,), (15, 16, 17, 18, 19), (20, 21), ()]
    plain_batch = build_batch(prompts, comps, pad_id=0)
    plain, plain_ent = completion_logprobs(model, plain_batch, None, with_entropy=True)
    weights = torch.randn(plain.shape)
    (plain * plain_batch.mask * weights).sum().backward()
    plain_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    shared, ent, mask = shared_prefix_logprobs(model, prompts, comps, 0, None, with_entropy=True)
    assert torch.equal(mask, plain_batch.mask)
    torch.testing.assert_close(shared * mask, plain * plain_batch.mask, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ent * mask, plain_ent * mask, atol=1e-5, rtol=1e-5)
    (shared * mask * weights).sum().backward()
    for a, b in zip(plain_grads, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_micro_batch_plan_covers_rows_and_prices_prompts_against_padding():
    long_prompt, short_prompt = tuple(range(200)), (1, 2)
    # long shared prompts, short answers: keep groups together (one prompt pass per micro-batch)
    prompts = [long_prompt[:-1] + (g,) for g in range(4) for _ in range(4)]
    lengths = [10, 200, 12, 11] * 4
    plan = plan_micro_batches(prompts, lengths, 4)
    assert sorted(i for c in plan for i in c) == list(range(16)) and all(len(c) <= 4 for c in plan)
    assert all(len({prompts[i] for i in c}) == 1 for c in plan)
    # short prompts, very different answer lengths: sort by length so padding is small
    prompts = [short_prompt + (g,) for g in range(4) for _ in range(4)]
    plan = plan_micro_batches(prompts, lengths, 4)
    assert sorted(i for c in plan for i in c) == list(range(16))
    assert [sorted(lengths[i] for i in c) for c in plan][-1] == [200] * 4

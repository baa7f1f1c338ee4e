"""Every family ``arch.py`` describes computes what transformers' own forward computes.

Each family is a tiny randomly initialised model of that architecture built with no download
(``tests/support/tiny_archs.py``: sliding windows shorter than the sequences, Llama-3 RoPE
scaling past its original context, NoPE layers, Gemma's two RoPE tables, perturbed norms and
biases). Tolerance, fp32: |ours - theirs| <= 1e-4 on logits of magnitude ~3 (observed ~2e-6).
"""

import pytest
import torch
from tiny_archs import FAMILIES, V, build, prompts

from reasonlab.backends.decode import StopChecker, decode, shared_prefix
from reasonlab.backends.fast_llama import FastLlama, fast_plan
from reasonlab.types import SamplingParams

NEW, ATOL = 32, 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_described_as_its_family(family):
    arch, why = fast_plan(build(family))
    assert arch is not None, why
    assert arch.name == FAMILIES[family][0]


@pytest.mark.parametrize("family", FAMILIES)
def test_prefill_and_every_decode_step_match_transformers(family):
    """Our logits at prefill and at each of 32 greedy decode steps (batched, left-padded, static
    cache) equal transformers' logits for the same prefix, run unpadded."""
    m = build(family)
    fast = FastLlama.from_hf(m, torch.float32)
    ps = prompts()
    B, Tp = len(ps), max(map(len, ps))
    ids = torch.zeros(B, Tp, dtype=torch.long)
    valid = torch.zeros(B, Tp, dtype=torch.bool)
    for i, p in enumerate(ps):
        ids[i, Tp - len(p):], valid[i, Tp - len(p):] = torch.tensor(p), True
    pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
    mask = (torch.ones(Tp, Tp, dtype=torch.bool).tril()[None] & valid[:, None]) | torch.eye(Tp, dtype=torch.bool)
    cache = fast.new_cache(B, Tp + NEW)
    steps = [fast.forward(ids, pos, cache, 0, mask[:, None])]
    keys = torch.cat([valid, torch.ones(B, NEW, dtype=torch.bool)], 1)
    for s in range(NEW - 1):
        tok = steps[-1].argmax(-1)
        ps = [p + [int(t)] for p, t in zip(ps, tok)]
        steps.append(fast.forward(tok[:, None], (pos[:, -1:] + 1 + s), cache, Tp + s,
                                  keys[:, None, None, :Tp + s + 1]))
    ours = torch.stack(steps, 1)  # (B, NEW, V)
    for i, p in enumerate(ps):
        with torch.no_grad():
            ref = m(torch.tensor([p])).logits[0, -NEW:].float()
        assert (ours[i] - ref).abs().max() <= ATOL, f"{family} row {i}: {(ours[i] - ref).abs().max():.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_32_tokens_equal_generate_and_logprobs_equal_forward(family):
    """The production loop (``decode``: shared prefill, n rows per prompt, compaction) in fp32."""
    m = build(family)
    fast = FastLlama.from_hf(m, torch.float32)
    ps = prompts()
    rows = decode(fast, ps, [2, 1], SamplingParams(n=2, temperature=0, max_new_tokens=NEW), set(),
                  StopChecker(None, ()), None)
    for p, (toks, lps, reason) in zip([ps[0], ps[0], ps[1]], rows):
        with torch.no_grad():
            ids = torch.tensor([p])
            ref = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW, do_sample=False,
                             pad_token_id=0)[0, len(p):].tolist()
            logp = torch.log_softmax(m(torch.tensor([p + toks])).logits[0, len(p) - 1:-1].float(), -1)
        assert toks == ref and reason == "length"
        expected = logp.gather(-1, torch.tensor(toks)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(lps), expected, atol=ATOL)


@pytest.mark.parametrize("family", ["qwen3", "gemma3"])
def test_hidden_states_for_scoring_equal_transformers_backbone(family):
    """Right-padded batches, as the PRM scorer sends them."""
    m = build(family)
    ids = torch.randint(3, V, (2, 20))
    attn = torch.ones(2, 20, dtype=torch.long)
    attn[1, 12:] = 0
    ours = FastLlama.from_hf(m, torch.float32).hidden_states(ids, attn)
    with torch.no_grad():
        ref = m.model(input_ids=ids, attention_mask=attn).last_hidden_state
    assert torch.allclose(ours[0], ref[0], atol=ATOL)
    assert torch.allclose(ours[1, :12], ref[1, :12], atol=ATOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_prompts_sharing_a_prefix_decode_as_if_alone(family):
    """Prompts that start alike (a system prompt) prefill that prefix once (``shared_prefix``),
    then their own suffixes of different lengths after a padding gap: greedy tokens still equal
    ``model.generate`` per prompt and log-probs a plain forward's. Families whose sliding window
    could bind keep the unshared layout (windows act on cache columns)."""
    m = build(family)
    fast = FastLlama.from_hf(m, torch.float32)
    head = torch.randint(3, V, (9,)).tolist()
    ps = [head + [5, 6, 7], head + [8, 9, 10, 11, 12], head + [13]]
    windows = [layer.window for layer in fast.layers if layer.window is not None]
    binds = bool(windows) and min(windows) < 14 + NEW
    assert shared_prefix(fast, ps, NEW) == (0 if binds else 9)
    rows = decode(fast, ps, [1, 2, 1], SamplingParams(n=1, temperature=0, max_new_tokens=NEW), set(),
                  StopChecker(None, ()), None)
    for p, (toks, lps, _) in zip([ps[0], ps[1], ps[1], ps[2]], rows):
        with torch.no_grad():
            ids = torch.tensor([p])
            ref = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW, do_sample=False,
                             pad_token_id=0)[0, len(p):].tolist()
            logp = torch.log_softmax(m(torch.tensor([p + toks])).logits[0, len(p) - 1:-1].float(), -1)
        assert toks == ref
        assert torch.allclose(torch.tensor(lps), logp.gather(-1, torch.tensor(toks)[:, None]).squeeze(-1),
                              atol=ATOL)


@pytest.mark.parametrize("family", ["smollm2", "qwen3"])
def test_cache_growth_and_compaction_keep_rows_exact(family, monkeypatch):
    """The cache grows a few columns at a time (CHUNK = 5 here: six growths in 32 tokens) and
    finished rows are dropped mid-run; every row still equals its own ``model.generate`` up to
    its first EOS."""
    import reasonlab.backends.decode as dec
    monkeypatch.setattr(dec, "CHUNK", 5)
    m = build(family)
    fast = FastLlama.from_hf(m, torch.float32)
    head = torch.randint(3, V, (6,)).tolist()
    ps = [head + [5, 6, 7], head + [8, 9, 10, 11, 12], head + [13], head + [14, 15]]
    refs = []
    for p in ps:
        with torch.no_grad():
            ids = torch.tensor([p])
            refs.append(m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW,
                                   do_sample=False, pad_token_id=0)[0, len(p):].tolist())
    eos = {refs[0][8], refs[2][3]}  # two rows stop early, so the batch compacts
    rows = decode(fast, ps, [1] * 4, SamplingParams(n=1, temperature=0, max_new_tokens=NEW), eos,
                  StopChecker(None, ()), None)
    stopped = 0
    for ref, (toks, _, reason) in zip(refs, rows):
        cut = next((i + 1 for i, t in enumerate(ref) if t in eos), len(ref))
        assert toks == ref[:cut]
        assert reason == ("stop" if cut < len(ref) else "length")
        stopped += reason == "stop"
    assert stopped >= 2

"""Sampling for architectures ``FastLlama`` does not implement: transformers' own forward, batched.

Why: correctness first. An unknown architecture runs the model's own forward and cache, so its
text is right whatever the model does; rows are still batched (left padding, positions counted
over valid tokens, a growing attention mask), so a chunk of prompts costs one forward per
step rather than one per prompt. Prefill is not shared between a prompt's n samples here (each
row runs its prompt); the fast path does that. Sampling and stopping use the same
``sample``/``Rows`` as the fast loop, so log-probs and finish reasons mean the same.
"""

from __future__ import annotations

import torch

from reasonlab.models import cache_kwarg
from reasonlab.tensors import pad

from reasonlab.backends.decode import Rows, StopChecker
from reasonlab.backends.sampling import sample
from reasonlab.types import SamplingParams


@torch.inference_mode()
def generic_decode(model, prompts: list[list[int]], counts: list[int], params: SamplingParams,
                   eos_ids: set[int], stopper: StopChecker, generator: torch.Generator | None,
                   pad_id: int, ignore_eos: bool = False) -> list[tuple[list[int], list[float], str]]:
    """Same contract as ``decode.decode``: per row (token ids, logprobs, finish reason), rows
    ordered prompt by prompt, ``counts[i]`` rows for prompt i."""
    dev = next(model.parameters()).device
    rows = [p for p, c in zip(prompts, counts) for _ in range(c)]
    B = len(rows)
    ids, attn = (t.to(dev) for t in pad(rows, pad_id, side="left"))
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    key = cache_kwarg(model)
    out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True)
    next_pos = pos[:, -1:] + 1
    state = Rows(B, eos_ids, stopper, ignore_eos)
    everyone = list(range(B))
    for step in range(params.max_new_tokens):
        tok, lp = sample(out.logits[:, -1].float(), params.temperature, params.top_p, generator)
        state.record(everyone, tok, lp)
        if step == params.max_new_tokens - 1 or all(state.finished):
            break
        attn = torch.cat([attn, attn.new_ones(B, 1)], 1)
        cache = out["cache"] if "cache" in out else out.past_key_values
        out = model(input_ids=tok[:, None], attention_mask=attn, position_ids=next_pos, use_cache=True,
                    **{key: cache})
        next_pos = next_pos + 1
    return state.results()

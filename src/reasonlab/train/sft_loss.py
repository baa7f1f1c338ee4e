"""SFT loss: summed token cross-entropy over target tokens only.

Returns a *sum* and a count, not a mean: with gradient accumulation (and packing, where rows hold
different numbers of target tokens) the trainer divides by the target tokens of the whole
accumulated batch, so every token weighs the same whichever micro-batch it landed in.

Memory: the LM head runs only on positions that have a target. ``logits_to_keep`` given a
boolean (B, L) mask (transformers >= 5 ``slice_logits_to_keep``) returns (N, V) logits for the N
target positions, so the (B, L, V) tensor — 49K columns for SmolLM2, most of it prompt and
padding — is never built; the same idea as ``policy.shared_prefix_logprobs`` skipping padding.
The call goes through the top-level model (``model(...)``), so DDP/accelerate/peft wrappers see
an ordinary forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reasonlab.models import cache_kwarg
from reasonlab.train.sft_data import IGNORE


def sft_loss(model, batch: dict[str, torch.Tensor], autocast_dtype: torch.dtype | None = None
             ) -> tuple[torch.Tensor, int]:
    """(sum of -log p(target) over target tokens, number of target tokens).

    ``batch``: ``collate`` output. ``autocast_dtype``: None or float32 runs in the weights'
    dtype; bf16/fp16 runs the forward under ``torch.autocast`` (log-softmax in fp32 either way).
    ``use_cache=False`` and no attention mask: with a cache transformers skips the packed-sequence
    detection that keeps packed examples apart (a shared-prefix batch is never packed).
    """
    device = next(model.parameters()).device
    target = batch["target_ids"].to(device)
    keep = target != IGNORE
    n = int(keep.sum())
    ids, pos = batch["input_ids"].to(device), batch["position_ids"].to(device)
    enabled = autocast_dtype is not None and autocast_dtype != torch.float32
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
        if "prefix_ids" in batch:
            out = model(input_ids=ids, position_ids=pos, logits_to_keep=keep, use_cache=True,
                        **{cache_kwarg(model): _prefix_cache(model, batch["prefix_ids"].to(device), len(ids))})
        else:
            out = model(input_ids=ids, position_ids=pos, use_cache=False, logits_to_keep=keep)
    logits = out.logits
    if logits.dim() != 2 or logits.shape[0] != n:
        raise RuntimeError(f"{type(model).__name__} ignores a boolean logits_to_keep (logits "
                           f"{tuple(logits.shape)}, expected ({n}, vocab)); needs transformers >= 5")
    loss_sum = F.cross_entropy(logits.float(), target[keep], reduction="sum")
    return loss_sum, n


def _prefix_cache(model, prefix: torch.Tensor, rows: int):
    """K/V of the shared prefix (1, P), run once with gradient and repeated for ``rows`` rows;
    the gradient of every row flows back through the repeat into the one prefix pass."""
    from transformers import DynamicCache

    P = prefix.shape[1]
    out = model(input_ids=prefix, position_ids=torch.arange(P, device=prefix.device)[None], use_cache=True,
                logits_to_keep=torch.zeros_like(prefix, dtype=torch.bool))
    past = getattr(out, "cache", None) or out.past_key_values
    return DynamicCache(ddp_cache_data=[(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1))
                                        for layer in past.layers])

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

Where ``fused_forward`` describes the model (not DDP-wrapped), it runs instead: the same loss and
gradients, each packed example its own sequence with padding and the tokens after a row's last
target dropped (``_fused_loss``); ``fused=False`` forces transformers' forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reasonlab.models import cache_kwarg, keep_every_key
from reasonlab.train import fused_forward
from reasonlab.train.sft_data import IGNORE


def sft_loss(model, batch: dict[str, torch.Tensor], autocast_dtype: torch.dtype | None = None,
             fused: bool | None = None) -> tuple[torch.Tensor, int]:
    """(sum of -log p(target) over target tokens, number of target tokens).

    ``batch``: ``collate`` output. ``autocast_dtype``: None or float32 runs in the weights'
    dtype; bf16/fp16 runs the forward under ``torch.autocast`` (log-softmax in fp32 either way).
    ``use_cache=False`` and no attention mask: with a cache transformers skips the packed-sequence
    detection that keeps packed examples apart (a shared-prefix batch is never packed).
    """
    p = fused_forward.plan(model, fused)
    if p is not None:
        return _fused_loss(model, p, batch, autocast_dtype)
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
    the gradient of every row flows back through the repeat into the one prefix pass, whose
    cache keeps every key (``keep_every_key``)."""
    from transformers import DynamicCache

    P = prefix.shape[1]
    out = model(input_ids=prefix, position_ids=torch.arange(P, device=prefix.device)[None], use_cache=True,
                logits_to_keep=torch.zeros_like(prefix, dtype=torch.bool), **keep_every_key(model))
    past = getattr(out, "cache", None) or out.past_key_values
    return DynamicCache(ddp_cache_data=[(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1))
                                        for layer in past.layers])


def _fused_loss(model, p, batch: dict[str, torch.Tensor], autocast_dtype) -> tuple[torch.Tensor, int]:
    """``sft_loss`` through ``fused_forward``. Sequences as transformers finds them: a packed row
    splits wherever its positions do not step by 1 (``find_packed_sequence_indices``); a row
    under a shared prefix attends to all of it. Each row is cut after its last target position."""
    ids, pos, target = batch["input_ids"], batch["position_ids"], batch["target_ids"]
    prefix = batch["prefix_ids"][0].tolist() if "prefix_ids" in batch else None
    seqs, starts, cols = [], [], []  # each sequence's tokens, first position, (row, first column)
    for b in range(ids.shape[0]):
        hit = (target[b] != IGNORE).nonzero()
        end = int(hit[-1]) + 1 if len(hit) else 0
        cuts = [0] + ([] if prefix else [t for t in range(1, end) if pos[b, t] != pos[b, t - 1] + 1]) + [end]
        for a, z in zip(cuts, cuts[1:]):
            seqs.append(ids[b, a:z].tolist())
            starts.append(int(pos[b, a]))
            cols.append((b, a))
    lay = fused_forward.layout([prefix] if prefix else [], seqs, starts, [0] * len(seqs) if prefix else None)
    first = 1 if prefix else 0
    keep, tok = [], []
    for j, (b, a) in enumerate(cols):
        t = target[b, a:a + len(seqs[j])]
        hit = (t != IGNORE).nonzero().flatten()
        keep.append(hit + lay.starts[first + j])
        tok.append(t[hit])
    device = next(model.parameters()).device
    dtype = autocast_dtype or next(model.parameters()).dtype
    keep_t, tok_t = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.long), torch.cat(tok) if tok else None
    n = int(keep_t.numel())
    if n == 0:
        return sum(q.sum() for q in model.parameters()) * 0.0, 0
    hidden = fused_forward.final_hidden(model, p, lay, keep_t, dtype)
    picked, _ = fused_forward.head_logprobs(model, p, hidden, tok_t.to(device), dtype)
    return -picked.sum(), n

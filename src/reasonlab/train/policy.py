"""Per-token log-probs of completions under the policy, for the loss.

Layout: prompts are left-padded and completions right-padded, so every completion starts at the
same column P and ``logits_to_keep = C + 1`` makes the model compute the LM head only on the
completion positions (the vocab projection is ~20% of a 135M model's FLOPs per token).
Tensors: ids, attn (B, P + C); completion ids and mask (B, C); logp (B, C).

``temperature``: the trainer scores under the distribution the completions were sampled from,
softmax(logits / T), as TRL and verl do: the policy gradient is the one of the sampling policy,
and ``Completion.logprobs`` (the sampler's, also at T) are comparable with the trainer's (the
sampler/trainer gap metric and truncated importance sampling need that). Top-p truncation is
not applied here (nor in TRL or verl).

Both functions run ``fused_forward`` (our own training forward: padding packed away, same loss and
gradients) wherever it describes the model, and transformers' forward otherwise (``fused=False``
forces it; a one-line warning says why once per model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reasonlab.models import cache_kwarg, keep_every_key
from reasonlab.tensors import pad
from reasonlab.train import fused_forward


@dataclass
class SeqBatch:
    ids: torch.Tensor  # (B, P + C)
    attn: torch.Tensor  # (B, P + C)
    pos: torch.Tensor  # (B, P + C) RoPE positions (left padding skipped)
    comp: torch.Tensor  # (B, C) completion token ids
    mask: torch.Tensor  # (B, C) 1 on real completion tokens


def build_batch(prompts: list[tuple[int, ...]], completions: list[tuple[int, ...]], pad_id: int) -> SeqBatch:
    ids_p, attn_p = pad(prompts, pad_id, side="left")
    ids_c, attn_c = pad([list(c) for c in completions] + [[pad_id]], pad_id)  # the extra row keeps C >= 1
    ids, attn = torch.cat([ids_p, ids_c[:-1]], 1), torch.cat([attn_p, attn_c[:-1]], 1)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    return SeqBatch(ids=ids, attn=attn, pos=pos, comp=ids_c[:-1], mask=attn_c[:-1].float())


def completion_logprobs(model, batch: SeqBatch, autocast_dtype: torch.dtype | None,
                        with_entropy: bool = False, fused: bool | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logp (B, C), entropy (B, C) or None). Entropy is computed without gradient. The fused
    forward leaves 0 at padded completion positions; transformers' forward scores them too."""
    C = batch.comp.shape[1]
    p = fused_forward.plan(model, fused)
    if p is not None:
        P = batch.ids.shape[1] - C
        prompts = [tuple(row[:P][a[:P].bool()].tolist()) for row, a in zip(batch.ids, batch.attn)]
        comps = [tuple(row[m.bool()].tolist()) for row, m in zip(batch.comp, batch.mask)]
        logp, ent, _ = _fused_logprobs(model, p, prompts, comps, autocast_dtype, with_entropy, 1.0, C)
        return logp, ent
    device = next(model.parameters()).device
    enabled = autocast_dtype is not None and autocast_dtype != torch.float32
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
        out = model(input_ids=batch.ids.to(device), attention_mask=batch.attn.to(device),
                    position_ids=batch.pos.to(device), logits_to_keep=C + 1, use_cache=False)
    logits = out.logits[:, :-1].float()  # position t predicts token t+1
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, batch.comp.to(device)[..., None]).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def shared_prefix_logprobs(model, prompts: list[tuple[int, ...]], completions: list[tuple[int, ...]],
                           pad_id: int, autocast_dtype: torch.dtype | None, with_entropy: bool = False,
                           temperature: float = 1.0, fused: bool | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Like ``completion_logprobs`` but each distinct prompt is run once, not once per sample.

    GRPO samples G completions per prompt; the R1 prompt is often longer than the answer, so
    re-running it G times dominates the cost. Here the U distinct prompts go through the model
    once (with gradient), their K/V are repeated for the rows that share them, and the
    completions attend to that cache. The gradient is exact: it flows back through the shared
    K/V into the single prompt pass (``keep_every_key``: sliding windows are applied by the
    masks). Returns (logp (B, C), entropy or None, mask (B, C)).
    """
    from transformers import DynamicCache

    p = fused_forward.plan(model, fused)
    if p is not None:
        return _fused_logprobs(model, p, prompts, completions, autocast_dtype, with_entropy, temperature)

    device = next(model.parameters()).device
    uniq: dict[tuple[int, ...], int] = {}
    owner = [uniq.setdefault(tuple(p), len(uniq)) for p in prompts]
    plist = list(uniq)
    C, B = max(1, max(map(len, completions))), len(prompts)
    ids_p, attn_p = pad(plist, pad_id, side="left")
    pos_p = (attn_p.cumsum(-1) - 1).clamp(min=0)
    ids_c, mask = pad([list(c) for c in completions] + [[pad_id]], pad_id)  # the extra row keeps C >= 1
    ids_c, mask = ids_c[:-1], mask[:-1].float()
    rows = torch.tensor(owner)
    plen = attn_p.sum(-1)[rows]
    pos_c = plen[:, None] + torch.arange(C)[None]
    attn = torch.cat([attn_p[rows], torch.ones(B, C, dtype=torch.long)], dim=1)
    enabled = autocast_dtype is not None and autocast_dtype != torch.float32
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
        out_p = model(input_ids=ids_p.to(device), attention_mask=attn_p.to(device),
                      position_ids=pos_p.to(device), use_cache=True, logits_to_keep=1,
                      **keep_every_key(model))
        r = rows.to(device)
        past = getattr(out_p, "cache", None) or out_p.past_key_values
        cache = DynamicCache(ddp_cache_data=[(layer.keys.index_select(0, r), layer.values.index_select(0, r))
                                             for layer in past.layers])
        out_c = model(input_ids=ids_c.to(device), attention_mask=attn.to(device),
                      position_ids=pos_c.to(device), use_cache=True, **{cache_kwarg(model): cache})
    logits = torch.cat([out_p.logits[:, -1:].index_select(0, r), out_c.logits[:, :-1]], dim=1)
    # log-softmax over the vocabulary only where there is a real token: right padding is often
    # half of a (B, C, V) tensor that is hundreds of MB, and its cost is pure memory traffic
    keep = mask.to(device).bool()
    real = logits[keep].float()
    logp_all = torch.log_softmax(real if temperature == 1.0 else real / temperature, dim=-1)  # (N, V)
    picked = logp_all.gather(-1, ids_c.to(device)[keep][:, None]).squeeze(-1)
    zeros = torch.zeros(B, C, device=device, dtype=torch.float32)
    logp = zeros.masked_scatter(keep, picked)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = zeros.masked_scatter(keep, -(logp_all.exp() * logp_all).sum(-1))
    return logp, entropy, mask.to(device)


def _fused_logprobs(model, p, prompts, completions, autocast_dtype, with_entropy, temperature,
                    width: int | None = None):
    """``shared_prefix_logprobs`` through ``fused_forward``: the same prompt sharing, and the LM
    head only on the positions that predict a real completion token (the prompt's last token for
    the first one, then each completion token but the last)."""
    uniq: dict[tuple[int, ...], int] = {}
    owner = [uniq.setdefault(tuple(q), len(uniq)) for q in prompts]
    plist = [list(q) for q in uniq]
    rows = [list(c) for c in completions]
    lay = fused_forward.layout(plist, rows, [len(plist[o]) for o in owner], owner)
    U, keep = len(plist), []
    for b, c in enumerate(rows):
        if c:
            start = lay.starts[U + b]
            keep += [lay.starts[owner[b]] + len(plist[owner[b]]) - 1, *range(start, start + len(c) - 1)]
    device = next(model.parameters()).device
    dtype = autocast_dtype or next(model.parameters()).dtype
    C, B = width or max(1, max(map(len, rows))), len(rows)
    _, mask = pad([c for c in rows] + [[0] * C], 0)
    mask = mask[:-1].float().to(device)
    zeros = torch.zeros(B, C, device=device, dtype=torch.float32)
    if not keep:  # every completion empty: zeros, still attached to the graph so backward() runs
        anchor = next((w for w in model.parameters() if w.requires_grad), None)
        logp = zeros if anchor is None else zeros + 0.0 * anchor.reshape(-1)[0].float()
        return logp, (zeros.clone() if with_entropy else None), mask
    hidden = fused_forward.final_hidden(model, p, lay, torch.tensor(keep), dtype)
    tok = torch.tensor([t for c in rows for t in c], device=device)
    picked, ent = fused_forward.head_logprobs(model, p, hidden, tok, dtype, temperature, with_entropy)
    real = mask.bool()
    return (zeros.masked_scatter(real, picked), None if ent is None else zeros.masked_scatter(real, ent), mask)


def plan_micro_batches(prompts: list[tuple[int, ...]], lengths: list[int], size: int) -> list[list[int]]:
    """Split rows 0..B-1 into micro-batches of at most ``size`` rows, in the cheapest of three orders.

    The cost of one micro-batch under ``shared_prefix_logprobs`` is about
    ``distinct prompts x longest prompt + rows x longest completion`` token positions. Keeping a
    prompt's group together saves prompt passes; sorting by completion length saves right
    padding. Which wins depends on the lengths (long answers early in RL, short ones later), so
    we price the rollout order, groups ordered by their longest answer, and a plain length sort,
    and take the cheapest. Every row appears exactly once; the loss does not depend on the order.
    """
    rows = list(range(len(lengths)))
    by_group: dict[tuple[int, ...], list[int]] = {}
    for i in rows:
        by_group.setdefault(tuple(prompts[i]), []).append(i)
    groups = sorted(by_group.values(), key=lambda g: max(lengths[i] for i in g))
    orders = [rows,
              [i for g in groups for i in sorted(g, key=lambda i: lengths[i])],
              sorted(rows, key=lambda i: lengths[i])]

    def cost(order: list[int]) -> int:
        total = 0
        for k in range(0, len(order), size):
            chunk = order[k:k + size]
            uniq = {tuple(prompts[i]) for i in chunk}
            total += len(uniq) * max(len(p) for p in uniq) + len(chunk) * max(1, max(lengths[i] for i in chunk))
        return total

    best = min(orders, key=cost)
    return [best[k:k + size] for k in range(0, len(best), size)]

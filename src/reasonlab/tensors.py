"""The one padding helper: token id lists -> a padded (B, T) batch and its attention mask.

Why one: right padding for training and scoring, left padding for generation, and each copy
got the mask or the pad id slightly differently."""

from __future__ import annotations

from typing import Sequence

import torch


def pad(batch: Sequence[Sequence[int]], pad_id: int, side: str = "right",
        value_dtype: torch.dtype = torch.long) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, T), attention mask (B, T)); ``side`` is where the padding goes."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    width = max((len(x) for x in batch), default=0)
    ids = torch.full((len(batch), width), pad_id, dtype=value_dtype)
    attn = torch.zeros((len(batch), width), dtype=torch.long)
    for i, seq in enumerate(batch):
        if not len(seq):
            continue
        cols = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[i, cols] = torch.as_tensor(list(seq), dtype=value_dtype)
        attn[i, cols] = 1
    return ids, attn

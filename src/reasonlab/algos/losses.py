"""Policy losses (registered) and how per-token losses are aggregated (registered).

``clipped_policy_loss``: PPO's clipped surrogate (Schulman et al. 2017) per token,
    loss_t = -min(ratio_t * A, clip(ratio_t, 1 - clip_low, 1 + clip_high) * A),
    ratio_t = exp(logp_t - old_logp_t),
with the asymmetric "clip-higher" of DAPO (Yu et al. 2025): clip_high > clip_low lets
low-probability tokens grow, which keeps entropy from collapsing. With one update per batch
(old = detached current) the ratio is 1 and the loss reduces to -A * logp with gradient
-A * grad logp. Shapes: logp, old_logp, mask (B, T); advantages (B,) -> loss (B, T).

Aggregations (registered) turn (B, T) token losses into a scalar. Each takes the normaliser of
the WHOLE batch, so gradient accumulation over micro-batches gives the same gradient as one
big batch:
- ``token_mean`` (DAPO): sum over all tokens / total tokens in the batch.
- ``seq_mean_token_mean`` (original GRPO): mean over tokens within a sequence, then over sequences.
  Longer wrong answers get less penalty per token: the length bias Dr. GRPO points out.
- ``seq_mean_token_sum_norm`` (Dr. GRPO): sum over tokens / (num sequences * max_new_tokens),
  a constant, so no length bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reasonlab.registry import Registry

AGGREGATIONS: Registry = Registry("loss aggregation")
# Per-token policy losses ``fn(logp, old_logp, advantages, clip_low, clip_high) -> (loss, clipped)``.
POLICY_LOSSES: Registry = Registry("policy loss")


@dataclass(frozen=True)
class BatchNorm:
    """Normalisers computed over the whole batch (all micro-batches, all processes)."""

    tokens: float  # total completion tokens in the loss
    sequences: float  # total sequences in the loss
    max_len: int  # max_new_tokens (Dr. GRPO's constant)


@POLICY_LOSSES.register("clip")
def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        clip_low: float = 0.2, clip_high: float = 0.2
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (per-token loss (B, T), per-token 'was clipped' indicator (B, T))."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    was_clipped = (clipped < unclipped).float()
    return loss, was_clipped


@POLICY_LOSSES.register("reinforce")
def reinforce_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                   clip_low: float = 0.2, clip_high: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Unclipped importance-weighted policy gradient, -ratio * A (REINFORCE when on-policy,
    as in RLOO; Ahmadian et al. 2024). Nothing is ever clipped."""
    ratio = torch.exp(logp - old_logp)
    return -ratio * advantages[:, None], torch.zeros_like(logp)


@AGGREGATIONS.register("token_mean")
def token_mean(loss: torch.Tensor, mask: torch.Tensor, norm: BatchNorm) -> torch.Tensor:
    return (loss * mask).sum() / max(norm.tokens, 1.0)


@AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(loss: torch.Tensor, mask: torch.Tensor, norm: BatchNorm) -> torch.Tensor:
    per_seq = (loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.sum() / max(norm.sequences, 1.0)


@AGGREGATIONS.register("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(loss: torch.Tensor, mask: torch.Tensor, norm: BatchNorm) -> torch.Tensor:
    return (loss * mask).sum() / max(norm.sequences * norm.max_len, 1.0)

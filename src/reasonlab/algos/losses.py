"""Policy losses (registered) and how per-token losses are aggregated (registered).

Every policy loss is ``fn(logp, old_logp, advantages, mask, clip_low, clip_high) -> (loss,
clipped)``: logp, old_logp, mask (B, T); advantages (B,) -> per-token loss and per-token "was
clipped" indicator, both (B, T). ``mask`` (1 on completion tokens) is there for losses that
reduce over a sequence (``gspo``); token-level losses ignore it and the aggregation masks.

- ``clip``: PPO's clipped surrogate (Schulman et al. 2017) per token,
      loss_t = -min(ratio_t * A, clip(ratio_t, 1 - clip_low, 1 + clip_high) * A),
      ratio_t = exp(logp_t - old_logp_t),
  with the asymmetric "clip-higher" of DAPO (Yu et al. 2025): clip_high > clip_low lets
  low-probability tokens grow, which keeps entropy from collapsing. With one update per batch
  (old = detached current) the ratio is 1 and the loss reduces to -A * logp with gradient
  -A * grad logp.
- ``reinforce``: the unclipped importance-weighted policy gradient -ratio_t * A.
- ``gspo``: GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization"), the clipped
  surrogate on the sequence-level ratio s_i = exp(mean over the completion's tokens of
  (logp - old_logp)) = (pi(y_i) / pi_old(y_i)) ** (1 / |y_i|), so every token of a sequence is
  clipped together. Per token it is the paper's GSPO-token form,
  s_i,t = sg[s_i] * pi(y_i,t) / sg[pi(y_i,t)]: the value is s_i and the gradient
  s_i * grad logp_t, so with ``loss_agg: seq_mean_token_mean`` (the paper's 1/|y_i|) the
  gradient is exactly GSPO's. Its ratios are geometric means near 1, so the paper clips far
  tighter than PPO: ``clip_low: 3e-4, clip_high: 4e-4``; with PPO's 0.2 almost nothing clips.

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
POLICY_LOSSES: Registry = Registry("policy loss")


@dataclass(frozen=True)
class BatchNorm:
    """Normalisers computed over the whole batch (all micro-batches, all processes)."""

    tokens: float  # total completion tokens in the loss
    sequences: float  # total sequences in the loss
    max_len: int  # max_new_tokens (Dr. GRPO's constant)


def _clipped(ratio: torch.Tensor, advantages: torch.Tensor, clip_low: float, clip_high: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * adv
    return -torch.minimum(unclipped, clipped), (clipped < unclipped).float()


@POLICY_LOSSES.register("clip")
def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, clip_low: float = 0.2, clip_high: float = 0.2
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    return _clipped(torch.exp(logp - old_logp), advantages, clip_low, clip_high)


@POLICY_LOSSES.register("reinforce")
def reinforce_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                   mask: torch.Tensor, clip_low: float = 0.2, clip_high: float = 0.2
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE when on-policy, as in RLOO (Ahmadian et al. 2024). Nothing is ever clipped."""
    ratio = torch.exp(logp - old_logp)
    return -ratio * advantages[:, None], torch.zeros_like(logp)


@POLICY_LOSSES.register("gspo")
def gspo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, clip_low: float = 3e-4, clip_high: float = 4e-4
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Padding (mask 0) never enters s_i. With one advantage per sequence this has the value and
    gradient of the sequence form (TRL's ``importance_sampling_level="sequence"``)."""
    log_s = ((logp - old_logp) * mask).sum(-1) / mask.sum(-1).clamp(min=1)  # (B,)
    ratio = torch.exp(log_s.detach()[:, None] + logp - logp.detach())  # value s_i, grad s_i * grad logp_t
    return _clipped(ratio, advantages, clip_low, clip_high)


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

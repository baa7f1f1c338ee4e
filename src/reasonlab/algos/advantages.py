"""Group-relative advantages from outcome rewards.

All functions map rewards (G, n) — G groups (prompts) of n completions — to advantages (G, n),
one scalar per completion, broadcast over its tokens by the loss.

- ``grpo``: z-score within the group, (r - mean) / (std + eps). Shao et al. 2024 (DeepSeekMath),
  eq. for outcome supervision. std is the unbiased sample std, as in TRL and verl.
- ``dr_grpo``: r - mean, no std division. Liu et al. 2025 ("Understanding R1-Zero-Like Training:
  A Critical Perspective"): dividing by std up-weights too-easy/too-hard groups.
- ``rloo``: r_i - mean of the *other* n-1 rewards. Ahmadian et al. 2024 (REINFORCE Leave-One-Out);
  equals n/(n-1) * (r - mean).
"""

from __future__ import annotations

import torch

from reasonlab.registry import Registry

ADVANTAGES: Registry = Registry("advantage")


@ADVANTAGES.register("grpo")
def grpo(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(mean)
    return (rewards - mean) / (std + eps)


@ADVANTAGES.register("dr_grpo")
def dr_grpo(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    return rewards - rewards.mean(dim=1, keepdim=True)


@ADVANTAGES.register("rloo")
def rloo(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    n = rewards.shape[1]
    if n < 2:
        return torch.zeros_like(rewards)
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (n - 1)
    return rewards - others

"""Per-token KL(pi || pi_ref) estimators from samples of pi (Schulman 2020, "Approximating KL
Divergence"). Inputs logp, ref_logp (B, T) -> (B, T).

- ``k1``: logp - ref_logp. Unbiased, high variance, can be negative.
- ``k3``: exp(ref - logp) - (ref - logp) - 1. Unbiased, always >= 0, lower variance;
  what GRPO uses (Shao et al. 2024, eq. 4).
"""

from __future__ import annotations

import torch

from reasonlab.registry import Registry

KL_ESTIMATORS: Registry = Registry("KL estimator")


@KL_ESTIMATORS.register("k1")
def k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    return logp - ref_logp


@KL_ESTIMATORS.register("k3")
def k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    d = (ref_logp - logp).clamp(-20, 20)
    return torch.exp(d) - d - 1

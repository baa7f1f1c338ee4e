"""Importance-sampling corrections for a sampler that is not exactly the trainer (registered).

Why: an inference engine (vLLM: other kernels, bf16 or FP8, batch-dependent reductions) gives
the same weights different token probabilities than the trainer's forward, so its rollouts are
off-policy even with one update per batch, and the gap grows in long runs (Yao et al. 2025,
"Your Efficient RL Framework Secretly Brings You Off-Policy RL Training"). Truncated importance
sampling reweights each token's policy loss by w_t = min(pi_old(y_t) / pi_sampler(y_t), C),
detached, as verl and TRL (``vllm_importance_sampling_correction``) do; the cap C bounds the
variance. The KL term is not reweighted.

``fn(old_logp, sampler_logp, cap) -> weights``: old_logp (B, T) is the trainer's pre-update
log-prob (the detached current one when mu == 1), sampler_logp (B, T) the backend's
``Completion.logprobs`` (None when it returned none); weights (B, T) multiply the token losses.
Both log-probs must be under the same distribution: the trainer scores at the sampling
temperature (``train/policy.py``); top-p is not applied by the trainer, so with top_p < 1 the
sampler's renormalised log-probs sit above the trainer's by -log(kept mass). Our ``hf`` sampler
returns log-probs at the temperature; vLLM returns raw (untempered) ones unless the engine is
built with ``logprobs_mode="processed_logprobs"`` (vLLM >= 0.10.2; ``backend.options``), which
TIS at a temperature other than 1 needs.
"""

from __future__ import annotations

import torch

from reasonlab.config import ConfigError
from reasonlab.registry import Registry

IS_CORRECTIONS: Registry = Registry("importance-sampling correction")


@IS_CORRECTIONS.register("none")
def no_correction(old_logp: torch.Tensor, sampler_logp: torch.Tensor | None, cap: float) -> torch.Tensor:
    return torch.ones_like(old_logp)


@IS_CORRECTIONS.register("tis")
def truncated_is(old_logp: torch.Tensor, sampler_logp: torch.Tensor | None, cap: float) -> torch.Tensor:
    if sampler_logp is None:
        raise ConfigError("algo.correction: tis needs the sampler's per-token log-probs, and the backend "
                          "returned none; use a backend that returns them or set algo.correction: none")
    return torch.exp(old_logp.detach() - sampler_logp).clamp(max=cap)

"""Reward functions share one signature:

    fn(samples: list[Sample], **kwargs) -> list[float | None]

``None`` means "cannot judge this sample": it is excluded from the weighted sum's component and
from that component's metrics instead of being counted as 0. Rewards are registered by name and
combined by ``combine`` with weights from config; a reward that raises on a batch is retried
sample by sample, and the failing samples score None (logged), never crashing a run.
"""

from __future__ import annotations

import logging
from typing import Callable

from reasonlab.registry import Registry
from reasonlab.types import Sample

log = logging.getLogger(__name__)

RewardFn = Callable[..., list]
REWARDS: Registry = Registry("reward")


def safe_call(name: str, fn: RewardFn, samples: list[Sample], **kwargs) -> list[float | None]:
    """Call ``fn``; on an exception, score sample by sample so one bad sample costs only itself."""
    try:
        out = fn(samples, **kwargs)
        if len(out) != len(samples):
            raise ValueError(f"reward {name!r} returned {len(out)} scores for {len(samples)} samples")
        return [None if v is None else float(v) for v in out]
    except Exception:  # noqa: BLE001 - a user reward must not kill a training run
        scores: list[float | None] = []
        for sample in samples:
            try:
                value = fn([sample], **kwargs)[0]
                scores.append(None if value is None else float(value))
            except Exception as exc:  # noqa: BLE001
                log.warning("reward %r raised on problem %s: %r; scored None",
                            name, sample.problem.id, exc)
                scores.append(None)
        return scores

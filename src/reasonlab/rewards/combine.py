"""Weighted sum of reward components, with None handling.

``combine`` returns per-sample totals and the per-component scores (for metrics). A sample
with None in any weighted component gets a None total: it cannot be judged fairly, so the
trainer masks it out instead of treating the missing part as 0.
"""

from __future__ import annotations

from typing import Any

from reasonlab.rewards.base import REWARDS, safe_call
from reasonlab.types import Sample


def combine(samples: list[Sample], weights: dict[str, float], options: dict[str, dict[str, Any]] | None = None,
            **shared: Any) -> tuple[list[float | None], dict[str, list[float | None]]]:
    options = options or {}
    components = {}
    for name, weight in weights.items():
        fn = REWARDS.get(name)
        components[name] = safe_call(name, fn, samples, **shared, **options.get(name, {}))
    totals: list[float | None] = []
    for i in range(len(samples)):
        parts = [(w, components[n][i]) for n, w in weights.items() if w != 0]
        totals.append(None if any(v is None for _, v in parts) else sum(w * v for w, v in parts))
    return totals, components

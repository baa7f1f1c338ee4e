"""Accuracy: 1.0 when the task's verifier accepts the answer, 0.0 when not, None when it cannot judge."""

from __future__ import annotations

from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample


@REWARDS.register("accuracy")
def accuracy(samples: list[Sample], task, **_) -> list[float | None]:
    out: list[float | None] = []
    for s in samples:
        verdict = task.score(s.problem, s.text).correct
        out.append(None if verdict is None else float(verdict))
    return out

"""Length reward of Kimi k1.5 (Kimi Team 2025, §2.3.3), computed within each problem's group:

    lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len)
    reward_i = lambda_i            if the answer is correct
             = min(0, lambda_i)    otherwise

Shorter correct answers are preferred, long wrong ones penalised; all-equal lengths give 0.
Correctness comes from the task verifier (``task`` kwarg).
"""

from __future__ import annotations

from collections import defaultdict

from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample


@REWARDS.register("length")
def length(samples: list[Sample], task, **_) -> list[float | None]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[s.problem.id].append(i)
    out: list[float | None] = [0.0] * len(samples)
    for idx in groups.values():
        lens = [samples[i].completion.num_tokens or len(samples[i].text) for i in idx]
        lo, hi = min(lens), max(lens)
        if hi == lo:
            continue
        for i, n in zip(idx, lens):
            lam = 0.5 - (n - lo) / (hi - lo)
            correct = task.score(samples[i].problem, samples[i].text).correct
            out[i] = lam if correct else min(0.0, lam)
    return out

"""Metrics over sampled answers.

- ``pass_at_k``: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models
  Trained on Code", eq. 1): with n samples of which c are correct,
  pass@k = 1 - C(n-c, k) / C(n, k), computed as a stable product.
- ``maj_at_k``: self-consistency (Wang et al. 2022): the most frequent answer among the first k
  samples, answers grouped by ``is_equivalent`` (so "0.5" and "\\frac{1}{2}" vote together);
  ties go to the group seen first. A missing answer never votes.
- ``metric_intervals``: 95% bootstrap intervals over problems for per-problem metric values
  (``eval/intervals.py`` says why problems are the unit).
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from reasonlab.eval.intervals import bootstrap_ci, rounded

Equiv = Callable[[str, str], "bool | None"]


def pass_at_k(n: int, c: int, k: int) -> float:
    if k > n:
        raise ValueError(f"pass@k needs k <= n (k={k}, n={n})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def group_answers(answers: Sequence[str | None], equiv: Equiv) -> list[list[int]]:
    """Indices of ``answers`` grouped by equivalence, in order of first appearance."""
    groups: list[list[int]] = []
    for i, ans in enumerate(answers):
        if ans is None:
            continue
        for group in groups:
            if equiv(answers[group[0]], ans):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def majority(answers: Sequence[str | None], equiv: Equiv,
             weights: Sequence[float] | None = None) -> int | None:
    """Index of a representative of the winning group (by count, or by summed weight)."""
    groups = group_answers(answers, equiv)
    if not groups:
        return None
    w = weights if weights is not None else [1.0] * len(answers)
    best = max(groups, key=lambda g: sum(w[i] for i in g))  # max keeps the first on ties
    return best[0]


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool | None], k: int,
             equiv: Equiv) -> float:
    """1.0 if the majority answer among the first k samples is correct, else 0.0."""
    winner = majority(list(answers[:k]), equiv)
    return 1.0 if winner is not None and correct[winner] else 0.0


def metric_intervals(per_problem: dict[str, Sequence[float]], seed: int = 0) -> dict[str, list[float] | None]:
    """``{"pass@1": [v per problem], ...}`` -> ``{"pass@1": [lo, hi], ...}`` (95%, bootstrap over
    problems, seeded so a summary is reproducible)."""
    return {name: rounded(bootstrap_ci(values, seed=seed)) for name, values in per_problem.items()}


_R1_FORMAT = re.compile(r"^\s*<think>(?:(?!</?think>|</?answer>).)*</think>\s*"
                        r"<answer>(?:(?!</?think>|</?answer>).)*</answer>\s*$", re.DOTALL)


def r1_format_ok(text: str) -> bool:
    """Exactly one <think>...</think> block, then exactly one <answer>...</answer>, nothing else."""
    return bool(_R1_FORMAT.match(text))

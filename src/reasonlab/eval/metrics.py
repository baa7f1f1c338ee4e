"""Metrics over sampled answers.

- ``pass_at_k``: the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models
  Trained on Code", eq. 1): with n samples of which c are correct,
  pass@k = 1 - C(n-c, k) / C(n, k), computed as a stable product.
- ``maj_at_k``: self-consistency (Wang et al. 2022): the most frequent answer among the first k
  samples, answers grouped by ``is_equivalent`` (so "0.5" and "\\frac{1}{2}" vote together);
  ties go to the group seen first. A missing answer never votes.
- ``metric_intervals``: 95% bootstrap intervals over problems for per-problem metric values
  (``eval/intervals.py`` says why problems are the unit).
- ``well_formed``: the R1 format check every part uses (``r1_format_ok``, the tag layout, and
  ``thinking_nonempty``).
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
MIN_THINK_WORDS = 2
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z_]+>")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def r1_format_ok(text: str) -> bool:
    """The R1 tag layout alone: exactly one <think>...</think> block, then exactly one
    <answer>...</answer>, nothing else. What the ``format`` reward pays is ``well_formed``."""
    return bool(_R1_FORMAT.match(text))


def thinking_nonempty(text: str, min_words: int = MIN_THINK_WORDS) -> bool:
    """True when the first closed ``<think>`` block holds at least ``min_words`` words (a word:
    a run of letters or digits, or one CJK character; tags are not words); no closed block ->
    False. ``rewards/format.py`` says why empty thinking must not count."""
    m = _THINK.search(text)
    return bool(m) and len(_WORD.findall(_TAG.sub(" ", m.group(1)))) >= min_words


def well_formed(text: str) -> bool:
    """The one R1 format check: the tag layout with real thinking inside. What the ``format``
    reward pays and the trace filters keep; eval and GRPO report its rate as
    ``nonempty_think_rate`` beside ``format_rate`` (the layout alone, ``r1_format_ok``)."""
    return r1_format_ok(text) and thinking_nonempty(text)

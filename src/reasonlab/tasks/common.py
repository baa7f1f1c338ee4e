"""A Task built from a list of problems plus the shared math verifier."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from reasonlab.types import Problem, Score


def math_score(problem: Problem, completion: str) -> Score:
    """Extract the final answer and compare it with the reference; never raises.

    ``reward`` is 1.0/0.0 when judged and None when the verifier cannot judge (skip the sample).
    """
    from reasonlab.verify import extract_answer, is_equivalent

    pred = extract_answer(completion)
    correct = is_equivalent(pred, problem.answer)
    return Score(correct=correct, extracted=pred, reward=None if correct is None else float(correct))


def number_score(problem: Problem, completion: str) -> Score:
    """``math_score`` for tasks whose reference is a plain number (arith, GSM8K): correct only
    when the extracted answer holds exactly one number, the right one, and a fraction only where
    the reference is one ("2400/2" is not an answer to "1200").

    Why: the equivalence check evaluates expressions, so an answer that restates the question
    ("4 + 19 ≈ 19.1") passed as 23 — GRPO from the base model found that hack in
    ``reasonlab compare`` (pass@1 1.0 with format 0.0) before this rule. Not used for MATH-style
    references, where "5 \\text{ cm}^2" is a right answer that holds two numbers."""
    from reasonlab.verify import count_numbers

    s = math_score(problem, completion)
    if s.correct and count_numbers(s.extracted, fractions="/" in problem.answer) != 1:
        return replace(s, correct=False, reward=0.0)
    return s


@dataclass
class ListTask:
    """A task whose splits are produced by ``loader(split) -> list[Problem]`` (cached)."""

    name: str
    loader: Callable[[str], list[Problem]]
    scorer: Callable[[Problem, str], Score] = math_score
    _cache: dict = field(default_factory=dict, repr=False)

    def load(self, split: str = "test", limit: int | None = None) -> list[Problem]:
        if split not in self._cache:
            self._cache[split] = self.loader(split)
        problems = self._cache[split]
        return problems[:limit] if limit else list(problems)

    def score(self, problem: Problem, completion: str) -> Score:
        try:
            return self.scorer(problem, completion)
        except Exception:  # noqa: BLE001 - scoring never crashes a run
            return Score(correct=None)

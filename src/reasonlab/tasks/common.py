"""A Task built from a list of problems plus the shared math verifier."""

from __future__ import annotations

from dataclasses import dataclass, field
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

"""Generate-and-verify: a scorer built from a task's own ``self_check``.

Some tasks can check a candidate without the reference answer — countdown (the expression uses
the given numbers and hits the target), code (the docstring's visible tests, run in the
sandbox). Such a task exposes ``self_check(problem, completion) -> bool | None``; wrapping it in
``SelfCheckScorer`` lets best_of_n and weighted_vote do "sample, check, keep" with no trained
model (``reasonlab scale --scorer verifier``).

Scores are three tiers, ``PASS`` > ``UNKNOWN`` > ``FAIL``, each 1000x the next, so that:
- best_of_n keeps the first candidate that passes (none passes: the first that could not be
  judged, else the first sample — the one-sample baseline);
- weighted_vote lets any verified answer outweigh every unverified vote (up to 1000 samples),
  while votes inside one tier still count, so with nothing verified it is plain majority vote.
A zero for FAIL would instead make every all-failing problem a tie broken by order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem

PASS, UNKNOWN, FAIL = 1.0, 1e-3, 1e-6


class SelfCheckScorer:
    """The ``Scorer`` interface (``score(problems, texts, aggregation) -> list[float]``) over a
    task's ``self_check``. Verdicts are cached per (problem, text): the scale runner scores
    n = 4's candidates again after n = 16's, and a code check is a sandbox run. Checks run a few
    at a time (sandbox runs are subprocesses, so threads overlap them)."""

    def __init__(self, check, workers: int = 4):
        self.check, self.workers = check, workers
        self.cache: dict[tuple[str, str], bool | None] = {}
        self.bar = None  # a rich Progress (set by the scale runner): checking shows its own task
        self._bar_job: list | None = None  # [bar, its task id, total so far]

    @classmethod
    def for_task(cls, task) -> "SelfCheckScorer":
        check = getattr(task, "self_check", None)
        if check is None:
            raise DataError(f"task {task.name!r} cannot check its own answers (no self_check); "
                            "--scorer verifier works with countdown and humaneval")
        return cls(check)

    def verdicts(self, problems: list[Problem], texts: list[str]) -> list[bool | None]:
        keys = [(p.id, t) for p, t in zip(problems, texts)]
        todo = list({k: (p, t) for k, p, t in zip(keys, problems, texts) if k not in self.cache}.items())
        job = self._job(len(todo))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for key, verdict in zip((k for k, _ in todo), pool.map(lambda item: self._safe(*item[1]), todo)):
                self.cache[key] = verdict
                if job is not None:
                    self.bar.advance(job)
        return [self.cache[k] for k in keys]

    def _job(self, more: int):
        """One "self-check" progress task per bar, grown by each call's new checks (strategies
        score one problem per call: a task per call would fill the screen)."""
        if self.bar is None or not more:
            return None
        if self._bar_job is None or self._bar_job[0] is not self.bar:
            self._bar_job = [self.bar, self.bar.add_task("self-check", total=0), 0]
        self._bar_job[2] += more
        self.bar.update(self._bar_job[1], total=self._bar_job[2])
        return self._bar_job[1]

    def score(self, problems: list[Problem], texts: list[str], aggregation: str = "last") -> list[float]:
        """``aggregation`` is accepted for the Scorer interface; a check has no steps."""
        return [PASS if v is True else FAIL if v is False else UNKNOWN for v in self.verdicts(problems, texts)]

    def _safe(self, problem: Problem, text: str) -> bool | None:
        try:
            return self.check(problem, text)
        except Exception:  # noqa: BLE001 - a verifier never raises; a crash is "cannot judge"
            return None

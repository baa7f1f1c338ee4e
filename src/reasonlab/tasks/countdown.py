"""Countdown (TinyZero's task) from reasoning-gym, scored by reasoning-gym's own checker."""

from __future__ import annotations

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.types import Problem, Score

SEEDS = {"train": 1, "test": 2}


def _load(split: str, size: int, seed: int) -> list[Problem]:
    import reasoning_gym as rg

    ds = rg.create_dataset("countdown", size=size, seed=seed * 1000 + SEEDS.get(split, 3))
    return [Problem(id=f"countdown/{split}/{i}", question=x["question"], answer=str(x["answer"]),
                    meta={"entry": x}) for i, x in enumerate(ds)]


def _score(problem: Problem, completion: str) -> Score:
    import reasoning_gym as rg

    from reasonlab.verify import extract_answer

    pred = extract_answer(completion)
    if pred is None:
        return Score(correct=False, extracted=None, reward=0.0)
    ds = rg.create_dataset("countdown", size=1, seed=0)
    reward = float(ds.score_answer(pred, problem.meta["entry"]))
    return Score(correct=reward >= 1.0, extracted=pred, reward=reward)


@TASKS.register("countdown")
def countdown(size: int = 1000, seed: int = 0) -> ListTask:
    return ListTask("countdown", lambda split: _load(split, size, seed), _score)

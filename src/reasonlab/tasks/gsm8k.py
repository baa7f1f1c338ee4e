"""GSM8K (Cobbe et al. 2021): grade-school word problems.

Files: ``gsm8k_{train,test}.jsonl`` with ``question`` and ``answer`` (a worked solution ending in
``#### <number>``), found as described in ``files.py``; hub fallback ``openai/gsm8k`` (main).
The reference answer is the number after ``####`` with thousands commas removed; the worked
solution stays in ``meta["solution"]`` (SFT and distillation use it). Scored by ``number_score``
(the answer must be one number, not an expression that evaluates to it). Ids: ``gsm8k/<split>/<i>``.
"""

from __future__ import annotations

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask, number_score
from reasonlab.tasks.errors import DataError
from reasonlab.tasks.files import load_records
from reasonlab.types import Problem

SPLITS = ("train", "test")


def reference(solution: str) -> str:
    """``"...\\n#### 1,234"`` -> ``"1234"``."""
    return solution.split("####")[-1].strip().replace(",", "").rstrip(".")


def _load(split: str, data: str | None) -> list[Problem]:
    if split not in SPLITS:
        raise DataError(f"gsm8k has splits {', '.join(SPLITS)}; not {split!r}")

    def hub():
        import datasets

        return datasets.load_dataset("openai/gsm8k", "main", split=split)

    problems = []
    for i, (where, r) in enumerate(load_records(f"gsm8k_{split}.jsonl", data,
                                                ("question", "answer"), hub)):
        if "####" not in str(r["answer"]):
            raise DataError(f"{where}: field 'answer' has no '#### <number>' line")
        problems.append(Problem(id=f"gsm8k/{split}/{i}", question=str(r["question"]),
                                answer=reference(str(r["answer"])),
                                meta={"solution": r["answer"]}))
    return problems


@TASKS.register("gsm8k")
def gsm8k(data: str | None = None) -> ListTask:
    return ListTask("gsm8k", lambda split: _load(split, data), number_score)

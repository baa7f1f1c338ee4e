"""GSM8K (Cobbe et al. 2021): grade-school word problems; the reference is the ``#### n`` line."""

from __future__ import annotations

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.tasks.files import find_file, read_jsonl
from reasonlab.types import Problem


def reference(solution: str) -> str:
    return solution.split("####")[-1].strip().replace(",", "")


def _load(split: str, data: str | None) -> list[Problem]:
    if split not in ("train", "test"):
        raise DataError(f"gsm8k has splits train, test; not {split!r}")

    def hub():
        import datasets

        return list(datasets.load_dataset("openai/gsm8k", "main", split=split))

    source = find_file(f"gsm8k_{split}.jsonl", data, hub)
    rows = source if isinstance(source, list) else [r for _, r in read_jsonl(source, ("question", "answer"))]
    return [Problem(id=f"gsm8k/{split}/{i}", question=r["question"], answer=reference(r["answer"]),
                    meta={"solution": r["answer"]}) for i, r in enumerate(rows)]


@TASKS.register("gsm8k")
def gsm8k(data: str | None = None) -> ListTask:
    return ListTask("gsm8k", lambda split: _load(split, data))

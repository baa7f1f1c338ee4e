"""MATH-500: Lightman et al. 2023's 500-problem subset of MATH (Hendrycks et al. 2021).

File ``math500_test.jsonl`` with ``problem``, ``answer`` (LaTeX), ``solution``, ``subject``,
``level``, ``unique_id``; hub fallback ``HuggingFaceH4/MATH-500``. Only a test split exists.
Ids come from ``unique_id`` (``math500/test/precalculus/807``), else the record index, so they
stay stable when the file is reordered. Answers are judged by ``verify.is_equivalent``.
"""

from __future__ import annotations

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.tasks.files import load_records
from reasonlab.types import Problem

META_FIELDS = ("subject", "level", "solution")


def problems_from_file(name: str, filename: str, split: str, data: str | None,
                       hub_id: str, hub_split: str) -> list[Problem]:
    """Shared loader for problem/answer files (math500, aime): one split, ``test``."""
    if split != "test":
        raise DataError(f"{name} has only a test split, not {split!r}")

    def hub():
        import datasets

        return datasets.load_dataset(hub_id, split=hub_split)

    problems, seen = [], set()
    for i, (where, r) in enumerate(load_records(filename, data, ("problem", "answer"), hub)):
        key = str(r.get("unique_id") or r.get("id") or f"{split}/{i}").removesuffix(".json")
        pid = f"{name}/{key}"
        if pid in seen:
            raise DataError(f"{where}: duplicate id {key!r}")
        seen.add(pid)
        problems.append(Problem(id=pid, question=str(r["problem"]), answer=str(r["answer"]),
                                meta={k: r[k] for k in META_FIELDS if k in r}))
    return problems


@TASKS.register("math500")
def math500(data: str | None = None) -> ListTask:
    return ListTask("math500", lambda split: problems_from_file(
        "math500", "math500_test.jsonl", split, data, "HuggingFaceH4/MATH-500", "test"))

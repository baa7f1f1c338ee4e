"""MATH-500 (Lightman et al. 2023's subset of Hendrycks et al. 2021), and AIME from a file."""

from __future__ import annotations

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.files import find_file, read_jsonl
from reasonlab.types import Problem


def _load_file(filename: str, hub_name: str, prefix: str, data: str | None,
               question: str = "problem", answer: str = "answer") -> list[Problem]:
    def hub():
        import datasets

        return list(datasets.load_dataset(hub_name, split="test" if "500" in hub_name else "train"))

    source = find_file(filename, data, hub)
    rows = source if isinstance(source, list) else [r for _, r in read_jsonl(source, (question, answer))]
    return [Problem(id=f"{prefix}/{r.get('unique_id', i)}", question=r[question],
                    answer=str(r[answer]), meta={k: v for k, v in r.items() if k in ("subject", "level")})
            for i, r in enumerate(rows)]


@TASKS.register("math500")
def math500(data: str | None = None) -> ListTask:
    return ListTask("math500", lambda split: _load_file(
        "math500_test.jsonl", "HuggingFaceH4/MATH-500", "math500", data))


@TASKS.register("aime")
def aime(data: str | None = None) -> ListTask:
    return ListTask("aime", lambda split: _load_file(
        "aime.jsonl", "AI-MO/aimo-validation-aime", "aime", data))

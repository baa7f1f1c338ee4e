"""Any JSONL file as a task: ``--data PATH`` plus the names of its question/answer fields.

Ids are ``<file stem>/<id_field value>`` when ``id_field`` is given (duplicates are an error),
else ``<file stem>/<line number>``. The same file serves every split (bring separate files for
train and test). Answers are judged by ``verify.is_equivalent``.
"""

from __future__ import annotations

from pathlib import Path

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.tasks.files import read_jsonl
from reasonlab.types import Problem


def _load(data: str, question_field: str, answer_field: str, id_field: str | None) -> list[Problem]:
    path = Path(data).expanduser()
    if not path.is_file():
        raise DataError(f"--data {data}: no such file (the jsonl task needs a .jsonl file)")
    fields = (question_field, answer_field) + ((id_field,) if id_field else ())
    problems, seen = [], set()
    for lineno, r in read_jsonl(path, fields):
        key = str(r[id_field]) if id_field else str(lineno)
        if key in seen:
            raise DataError(f"{path}:{lineno}: duplicate {id_field!r} value {key!r}")
        seen.add(key)
        problems.append(Problem(id=f"{path.stem}/{key}", question=str(r[question_field]),
                                answer=str(r[answer_field])))
    return problems


@TASKS.register("jsonl")
def jsonl(data: str | None = None, question_field: str = "question", answer_field: str = "answer",
          id_field: str | None = None) -> ListTask:
    if not data:
        raise DataError("the jsonl task needs --data PATH (and --question-field/--answer-field)")
    return ListTask("jsonl", lambda split: _load(data, question_field, answer_field, id_field))

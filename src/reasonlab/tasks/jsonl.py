"""Any local data set as a task: ``--data PATH`` plus the names of its question/answer fields.

PATH is a JSONL, JSON or parquet file, a ``datasets.save_to_disk`` folder, or a folder of such
files (``reasonlab/tables.py``), so a downloaded benchmark needs no conversion. Ids are
``<stem>/<id_field value>`` when ``id_field`` is given (duplicates are an error), else
``<stem>/<line number>`` (JSONL) or ``<stem>/row<N>`` (the others, 0-based). The same file serves every split (bring separate files for
train and test). Answers are judged by ``verify.is_equivalent``.
"""

from __future__ import annotations

from pathlib import Path

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tables import is_dataset_dir, read_records
from reasonlab.tasks.errors import DataError
from reasonlab.tasks.files import MAX_RECORD_BYTES
from reasonlab.types import Problem


def _load(data: str, question_field: str, answer_field: str, id_field: str | None) -> list[Problem]:
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(f"--data {data}: no such file or directory")
    fields = (question_field, answer_field) + ((id_field,) if id_field else ())
    problems, seen, one = [], set(), path.is_file() or is_dataset_dir(path)
    for where, r in read_records(path, fields, MAX_RECORD_BYTES):
        source, _, pos = where.rpartition(":")
        pos = pos.replace("row ", "row")
        key = str(r[id_field]) if id_field else pos if one else f"{Path(source).stem}:{pos}"
        if key in seen:
            raise DataError(f"{where}: duplicate {id_field!r} value {key!r}")
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

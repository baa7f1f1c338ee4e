"""AIME problems (integer answers 0-999) from a file or the hub; same loader as MATH-500.

Pass ``data`` = a jsonl file with ``problem`` and ``answer`` fields (optional ``id``), or a
directory holding ``aime.jsonl``; without it the usual data directories are searched, then the
hub (``AI-MO/aimo-validation-aime``: AIME 2022-2024, 90 problems) if ``datasets`` is installed.
Answers like ``033`` and ``33`` are equal (numeric comparison in ``verify``).
"""

from __future__ import annotations

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.math500 import problems_from_file


@TASKS.register("aime")
def aime(data: str | None = None) -> ListTask:
    return ListTask("aime", lambda split: problems_from_file(
        "aime", "aime.jsonl", split, data, "AI-MO/aimo-validation-aime", "train"))

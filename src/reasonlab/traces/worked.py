"""Traces written by a program: a task's own worked solutions as SFT rows in the R1 format.

Why: R1's cold start needs a few hundred well-formed, correct traces, and a 135M base model
writes none (its samples do not close ``</think>``). For a task that can work its problems out
(``task.worked(problem)``, e.g. arith), the program is the teacher. Rows carry provenance like
``reasonlab generate``'s, with the verdict of the task's own scorer, so they mix with sampled
traces and ``train sft`` reads them as is.
"""

from __future__ import annotations

from reasonlab import prompts
from reasonlab.errors import DataError
from reasonlab.types import Problem


def worked_rows(task, problems: list[Problem]) -> list[dict]:
    if not hasattr(task, "worked"):
        raise DataError(f"task {task.name!r} has no worked solutions (only tasks with a worked() "
                        f"method, e.g. arith); give cold-start traces or a teacher instead")
    rows = []
    for p in problems:
        content = f"{prompts.THINK_PREFILL}{task.worked(p)}\n</think>\n<answer>{p.answer}</answer>"
        score = task.score(p, content)
        rows.append({"messages": prompts.build(p, "r1_noprefill") + [{"role": "assistant", "content": content}],
                     "problem_id": p.id,
                     "provenance": {"teacher": f"program:{task.name}.worked",
                                    "verdict": {"correct": score.correct, "extracted": score.extracted}}})
    return rows

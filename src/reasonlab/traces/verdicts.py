"""Verdicts on the answer part of each response (after ``</think>``).

The task's verifier decides (math by the equivalence checker, code by running the tests in the
sandbox: ``task.score`` already does both). When it cannot judge (``correct is None``: no
answer it can parse, a timeout) and a judge backend is given, the LLM judge decides instead
(opt-in, via ``reasonlab.rewards.judge``). Judge verdicts cost requests, so they are cached in
an append-only ``judge.jsonl`` keyed like the raw results: a rerun asks the judge nothing twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reasonlab.io import append_jsonl, read_jsonl_rows, truncate_torn_tail
from reasonlab.types import Problem


@dataclass(frozen=True)
class Verdict:
    correct: bool | None
    extracted: str | None
    by: str  # "verifier" | "judge"

    def as_dict(self) -> dict:
        return {"correct": self.correct, "extracted": self.extracted, "by": self.by}


def verify_all(task, items: list[tuple[Problem, str]], workers: int = 4) -> list[Verdict]:
    """The task's verdict on each (problem, answer part); the verifier never raises."""
    def one(item):
        score = task.score(*item)
        return Verdict(score.correct, score.extracted, "verifier")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


def judge_fallback(verdicts: list[Verdict], items: list[tuple[str, Problem, str]], judge_backend,
                   cache_path: Path, criterion: str | None = None) -> list[Verdict]:
    """Replace verdicts the verifier left as None by the judge's; ``items`` are (cache key,
    problem, whole response) per verdict."""
    from reasonlab.rewards.judge import DEFAULT_CRITERION, judge_texts

    truncate_torn_tail(cache_path)
    cached = {r["id"]: r["verdict"] for r in read_jsonl_rows(cache_path)}
    todo = [i for i, v in enumerate(verdicts) if v.correct is None and items[i][0] not in cached]
    if todo:
        triples = [(items[i][1].question, items[i][1].answer, items[i][2]) for i in todo]
        scores = judge_texts(judge_backend, triples, criterion or DEFAULT_CRITERION)
        rows = [{"id": items[i][0], "verdict": s} for i, s in zip(todo, scores)]
        append_jsonl(cache_path, rows)
        cached.update((r["id"], r["verdict"]) for r in rows)
    out = []
    for v, (key, _, _) in zip(verdicts, items):
        if v.correct is None and cached.get(key) is not None:
            v = Verdict(bool(cached[key]), v.extracted, "judge")
        out.append(v)
    return out

"""n-gram decontamination against the evaluation sets the project ships.

A training question that shares any word n-gram (default n = 8, as s1 does; GPT-3 used 13) with
a question of an evaluation set is dropped, so a score on that set never measures memory of a
trace. Questions shorter than n words match only when equal. Text is normalised to lowercase
words (``\\w+`` runs, so LaTeX ``\\frac{1}{2}`` gives ``frac 1 2``) before n-grams are taken.

Sets: ``EVAL_SETS`` loaded through the tasks (``get_task(name).load(split)``). A set that does
not load (no file shipped, no hub access) is reported as unavailable in the stats; it never
stops a run, and the stats say which sets were actually checked.
"""

from __future__ import annotations

import re

EVAL_SETS = (("gsm8k", "test"), ("math500", "test"))
_WORD = re.compile(r"\w+")


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


def ngrams(toks: tuple[str, ...], n: int) -> set[tuple[str, ...]]:
    return {toks[i:i + n] for i in range(len(toks) - n + 1)}


class Decontaminator:
    def __init__(self, questions: list[str], n: int = 8, report: dict | None = None):
        self.n = n
        self.grams: set[tuple[str, ...]] = set()
        self.short: set[tuple[str, ...]] = set()
        for q in questions:
            toks = words(q)
            if len(toks) < n:
                self.short.add(toks)
            self.grams |= ngrams(toks, n)
        self.report = report or {}

    @classmethod
    def from_eval_sets(cls, n: int = 8, sets=EVAL_SETS) -> "Decontaminator":
        from reasonlab.tasks.base import get_task

        questions: list[str] = []
        report: dict[str, dict] = {}
        for name, split in sets:
            try:
                problems = get_task(name).load(split)
            except Exception as exc:  # noqa: BLE001 - a missing set is reported, never fatal
                report[f"{name}/{split}"] = {"available": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                continue
            report[f"{name}/{split}"] = {"available": True, "questions": len(problems)}
            questions += [p.question for p in problems]
        return cls(questions, n, report)

    def contaminated(self, question: str) -> bool:
        toks = words(question)
        if len(toks) < self.n:
            return toks in self.short
        return any(g in self.grams for g in ngrams(toks, self.n))

"""Exact and near-duplicate traces of the same question.

Several samples of one problem are often the same text, or the same text with a word changed;
training on both spends tokens on one example twice and narrows the set (s1 and Sky-T1 dedupe
for the same reason). Exact: whitespace- and case-normalised response text. Near: Jaccard
similarity of word n-gram shingles (Broder 1997) at or above ``threshold`` against a trace of the
same question already kept. Comparisons stay within a question (duplicates across different
questions are not redundant training data), so the pairwise cost is ``O(k^2)`` per problem.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]")


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def shingles(text: str, n: int) -> frozenset:
    toks = _TOKEN.findall(text.lower())
    if len(toks) < n:
        return frozenset([tuple(toks)])
    return frozenset(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class Deduper:
    """Feed traces in order; ``check`` says "duplicate", "near_duplicate" or None (kept)."""

    def __init__(self, exact: bool = True, near: bool = True, threshold: float = 0.8, n: int = 3):
        self.exact, self.near, self.threshold, self.n = exact, near, threshold, n
        self.seen: dict[str, set[str]] = {}
        self.kept: dict[str, list[frozenset]] = {}

    def check(self, question: str, response: str) -> str | None:
        q = normalize(question)
        text = normalize(response)
        if self.exact:
            if text in self.seen.setdefault(q, set()):
                return "duplicate"
            self.seen[q].add(text)
        if self.near:
            sh = shingles(response, self.n)
            if any(jaccard(sh, other) >= self.threshold for other in self.kept.get(q, [])):
                return "near_duplicate"
            self.kept.setdefault(q, []).append(sh)
        return None

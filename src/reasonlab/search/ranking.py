"""How well a learned verifier ranks solutions, measured on held-out labelled solutions.

Why: a PRM/ORM only helps search if it puts right solutions above wrong ones *of the same
problem*. Training loss does not say that; these numbers do, before anyone scales with it.

- ``auc``: probability that a random correct solution scores above a random wrong one (ties
  count half; Mann-Whitney U / (n_pos * n_neg)). 0.5 is chance. Pooled over all problems, so
  it also rewards telling easy problems from hard ones, which no selector can use.
- ``auc_within``: the same AUC inside each problem that has both right and wrong solutions,
  averaged over those problems: the part of ranking that best-of-n and weighted vote can use.
- ``best_of_n``: per problem, the accuracy of keeping the top-scored of its n solutions, ties
  broken uniformly at random in expectation (so a constant scorer gets exactly pass@1, not
  whatever order the solutions came in), beside ``pass@1`` (mean correctness: no selection) and
  ``pass@n`` (some solution right: a perfect selector). ``gain`` = best_of_n - pass@1, with a
  paired 95% bootstrap interval over problems (eval/intervals.py).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Hashable, Sequence

import numpy as np

from reasonlab.eval.intervals import paired_bootstrap_ci, rounded


def auc(scores: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for ``correct``; None if either class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def ranking_quality(scores: Sequence[float], correct: Sequence[bool], groups: Sequence[Hashable]) -> dict:
    """Ranking metrics of one score per solution; ``groups[i]`` names solution i's problem."""
    if not (len(scores) == len(correct) == len(groups)):
        raise ValueError(f"need one score, label and problem per solution, got {len(scores)}, "
                         f"{len(correct)} and {len(groups)}")
    by_problem: dict[Hashable, list[tuple[float, bool]]] = defaultdict(list)
    for s, c, g in zip(scores, correct, groups):
        by_problem[g].append((float(s), bool(c)))
    best, p1, pn, within = [], [], [], []
    for sols in by_problem.values():
        w = auc([s for s, _ in sols], [c for _, c in sols])
        if w is not None:
            within.append(w)
        top = max(s for s, _ in sols)
        tied = [c for s, c in sols if s == top]
        best.append(sum(tied) / len(tied))
        p1.append(sum(c for _, c in sols) / len(sols))
        pn.append(float(any(c for _, c in sols)))
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    a = auc(scores, correct)
    return {"auc": None if a is None else round(a, 4), "auc_within": mean(within), "best_of_n": mean(best),
            "pass@1": mean(p1), "pass@n": mean(pn), "gain": None if not best else round(mean(best) - mean(p1), 4),
            "gain_ci": rounded(paired_bootstrap_ci(best, p1)) if best else None,
            "n": max((len(v) for v in by_problem.values()), default=0),
            "problems": len(by_problem), "solutions": len(scores), "correct": int(sum(map(bool, correct)))}


def evaluate_ranking(scorer, rows: list[dict], aggregation: str = "last") -> dict:
    """``ranking_quality`` of ``scorer`` on labelled rows as ``train/prm.mc_labels`` makes them
    (``{"problem", "steps", "labels"}``; the last label is the solution's own correctness)."""
    problems = [r["problem"] for r in rows]
    scores = scorer.score(problems, ["".join(r["steps"]) for r in rows], aggregation)
    return ranking_quality(scores, [r["labels"][-1] >= 0.5 for r in rows], [p.id for p in problems])


def split_by_problem(rows: list[dict], held_out: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held-out) rows, split by problem so no held-out problem was seen in training."""
    ids = sorted({r["problem"].id for r in rows})
    random.Random(seed).shuffle(ids)
    keep = set(ids[: round(len(ids) * held_out)])
    return [r for r in rows if r["problem"].id not in keep], [r for r in rows if r["problem"].id in keep]

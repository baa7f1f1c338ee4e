"""Best-of-N: sample n solutions, keep the one a reward model (ORM, or PRM aggregated over steps)
scores highest (Cobbe et al. 2021; Lightman et al. 2023)."""

from __future__ import annotations

from reasonlab.search.base import STRATEGIES, Result, SearchConfig
from reasonlab.search.vote import _answers, sample_all


@STRATEGIES.register("best_of_n")
def best_of_n(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    if scorer is None:
        raise ValueError("best_of_n needs a scorer (--scorer DIR, from `reasonlab train prm`)")
    _, texts, tokens = sample_all(problems, backend, cfg, cfg.n)
    results = []
    for p, t, k in zip(problems, texts, tokens):
        scores = scorer.score([p] * len(t), t, cfg.aggregation)
        best = max(range(len(t)), key=lambda i: scores[i])
        results.append(Result(p.id, _answers([t[best]])[0], t[best], k, t, {"scores": scores}))
    return results

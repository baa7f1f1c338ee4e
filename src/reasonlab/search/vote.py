"""Chain of thought, self-consistency, and weighted voting.

- ``cot``: one sample with a CoT preset (``cot``: "Let's think step by step", Kojima et al. 2022;
  ``r1``: the R1 template) — the n = 1 baseline of every curve.
- ``vote``: self-consistency (Wang et al. 2022): n samples, the most frequent final answer, answers
  grouped by ``is_equivalent``.
- ``weighted_vote``: each answer's votes weighted by a scorer (ORM/PRM) score — Li et al. 2023's
  verifier-weighted voting, as in search-and-learn.
"""

from __future__ import annotations

from reasonlab import prompts as prompt_formats
from reasonlab.eval.metrics import majority
from reasonlab.search.base import STRATEGIES, Result, SearchConfig
from reasonlab.types import SamplingParams


def sample_all(problems, backend, cfg: SearchConfig, n: int):
    msgs = [prompt_formats.build(p, cfg.prompt) for p in problems]
    params = SamplingParams(n=n, temperature=cfg.temperature if n > 1 else cfg.temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    outs = backend.generate(msgs, params)
    texts = [[prompt_formats.response_prefix(m) + c.text for c in cs] for m, cs in zip(msgs, outs)]
    tokens = [sum(c.num_tokens for c in cs) for cs in outs]
    return msgs, texts, tokens


def _answers(texts):
    from reasonlab.verify import extract_answer

    return [extract_answer(t) for t in texts]


@STRATEGIES.register("cot")
def cot(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    _, texts, tokens = sample_all(problems, backend, cfg, 1)
    return [Result(p.id, _answers(t)[0], t[0], k, t) for p, t, k in zip(problems, texts, tokens)]


@STRATEGIES.register("vote")
def vote(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    from reasonlab.verify import is_equivalent

    _, texts, tokens = sample_all(problems, backend, cfg, cfg.n)
    results = []
    for p, t, k in zip(problems, texts, tokens):
        answers = _answers(t)
        win = majority(answers, is_equivalent)
        results.append(Result(p.id, None if win is None else answers[win], t[win or 0], k, t,
                              {"votes": sum(1 for a in answers if a is not None and win is not None
                                            and is_equivalent(a, answers[win]))}))
    return results


@STRATEGIES.register("weighted_vote")
def weighted_vote(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    from reasonlab.verify import is_equivalent

    if scorer is None:
        raise ValueError("weighted_vote needs a scorer (--scorer DIR)")
    _, texts, tokens = sample_all(problems, backend, cfg, cfg.n)
    results = []
    for p, t, k in zip(problems, texts, tokens):
        answers = _answers(t)
        scores = scorer.score([p] * len(t), t, cfg.aggregation)
        win = majority(answers, is_equivalent, weights=scores)
        results.append(Result(p.id, None if win is None else answers[win], t[win or 0], k, t, {"scores": scores}))
    return results

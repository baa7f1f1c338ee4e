"""Step-level search guided by a PRM: beam search and DVTS.

A "step" ends at ``cfg.step_delimiter`` (a blank line by default). Partial solutions are
continued through the backend with an assistant pre-fill (the messages end with the partial
answer), so any Generator that continues a final assistant message works.

- ``beam`` (Snell et al. 2024; search-and-learn): keep ``n // beam_width`` beams; each step,
  expand every beam into ``beam_width`` candidates, score each partial solution with the PRM
  (its last step's score), keep the best ``n // beam_width``. Finished solutions stay.
- ``dvts`` (diverse verifier tree search, Beeching et al. 2024): split the budget into
  ``n // beam_width`` independent subtrees; each keeps only its single best candidate per step,
  which preserves diversity that a shared beam loses. Final answer: the best-scoring leaf.
"""

from __future__ import annotations

from reasonlab import prompts as prompt_formats
from reasonlab.search.base import STRATEGIES, Result, SearchConfig
from reasonlab.types import SamplingParams


def _expand(backend, problem, base_msgs, partials: list[str], k: int, cfg: SearchConfig, step: int):
    """Continue each partial solution k ways by one step; returns (texts, finished flags, tokens)."""
    prompts = [base_msgs + [{"role": "assistant", "content": part}] if part else base_msgs for part in partials]
    params = SamplingParams(n=k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.step_tokens,
                            stop=(cfg.step_delimiter,), seed=cfg.seed * 1000 + step)
    outs = backend.generate(prompts, params)
    texts, done, tokens = [], [], 0
    for part, cs in zip(partials, outs):
        for c in cs:
            ends_step = c.text.endswith(cfg.step_delimiter)
            texts.append(part + c.text)
            done.append(not ends_step)  # EOS or the step budget ran out: this path is complete
            tokens += c.num_tokens
    return texts, done, tokens


def _search(problem, backend, scorer, cfg: SearchConfig, trees: int, keep_per_tree: int):
    from reasonlab.verify import extract_answer

    base = prompt_formats.build(problem, cfg.prompt)
    prefill = prompt_formats.response_prefix(base)
    if prefill:
        base = base[:-1]
    beams = [[prefill] for _ in range(trees)]  # per tree: live partial solutions
    finished: list[tuple[float, str]] = []
    tokens = 0
    for step in range(cfg.max_steps):
        live = [(t, b) for t, bs in enumerate(beams) for b in bs]
        if not live:
            break
        texts, done, used = _expand(backend, problem, base, [b for _, b in live], cfg.beam_width, cfg, step)
        tokens += used
        scores = scorer.score([problem] * len(texts), texts, "last")
        owners = [t for t, _ in live for _ in range(cfg.beam_width)]
        new = [[] for _ in range(trees)]
        for tree, text, is_done, score in zip(owners, texts, done, scores):
            (finished.append((score, text)) if is_done else new[tree].append((score, text)))
        beams = [[t for _, t in sorted(c, key=lambda x: -x[0])[:keep_per_tree]] for c in new]
    finished += [(s, t) for t, s in zip([b for bs in beams for b in bs],
                                         scorer.score([problem] * sum(map(len, beams)),
                                                      [b for bs in beams for b in bs], "last"))] if any(beams) else []
    if not finished:
        return Result(problem.id, None, "", tokens)
    agg = scorer.score([problem] * len(finished), [t for _, t in finished], cfg.aggregation)
    best = max(range(len(finished)), key=lambda i: agg[i])
    text = finished[best][1]
    return Result(problem.id, extract_answer(text), text, tokens, [t for _, t in finished], {"scores": agg})


@STRATEGIES.register("beam")
def beam(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    if scorer is None:
        raise ValueError("beam search needs a PRM scorer (--scorer DIR)")
    keep = max(1, cfg.n // cfg.beam_width)
    return [_search(p, backend, scorer, cfg, trees=1, keep_per_tree=keep) for p in problems]


@STRATEGIES.register("dvts")
def dvts(problems, backend, scorer, cfg: SearchConfig) -> list[Result]:
    if scorer is None:
        raise ValueError("dvts needs a PRM scorer (--scorer DIR)")
    trees = max(1, cfg.n // cfg.beam_width)
    return [_search(p, backend, scorer, cfg, trees=trees, keep_per_tree=1) for p in problems]

"""Accuracy against compute: run strategies at several n and plot accuracy vs tokens generated.

Sample reuse: vote, weighted_vote and best_of_n at n = 1, 2, 4, ... draw from one set of
max(n) samples per problem (``PrefixCache``), so the curve compares prefixes of the same samples
instead of fresh noise at every n; each point counts only the tokens of the samples it used.
Wall time is measured per point, so points served from the cache show the time of the
selection alone; the largest n shows the sampling time (see ``sampled``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from reasonlab.eval.progress import progress_bar
from reasonlab.eval.report import write_html
from reasonlab.search.base import Result, SearchConfig, get_strategy
from reasonlab.types import SamplingParams

PREFIX_SHARED = {"cot", "vote", "weighted_vote", "best_of_n"}


class PrefixCache:
    """A Generator wrapper: a request for n samples is served from an earlier request's first n.

    Misses go to the backend a few full batches at a time (``batches_per_call`` x its
    ``max_batch`` rows), so the sampler fills whole batches across prompts and a progress bar,
    when given, moves while a long sampling pass runs.
    """

    name = "prefix-cache"

    def __init__(self, backend, bar=None, batches_per_call: int = 4):
        self.backend, self.store, self.bar = backend, {}, bar
        self.tokenizer = getattr(backend, "tokenizer", None)
        self.rows_per_call = batches_per_call * getattr(backend, "max_batch", 64)

    def generate(self, prompts, params: SamplingParams):
        keys = [json.dumps([prompt, params.temperature, params.top_p, params.max_new_tokens,
                            list(params.stop), params.seed], sort_keys=True) for prompt in prompts]
        missing = list({k: p for k, p in zip(keys, prompts)
                        if k not in self.store or len(self.store[k]) < params.n}.items())
        job = self.bar.add_task(f"sampling n={params.n}", total=len(missing)) if self.bar and missing else None
        step = max(1, self.rows_per_call // max(params.n, 1))
        for start in range(0, len(missing), step):
            part = missing[start:start + step]
            for (key, _), samples in zip(part, self.backend.generate([p for _, p in part], params)):
                self.store[key] = samples
            if job is not None:
                self.bar.advance(job, len(part))
        return [self.store[k][: params.n] for k in keys]

    def sync_weights(self) -> None:
        self.backend.sync_weights()


def run_scale(problems, task, backend, scorer, strategies: list[str], ns: list[int], cfg: SearchConfig,
              out: str | Path, progress: bool = True) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, list[dict]] = {}
    with progress_bar(progress) as bar, (out / "results.jsonl").open("w") as log:
        cached = PrefixCache(backend, bar)  # progress_bar(False) yields a silent stand-in
        if scorer is not None and hasattr(scorer, "bar"):
            scorer.bar = bar  # scoring thousands of samples takes minutes too
        points = bar.add_task("scale", total=len(strategies) * len(ns))
        for name in strategies:
            fn = get_strategy(name)
            for n in sorted(ns, reverse=True):  # the largest first, so smaller n reuse its samples
                bar.update(points, description=f"scale: {name} n={n}")
                run_cfg = SearchConfig(**{**cfg.__dict__, "strategy": name, "n": n})
                start = time.perf_counter()
                results: list[Result] = fn(problems, cached if name in PREFIX_SHARED else backend, scorer, run_cfg)
                wall = time.perf_counter() - start
                correct = [bool(task.score(p, r.text).correct) if r.text else False for p, r in zip(problems, results)]
                for p, r, c in zip(problems, results, correct):
                    log.write(json.dumps({"strategy": name, "n": n, "problem_id": p.id, "answer": r.answer,
                                          "reference": p.answer, "correct": c, "tokens": r.tokens}) + "\n")
                curves.setdefault(name, []).append({
                    "n": n, "accuracy": round(sum(correct) / len(correct), 4), **_candidate_stats(problems, results, task),
                    "tokens_per_problem": round(sum(r.tokens for r in results) / len(results), 1),
                    "wall_s": round(wall, 2), "sampled": name not in PREFIX_SHARED or n == max(ns)})
                bar.advance(points)
            curves[name].sort(key=lambda row: row["n"])
    summary = {"problems": len(problems), "config": cfg.__dict__, "strategies": curves}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(out, curves)
    return summary


def _candidate_stats(problems, results: list[Result], task) -> dict:
    """pass@1 (mean correctness over every candidate: the single-sample baseline, estimated from
    all n samples instead of one) and pass@n (any candidate right: the ceiling a perfect selector
    could reach). Empty when a strategy keeps no candidates."""
    per_problem = [[bool(task.score(p, c).correct) for c in r.candidates] for p, r in zip(problems, results)]
    if not all(per_problem):
        return {}
    return {"pass@1": round(sum(sum(c) / len(c) for c in per_problem) / len(per_problem), 4),
            "pass@n": round(sum(any(c) for c in per_problem) / len(per_problem), 4)}


def plot(out: Path, curves: dict[str, list[dict]]) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    for name, rows in curves.items():
        ax.plot([r["tokens_per_problem"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=name)
        for r in rows:
            ax.annotate(f"n={r['n']}", (r["tokens_per_problem"], r["accuracy"]), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("tokens generated per problem")
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy vs inference compute")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scaling.png")
    plt.close(fig)
    table = [{"strategy": s, **r} for s, rows in curves.items() for r in rows]
    return write_html(out / "report.html", "Inference-time scaling",
                      [{"heading": "Accuracy vs tokens", "images": [out / "scaling.png"], "table": table}])



"""Accuracy against compute: run strategies at several n and plot accuracy vs tokens generated.

Sample reuse: vote, weighted_vote and best_of_n at n = 1, 2, 4, ... draw from one set of
max(n) samples per problem (``PrefixCache``), so the curve compares prefixes of the same samples
instead of fresh noise at every n; each point counts only the tokens of the samples it used.
Wall time is measured per point, so points served from the cache show the time of the
selection alone; the largest n shows the sampling time (see ``sampled``).

Error bars: every point carries 95% bootstrap intervals over problems (``accuracy_ci``,
``pass@1_ci``, ``pass@n_ci``) and its ``gain`` over pass@1 with a paired interval (``gain_ci``),
pass@1 being estimated per problem from the largest shared sample set (``baseline`` in the
summary). A gain counts only when its interval excludes 0 (eval/intervals.py).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reasonlab.eval.intervals import RESAMPLES, bootstrap_ci, paired_bootstrap_ci, rounded
from reasonlab.eval.metrics import r1_format_ok
from reasonlab.eval.progress import progress_bar
from reasonlab.eval.report import band_plot, write_html
from reasonlab.io import atomic_write_json, atomic_write_jsonl
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
    outcomes: dict[tuple[str, int], tuple[list[bool], list[list[bool]]]] = {}
    judge = Judge(task)
    lines: list[dict] = []  # written atomically at the end: a killed re-run never empties a finished run's file
    with progress_bar(progress) as bar:
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
                correct = judge.many([(p, r.text) for p, r in zip(problems, results)])
                flat = judge.many([(p, c) for p, r in zip(problems, results) for c in r.candidates])
                per_candidate = _unflatten(flat, [len(r.candidates) for r in results])
                for p, r, c in zip(problems, results, correct):
                    lines.append({"strategy": name, "n": n, "problem_id": p.id, "answer": r.answer,
                                  "reference": p.answer, "correct": c, "tokens": r.tokens,
                                  "format_ok": r1_format_ok(r.text)})
                outcomes[(name, n)] = (correct, per_candidate)
                curves.setdefault(name, []).append({
                    "n": n, "accuracy": round(sum(correct) / len(correct), 4), **_candidate_stats(per_candidate),
                    "tokens_per_problem": round(sum(r.tokens for r in results) / len(results), 1),
                    "wall_s": round(wall, 2), "sampled": name not in PREFIX_SHARED or n == max(ns)})
                bar.advance(points)
            curves[name].sort(key=lambda row: row["n"])
    atomic_write_jsonl(out / "results.jsonl", lines)
    baseline, source = _baseline(outcomes)
    for name, rows in curves.items():
        for row in rows:
            row.update(point_intervals(*outcomes[(name, row["n"])], baseline))
    summary = {"problems": len(problems), "config": cfg.__dict__,
               "baseline": None if baseline is None else {
                   "pass@1": round(sum(baseline) / len(baseline), 4), "pass@1_ci": rounded(bootstrap_ci(baseline)),
                   "from": source},
               "intervals": {"level": 0.95, "method": "percentile bootstrap over problems (paired for gains)",
                             "resamples": RESAMPLES, "seed": 0},
               "strategies": curves}
    atomic_write_json(out / "summary.json", summary)
    plot(out, curves)
    return summary


def scorer_from_spec(spec: str | None, task):
    """``verifier`` -> the task's own self-check; a directory -> a trained PRM/ORM; None -> none."""
    if spec is None:
        return None
    if spec == "verifier":
        from reasonlab.search.self_check import SelfCheckScorer

        return SelfCheckScorer.for_task(task)
    from reasonlab.search.scorers import RewardModelScorer

    return RewardModelScorer.load(Path(spec))


class Judge:
    """``task.score`` memoised per (problem, text) and run a few at a time: candidates at n = 4
    are the first four of n = 16, and a code task's verdict is a sandbox run each."""

    def __init__(self, task, workers: int = 4):
        self.task, self.workers, self.memo = task, workers, {}

    def many(self, pairs) -> list[bool]:
        todo = list({(p.id, t): (p, t) for p, t in pairs if t and (p.id, t) not in self.memo}.items())
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            verdicts = pool.map(lambda item: bool(self.task.score(*item[1]).correct), todo)
            self.memo.update(zip((k for k, _ in todo), verdicts))
        return [bool(t) and self.memo[(p.id, t)] for p, t in pairs]


def _unflatten(flat: list, sizes: list[int]) -> list[list]:
    out, i = [], 0
    for size in sizes:
        out.append(flat[i:i + size])
        i += size
    return out


def _candidate_stats(per_candidate: list[list[bool]]) -> dict:
    """pass@1 (mean correctness over every candidate: the single-sample baseline, estimated from
    all n samples instead of one) and pass@n (any candidate right: the ceiling a perfect selector
    could reach). Empty when a strategy keeps no candidates."""
    if not all(per_candidate):
        return {}
    return {"pass@1": round(sum(sum(c) / len(c) for c in per_candidate) / len(per_candidate), 4),
            "pass@n": round(sum(any(c) for c in per_candidate) / len(per_candidate), 4)}


def _baseline(outcomes: dict[tuple[str, int], tuple[list[bool], list[list[bool]]]]) -> tuple[list[float] | None, str]:
    """Per-problem pass@1 from the largest shared sample set: the point of a prefix-sharing
    strategy with the most candidates (vote, weighted_vote and best_of_n at max n all hold the
    same samples). Every point's gain is measured against it, on the same problems. None when
    only strategies with their own sampling (beam, dvts, budget) ran."""
    shared = [(sum(map(len, cands)), key) for key, (_, cands) in outcomes.items()
              if key[0] in PREFIX_SHARED and all(cands)]
    if not shared:
        return None, ""
    _, key = max(shared, key=lambda item: item[0])  # max keeps the first (earliest run) on ties
    return [sum(c) / len(c) for c in outcomes[key][1]], f"{key[0]} n={key[1]}"


def point_intervals(correct: list[bool], per_candidate: list[list[bool]], baseline: list[float] | None) -> dict:
    """95% intervals of one point: accuracy, pass@1 and pass@n (bootstrap over problems), and the
    gain over the pass@1 baseline with its paired interval (same problems, same resamples)."""
    acc = [float(c) for c in correct]
    row = {"accuracy_ci": rounded(bootstrap_ci(acc))}
    if all(per_candidate):
        row["pass@1_ci"] = rounded(bootstrap_ci([sum(c) / len(c) for c in per_candidate]))
        row["pass@n_ci"] = rounded(bootstrap_ci([float(any(c)) for c in per_candidate]))
    if baseline is not None:
        row["gain"] = round(sum(acc) / len(acc) - sum(baseline) / len(baseline), 4)
        row["gain_ci"] = rounded(paired_bootstrap_ci(acc, baseline))
    return row


def plot(out: Path, curves: dict[str, list[dict]]) -> Path:
    """scaling.png (accuracy vs tokens, 95% bands) and, when a pass@1 baseline exists, gain.png
    (accuracy - pass@1 vs tokens, paired 95% bands, a dashed line at no gain)."""
    labels = {name: [f"n={r['n']}" for r in rows] for name, rows in curves.items()}
    band = lambda key, ci: {name: [(r["tokens_per_problem"], r[key], *(r.get(ci) or (None, None)))  # noqa: E731
                                   for r in rows if key in r] for name, rows in curves.items()}
    images = [band_plot(out / "scaling.png", band("accuracy", "accuracy_ci"), "accuracy vs inference compute (95% CI)",
                        "tokens generated per problem", "accuracy", logx=True, point_labels=labels)]
    if any("gain" in r for rows in curves.values() for r in rows):
        images.append(band_plot(out / "gain.png", band("gain", "gain_ci"), "gain over pass@1 (paired 95% CI)",
                                "tokens generated per problem", "accuracy - pass@1", logx=True, hline=0.0,
                                point_labels=labels))
    table = [{"strategy": s, **r} for s, rows in curves.items() for r in rows]
    return write_html(out / "report.html", "Inference-time scaling",
                      [{"heading": "Accuracy vs tokens", "images": images, "table": table,
                        "text": "Bands and [lo, hi] columns: 95% percentile bootstrap over problems; gains are "
                                "paired against pass@1 on the same problems."}])

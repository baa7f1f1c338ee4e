"""Raw samples -> verdicts -> filters -> selection -> ``traces.jsonl`` and ``stats.json``.

Recomputed from ``raw.jsonl`` on every run (cheap next to sampling, and always consistent
with the current switches), so changing a filter or ``--select`` and rerunning re-requests
nothing. Each sample is counted under the first reason that drops it, in this order:
truncated (finish_reason "length"), no_think_end (``<think>`` never closed: no answer part to check;
a response with no think tags at all is judged whole, and the ``format`` filter decides whether
such rows are wanted),
incorrect / unjudged (the verdict on the answer part), contaminated, format, language,
code_blocks, long_paragraphs, duplicate, near_duplicate. Disabled filters count 0.

Files: ``traces.jsonl`` (the SFT rows), ``samples.jsonl`` (every sample's fate),
``problems.jsonl`` (per-problem pass rate and tokens), ``stats.json``.

A row of ``traces.jsonl`` (the contract with ``reasonlab train sft``)::

    {"messages": [{"role": "system", ...}?, {"role": "user", "content": question},
                  {"role": "assistant", "content": "<think>\\n...\\n</think>\\n<answer>...</answer>"}],
     "problem_id": ..., "provenance": {"teacher", "task", "sample_index", "sampling": {...},
                                       "verdict": {...}, "tokens": {...}, "pass_rate"}}

The messages are exactly the prompt format's messages, its assistant pre-fill (if any) replaced
by the whole response (pre-fill + completion), so SFT trains on the prompt the model is asked.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from pathlib import Path

from reasonlab.io import atomic_write_json, atomic_write_jsonl
from reasonlab.prompts import response_prefix
from reasonlab.traces.decontam import Decontaminator
from reasonlab.traces.dedup import Deduper
from reasonlab.traces.filters import FilterConfig, quality_reason
from reasonlab.traces.response import assemble, split_response
from reasonlab.traces.select import SelectConfig, select
from reasonlab.traces.verdicts import judge_fallback, verify_all
from reasonlab.types import Messages, Problem

REASONS = ("truncated", "no_think_end", "incorrect", "unjudged", "contaminated", "format", "language",
           "code_blocks", "long_paragraphs", "duplicate", "near_duplicate")


def sft_messages(prompt: Messages, response: str) -> Messages:
    """The prompt's messages with the assistant turn holding the whole response."""
    if response_prefix(prompt):
        return [dict(m) for m in prompt[:-1]] + [{"role": "assistant", "content": response}]
    return [dict(m) for m in prompt] + [{"role": "assistant", "content": response}]


def build(task, problems: list[Problem], prompts: dict[str, Messages], raw: dict[str, list[dict]], n: int,
          out: Path, provenance: dict, filters: FilterConfig = FilterConfig(),
          selection: SelectConfig = SelectConfig(), judge_backend=None,
          decontaminator: Decontaminator | None = None) -> dict:
    """Write the output files from raw samples (``raw[pid]``: rows of ``generate.sample_raw``)."""
    samples = []  # (problem, raw row, response)
    for p in problems:
        for r in sorted(raw.get(p.id, []), key=lambda r: r["sample_index"])[:n]:
            samples.append((p, r, assemble(response_prefix(prompts[p.id]), r["text"], r.get("reasoning"))))
    parts = [split_response(resp) for _, _, resp in samples]
    fates, verdicts = _verdicts(task, samples, parts, judge_backend, out)
    if filters.decontam and decontaminator is None:
        decontaminator = Decontaminator.from_eval_sets(filters.decontam_ngram)
    dedup = Deduper(filters.dedup, filters.near_dup, filters.near_dup_threshold, filters.near_dup_ngram)
    dirty = {p.id for p in problems if filters.decontam and decontaminator.contaminated(p.question)}
    for i, (p, _, resp) in enumerate(samples):
        if fates[i] is None and p.id in dirty:
            fates[i] = "contaminated"
        if fates[i] is None:
            fates[i] = quality_reason(resp, parts[i][0], filters, code_task=bool(p.meta.get("entry_point")))
        if fates[i] is None:
            fates[i] = dedup.check(p.question, resp)

    correct, drawn, kept = Counter(), Counter(), defaultdict(list)
    for i, (p, r, resp) in enumerate(samples):
        drawn[p.id] += 1
        correct[p.id] += bool(i in verdicts and verdicts[i].correct)
        if fates[i] is None:
            row = _row(p, prompts[p.id], r, resp, verdicts[i], provenance)
            kept[p.id].append({"row": row, "tokens": r["tokens"], "sample_index": r["sample_index"]})
    pass_rate = {pid: correct[pid] / drawn[pid] for pid in drawn}
    for items in kept.values():
        for item in items:
            item["row"]["provenance"]["pass_rate"] = round(pass_rate[item["row"]["problem_id"]], 4)
    rows = [item["row"] for item in select(problems, pass_rate, kept, selection, task.name)]
    atomic_write_jsonl(out / "traces.jsonl", rows)
    atomic_write_jsonl(out / "samples.jsonl", [
        {"problem_id": p.id, "sample_index": r["sample_index"], "fate": fates[i] or "kept",
         "correct": verdicts[i].correct if i in verdicts else None,
         "extracted": verdicts[i].extracted if i in verdicts else None,
         "tokens": r["tokens"], "finish_reason": r["finish_reason"]} for i, (p, r, _) in enumerate(samples)])
    tokens = defaultdict(list)
    for p, r, _ in samples:
        tokens[p.id].append(r["tokens"])
    per_problem = [_problem_stats(p.id, tokens[p.id], pass_rate, kept) for p in problems if p.id in drawn]
    atomic_write_jsonl(out / "problems.jsonl", per_problem)
    stats = _stats(samples, fates, verdicts, per_problem, kept, rows, filters, selection, decontaminator)
    atomic_write_json(out / "stats.json", {**stats, "provenance": provenance})
    return stats


def _verdicts(task, samples, parts, judge_backend, out: Path):
    """Fates so far (truncated, no_think_end, incorrect, unjudged) and verdicts by sample index."""
    fates: list[str | None] = [None] * len(samples)
    for i, (_, r, _) in enumerate(samples):
        if r["finish_reason"] == "length":
            fates[i] = "truncated"
        elif parts[i] is None:
            fates[i] = "no_think_end"
    judged = [i for i, f in enumerate(fates) if f is None]
    verdicts = dict(zip(judged, verify_all(task, [(samples[i][0], parts[i][1]) for i in judged])))
    if judge_backend is not None:
        ids = [i for i in judged if verdicts[i].correct is None]
        items = [(f"{samples[i][1]['key']}/{samples[i][0].id}/{samples[i][1]['sample_index']}",
                  samples[i][0], samples[i][2]) for i in ids]
        verdicts.update(zip(ids, judge_fallback([verdicts[i] for i in ids], items, judge_backend,
                                                out / "judge.jsonl")))
    for i, v in verdicts.items():
        if v.correct is None:
            fates[i] = "unjudged"
        elif not v.correct:
            fates[i] = "incorrect"
    return fates, verdicts


def _row(p: Problem, prompt: Messages, r: dict, resp: str, v, provenance: dict) -> dict:
    return {"messages": sft_messages(prompt, resp), "problem_id": p.id,
            "provenance": {**provenance, "sample_index": r["sample_index"],
                           "verdict": {**v.as_dict(), "reference": p.answer},
                           "tokens": {"completion": r["tokens"], "prompt": r.get("prompt_tokens")}}}


def _problem_stats(pid: str, toks: list[int], pass_rate, kept) -> dict:
    return {"problem_id": pid, "samples": len(toks), "pass_rate": round(pass_rate[pid], 4),
            "kept": len(kept.get(pid, [])), "tokens_mean": round(statistics.mean(toks), 1),
            "tokens_min": min(toks), "tokens_max": max(toks)}


def _summary(xs: list[int]) -> dict:
    if not xs:
        return {"count": 0}
    return {"count": len(xs), "total": sum(xs), "mean": round(statistics.mean(xs), 1),
            "median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def _stats(samples, fates, verdicts, per_problem, kept, rows, filters, selection, decon) -> dict:
    rejected = Counter(f for f in fates if f is not None)
    rates = [pp["pass_rate"] for pp in per_problem]
    hist = Counter(min(9, int(x * 10)) for x in rates)
    return {
        "problems": len(per_problem), "samples": len(samples),
        "rejected": {name: rejected.get(name, 0) for name in REASONS},
        "kept": sum(len(v) for v in kept.values()), "problems_with_kept": len(kept),
        "written": len(rows), "problems_written": len({r["problem_id"] for r in rows}),
        "verdicts_by": dict(Counter(v.by for v in verdicts.values() if v.correct is not None)),
        "filters": {k: v for k, v in vars(filters).items()},
        "selection": {k: v for k, v in vars(selection).items()},
        "decontam": {"enabled": filters.decontam, "ngram": filters.decontam_ngram,
                     "sets": decon.report if decon is not None else {}},
        "pass_rate": {"mean": round(statistics.mean(rates), 4) if rates else None,
                      "histogram": {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": hist[b] for b in range(10)}},
        "tokens": {"sampled": _summary([r["tokens"] for _, r, _ in samples]),
                   "kept": _summary([item["tokens"] for v in kept.values() for item in v]),
                   "written": _summary([r["provenance"]["tokens"]["completion"] for r in rows])},
    }

"""The evaluation runner: problems -> prompts -> backend -> verifier -> samples.jsonl + summary.json.

Run directory: ``run.json`` (the settings that produced it, written before any sample),
``samples.jsonl`` (one judged sample per line, append-only), ``state.json`` (wall time) and
``summary.json``. ``wall_s`` in the summary adds up the time of every run that contributed.

What a re-run with the same ``out_dir`` promises:
- Resume. A sample once written is never rewritten or dropped; only a torn last line (a kill
  mid-write) is cut off. A malformed line before the end is damage, not a crash: refused, naming
  ``file:line``.
- Exactness. Samples are made in fixed units: a chunk of ``chunk_problems`` consecutive problems
  (the value recorded in run.json by the first run: by default ``unit_problems(n)``, enough
  problems for about 64 rows, since a unit is one generate call and the backends run far faster
  at batch 64 than at 8) times a block of sample indices. The blocks come from the history of
  ``n`` (n=2, then n=4: blocks [0, 2) and [2, 4)); each unit is generated with the same prompts
  and seed whatever happened before, and a unit cut short by a kill is generated again whole,
  keeping only its missing samples. So with a deterministic backend a run killed anywhere and resumed ends with
  the same samples as an uninterrupted one. (Changing the problem list, e.g. ``limit``, changes
  which problems share a chunk: allowed, since problems are keyed by id, but not exact.)
- Extension. A larger ``n`` adds a block with its own seed (derived from the block start), so
  the new samples are new draws, not copies of the first ones. A smaller ``n`` summarises the
  first n samples of each problem.
- Any other setting (model, task, data, prompt, temperature, top_p, max_new_tokens, seed, ...)
  that differs from ``run.json`` is refused with one line naming it: results made under two
  settings must not be summarised as one. Start fresh with another ``out_dir``.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from reasonlab import prompts as prompt_formats
from reasonlab.eval.metrics import maj_at_k, metric_intervals, pass_at_k, r1_format_ok, well_formed
from reasonlab.eval.progress import progress_bar
from reasonlab.io import (append_jsonl, atomic_write_json, check_writable_dir, read_json, read_jsonl,
                          truncate_torn_tail)
from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem, SamplingParams

Samples = dict[str, dict[int, dict]]  # problem id -> sample index -> row


def evaluate(generator, task, problems: list[Problem], *, prompt_format: str,
             params: SamplingParams, out_dir: str | Path, model_name: str = "",
             chunk_problems: int | None = None, progress: bool = True,
             settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``problems`` with ``params.n`` samples each; returns the summary dict.

    ``settings``: more of what produced the run (backend, data, split...), recorded in run.json
    and compared on a re-run, beside the task, model and sampling settings added here."""
    from reasonlab.verify import is_equivalent

    out = Path(out_dir)
    run = open_run(out, run_settings(task.name, model_name, prompt_format, params, **(settings or {})),
                   params.n, chunk_problems)
    samples_path = out / "samples.jsonl"
    have = load_samples(samples_path)
    size = run["chunk_problems"]
    blocks = sample_blocks(run["n_blocks"], params.n)
    units = [(problems[i:i + size], block) for i in range(0, len(problems), size) for block in blocks]
    todo = [(chunk, (lo, hi)) for chunk, (lo, hi) in units if any(_prefix(have, p.id) < hi for p in chunk)]
    state = read_json(out / "state.json") or {"wall_s": 0.0}
    start = time.perf_counter()
    n_done = lambda ps: sum(_prefix(have, p.id) >= params.n for p in ps)  # noqa: E731
    with progress_bar(progress) as bar, ThreadPoolExecutor(max_workers=4) as pool:
        job = bar.add_task(f"eval {task.name}", total=len(problems), completed=n_done(problems))
        for chunk, (lo, hi) in todo:
            before = n_done(chunk)
            rows = _generate_unit(generator, task, chunk, lo, hi, have, prompt_format, params, pool)
            append_jsonl(samples_path, rows)
            for r in rows:
                have.setdefault(r["problem_id"], {})[r["sample_index"]] = r
            bar.advance(job, n_done(chunk) - before)
            state["wall_s_partial"] = state["wall_s"] + time.perf_counter() - start
            atomic_write_json(out / "state.json", state)
    state["wall_s"] += time.perf_counter() - start
    state.pop("wall_s_partial", None)
    atomic_write_json(out / "state.json", state)
    wanted = [[have[p.id][i] for i in range(params.n)] for p in problems]
    summary = summarize(wanted, params.n, is_equivalent)
    summary = {"task": task.name, "model": model_name, "n": params.n, **summary,
               "wall_s": round(state["wall_s"], 2), "prompt_format": prompt_format,
               "temperature": params.temperature, "top_p": params.top_p,
               "max_new_tokens": params.max_new_tokens, "seed": params.seed}
    atomic_write_json(out / "summary.json", summary)
    return summary


def _generate_unit(generator, task, chunk: list[Problem], lo: int, hi: int, have: Samples,
                   prompt_format: str, params: SamplingParams, pool) -> list[dict]:
    """Samples [lo, hi) of every problem in ``chunk``, in one generate call with the unit's own
    seed; returns rows only for the indices not already on disk."""
    prompts = [prompt_formats.build(p, prompt_format) for p in chunk]
    outputs = generator.generate(prompts, replace(params, n=hi - lo, seed=block_seed(params.seed, lo)))
    rows = []
    for problem, prompt, completions in zip(chunk, prompts, outputs):
        prefix = prompt_formats.response_prefix(prompt)
        first = max(lo, _prefix(have, problem.id))
        wanted = [(lo + j, c) for j, c in enumerate(completions) if lo + j >= first]
        scores = list(pool.map(lambda item, p=problem: task.score(p, prefix + item[1].text), wanted))
        for (index, c), s in zip(wanted, scores):
            rows.append({
                "problem_id": problem.id, "sample_index": index, "prompt": prompt,
                "completion": prefix + c.text, "extracted": s.extracted, "correct": s.correct,
                "reference": problem.answer, "tokens": c.num_tokens,
                "prompt_tokens": len(c.prompt_token_ids) or None, "finish_reason": c.finish_reason,
            })
    return rows


UNIT_ROWS = 64  # rows per generate call the default chunk aims at


def unit_problems(n: int) -> int:
    """Problems per unit for ``n`` samples each: about ``UNIT_ROWS`` rows, never fewer than 8
    problems (the unit of runs made before this default)."""
    return max(8, UNIT_ROWS // max(1, n))


def run_settings(task: str, model: str, prompt_format: str, params: SamplingParams,
                 **extra: Any) -> dict[str, Any]:
    """What must match for two runs' samples to be summarised together (everything but ``n``),
    as plain JSON values so that a round trip through run.json compares equal."""
    settings = {"task": task, "model": model, "prompt_format": prompt_format,
                "temperature": params.temperature, "top_p": params.top_p,
                "max_new_tokens": params.max_new_tokens, "seed": params.seed,
                "stop": list(params.stop), **extra}
    return json.loads(json.dumps(settings))


def open_run(out_dir: str | Path, settings: dict[str, Any], n: int, chunk_problems: int | None = None) -> dict:
    """Check ``out_dir`` is writable and matches ``settings``; record them in run.json.

    Cheap and model-free, so the CLI calls it before loading anything. Raises DataError naming
    the first setting that differs, or when samples exist with no record of their settings."""
    out = check_writable_dir(out_dir)
    path = out / "run.json"
    record = read_json(path)
    samples = out / "samples.jsonl"
    has_samples = samples.exists() and samples.stat().st_size > 0
    if isinstance(record, dict) and not has_samples:
        record = None  # settings recorded but nothing made with them (a failed start): start afresh
    if not isinstance(record, dict) or "settings" not in record:
        if has_samples:
            raise DataError(f"{path}: missing or unreadable, so the settings that made {samples.name} "
                            f"are unknown; use another --out to start fresh")
        record = {"settings": settings, "n_blocks": [n], "chunk_problems": chunk_problems or unit_problems(n)}
    else:
        old = record["settings"]
        for key in list(old) + [k for k in settings if k not in old]:
            if old.get(key) != settings.get(key):
                raise DataError(f"{out} holds a run made with {key}={old.get(key)!r}, not "
                                f"{settings.get(key)!r}; rerun with the same {key} to resume or "
                                f"extend it, or use another --out to start fresh")
        if n > max(record["n_blocks"]):
            record["n_blocks"].append(n)
    atomic_write_json(path, record)
    return record


def sample_blocks(n_blocks: list[int], n: int) -> list[tuple[int, int]]:
    """Blocks of sample indices [lo, hi) from the history of n, those needed for ``n`` samples."""
    edges = [0] + sorted(set(n_blocks))
    return [(lo, hi) for lo, hi in zip(edges, edges[1:]) if lo < n]


def block_seed(seed: int | None, lo: int) -> int | None:
    """The first block keeps the user's seed; later blocks get their own, fixed, seed."""
    if seed is None or lo == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{lo}".encode()).digest()[:7], "little")


def load_samples(path: Path) -> Samples:
    """Rows on disk by problem and sample index; a torn last line is cut off the file."""
    if not path.exists():
        return {}

    def read() -> Samples:
        by_id: Samples = {}
        for _, row in read_jsonl(path, ("problem_id", "sample_index"), strict=False, allow_empty=True):
            by_id.setdefault(row["problem_id"], {}).setdefault(row["sample_index"], row)
        return by_id

    size = path.stat().st_size
    by_id = read()  # raises on damage before the last line, so the cut below is only the tail
    if truncate_torn_tail(path) != size:
        by_id = read()
    return by_id


def _prefix(have: Samples, pid: str) -> int:
    """How many samples of ``pid`` are on disk as an unbroken run of indices from 0."""
    rows, k = have.get(pid, {}), 0
    while k in rows:
        k += 1
    return k


def summarize(per_problem: list[list[dict]], n: int, equiv) -> dict[str, Any]:
    """Metrics over problems; each inner list holds one problem's n sample rows.

    ``format_rate``: the R1 tag layout alone (``r1_format_ok``); ``nonempty_think_rate``: the
    layout with real thinking (``well_formed``, what the ``format`` reward pays)."""
    if not per_problem:
        return {"problems": 0, "metrics": {}, "tokens_generated": 0}
    p1, pk, mk, fmt, think, unjudged, tokens = [], [], [], [], [], 0, 0
    for rows in per_problem:
        rows = sorted(rows, key=lambda r: r["sample_index"])[:n]
        correct = [r["correct"] is True for r in rows]
        unjudged += sum(r["correct"] is None for r in rows)
        c = sum(correct)
        p1.append(pass_at_k(n, c, 1))
        pk.append(pass_at_k(n, c, n))
        mk.append(maj_at_k([r["extracted"] for r in rows], correct, n, equiv))
        fmt.extend(r1_format_ok(r["completion"]) for r in rows)
        think.extend(well_formed(r["completion"]) for r in rows)
        tokens += sum(r["tokens"] for r in rows)
    mean = lambda xs: round(sum(xs) / len(xs), 4)  # noqa: E731
    metrics = {"pass@1": mean(p1), f"pass@{n}": mean(pk), f"maj@{n}": mean(mk),
               "format_rate": mean(fmt), "nonempty_think_rate": mean(think)}
    intervals = metric_intervals({"pass@1": p1, f"pass@{n}": pk, f"maj@{n}": mk})
    return {"problems": len(per_problem), "metrics": metrics, "intervals": intervals, "tokens_generated": tokens,
            "unjudged_samples": unjudged,
            "mean_completion_tokens": round(tokens / max(1, len(per_problem) * n), 1)}

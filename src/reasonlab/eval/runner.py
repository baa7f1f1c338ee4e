"""The evaluation runner: problems -> prompts -> backend -> verifier -> samples.jsonl + summary.json.

Resumable: samples of a problem are appended together once all n are judged, so after a crash
``samples.jsonl`` holds whole problems (a torn last line is dropped) and a re-run with the same
``out_dir`` skips them. ``wall_s`` in the summary adds up the time of every run that contributed.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reasonlab import prompts as prompt_formats
from reasonlab.eval.metrics import maj_at_k, pass_at_k, r1_format_ok
from reasonlab.eval.progress import progress_bar
from reasonlab.types import Problem, SamplingParams


def evaluate(generator, task, problems: list[Problem], *, prompt_format: str,
             params: SamplingParams, out_dir: str | Path, model_name: str = "",
             chunk_problems: int = 8, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``problems`` with ``params.n`` samples each; returns the summary dict."""
    from reasonlab.verify import is_equivalent

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples_path = out / "samples.jsonl"
    done = load_done(samples_path, params.n)
    todo = [p for p in problems if p.id not in done]
    state = _read_json(out / "state.json") or {"wall_s": 0.0}
    start = time.perf_counter()
    with progress_bar(progress) as bar, ThreadPoolExecutor(max_workers=4) as pool:
        job = bar.add_task(f"eval {task.name}", total=len(problems), completed=len(problems) - len(todo))
        for i in range(0, len(todo), chunk_problems):
            chunk = todo[i:i + chunk_problems]
            prompts = [prompt_formats.build(p, prompt_format) for p in chunk]
            outputs = generator.generate(prompts, params)
            rows = []
            for problem, prompt, completions in zip(chunk, prompts, outputs):
                prefix = prompt_formats.response_prefix(prompt)
                scores = list(pool.map(lambda c, p=problem: task.score(p, prefix + c.text), completions))
                for j, (c, s) in enumerate(zip(completions, scores)):
                    rows.append({
                        "problem_id": problem.id, "sample_index": j, "prompt": prompt,
                        "completion": prefix + c.text, "extracted": s.extracted, "correct": s.correct,
                        "reference": problem.answer, "tokens": c.num_tokens,
                        "finish_reason": c.finish_reason,
                    })
            with samples_path.open("a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
            for r in rows:
                done.setdefault(r["problem_id"], []).append(r)
            bar.advance(job, len(chunk))
            state["wall_s_partial"] = state["wall_s"] + time.perf_counter() - start
            _write_json(out / "state.json", state)
    state["wall_s"] += time.perf_counter() - start
    state.pop("wall_s_partial", None)
    _write_json(out / "state.json", state)
    wanted = [done[p.id] for p in problems]
    summary = summarize(wanted, params.n, is_equivalent)
    summary = {"task": task.name, "model": model_name, "n": params.n, **summary,
               "wall_s": round(state["wall_s"], 2), "prompt_format": prompt_format,
               "temperature": params.temperature, "max_new_tokens": params.max_new_tokens}
    _write_json(out / "summary.json", summary)
    return summary


def summarize(per_problem: list[list[dict]], n: int, equiv) -> dict[str, Any]:
    """Metrics over problems; each inner list holds one problem's n sample rows."""
    if not per_problem:
        return {"problems": 0, "metrics": {}, "tokens_generated": 0}
    p1, pk, mk, fmt, unjudged, tokens = [], [], [], [], 0, 0
    for rows in per_problem:
        rows = sorted(rows, key=lambda r: r["sample_index"])[:n]
        correct = [r["correct"] is True for r in rows]
        unjudged += sum(r["correct"] is None for r in rows)
        c = sum(correct)
        p1.append(pass_at_k(n, c, 1))
        pk.append(pass_at_k(n, c, n))
        mk.append(maj_at_k([r["extracted"] for r in rows], correct, n, equiv))
        fmt.extend(r1_format_ok(r["completion"]) for r in rows)
        tokens += sum(r["tokens"] for r in rows)
    mean = lambda xs: round(sum(xs) / len(xs), 4)  # noqa: E731
    metrics = {"pass@1": mean(p1), f"pass@{n}": mean(pk), f"maj@{n}": mean(mk),
               "format_rate": mean(fmt)}
    return {"problems": len(per_problem), "metrics": metrics, "tokens_generated": tokens,
            "unjudged_samples": unjudged,
            "mean_completion_tokens": round(tokens / max(1, len(per_problem) * n), 1)}


def load_done(path: Path, n: int) -> dict[str, list[dict]]:
    """Rows of problems that have all n samples; a torn last line (crash mid-write) is cut off."""
    if not path.exists():
        return {}
    by_id: dict[str, list[dict]] = {}
    good_bytes = 0
    with path.open("rb") as f:
        for raw in f:
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                break
            if not raw.endswith(b"\n"):
                break
            good_bytes += len(raw)
            by_id.setdefault(row["problem_id"], []).append(row)
    if good_bytes != path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(good_bytes)
    complete = {pid: rows for pid, rows in by_id.items() if len(rows) >= n}
    if len(complete) != len(by_id):  # drop partial problems so they are redone cleanly
        with path.open("w") as f:
            for rows in complete.values():
                f.write("".join(json.dumps(r) + "\n" for r in rows))
    return complete


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)

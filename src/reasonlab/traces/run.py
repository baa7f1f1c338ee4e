"""One ``reasonlab generate`` run: sample what is missing, then rebuild every output file.

``run`` takes built parts (task, backend, configs), so the CLI only wires and tests can call it
with any backend. ``config.json`` records the run's settings; ``stats.json`` adds the backend's
request counters (retries, 429s, timeouts, malformed answers) when it keeps them, summed over
every run into the same directory in ``requests.json``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from reasonlab import prompts as prompt_formats
from reasonlab.io import atomic_write_json, check_writable_dir, read_json
from reasonlab.traces import pipeline
from reasonlab.traces.filters import FilterConfig
from reasonlab.traces.generate import SamplingSettings, existing, prompt_sha, sample_raw
from reasonlab.traces.select import SelectConfig


def run(task, backend, problems, settings: SamplingSettings, n: int, out: str | Path, *,
        filters: FilterConfig = FilterConfig(), selection: SelectConfig = SelectConfig(),
        judge_backend=None, batch: int = 8, workers: int = 1, progress: bool = True,
        decontaminator=None) -> dict:
    out = check_writable_dir(out)
    start = time.perf_counter()
    prompts = {p.id: prompt_formats.build(p, settings.prompt) for p in problems}
    atomic_write_json(out / "config.json", {"task": task.name, "n": n, "problems": len(problems),
                                            "sampling": asdict(settings), "key": settings.key(),
                                            "filters": asdict(filters), "selection": asdict(selection)})
    before = Counter(getattr(backend, "stats", {}))
    try:
        counts = sample_raw(backend, problems, prompts, settings, n, out / "raw.jsonl", batch=batch,
                            workers=workers, progress=progress)
    finally:
        _add_requests(out, Counter(getattr(backend, "stats", {})) - before)
    raw = existing(out / "raw.jsonl", settings.key(), {pid: prompt_sha(m) for pid, m in prompts.items()})
    provenance = {"teacher": settings.teacher, "task": task.name,
                  "sampling": {**asdict(settings), "stop": list(settings.stop), "n": n}}
    stats = pipeline.build(task, problems, prompts, raw, n, out, provenance, filters, selection,
                           judge_backend, decontaminator)
    stats["this_run"] = {**counts, "wall_s": round(time.perf_counter() - start, 2)}
    stats["requests"] = read_json(out / "requests.json") or {}
    atomic_write_json(out / "stats.json", {**stats, "provenance": provenance})
    return stats


def _add_requests(out: Path, delta: Counter) -> None:
    total = Counter(read_json(out / "requests.json") or {})
    total.update(delta)
    atomic_write_json(out / "requests.json", dict(total))


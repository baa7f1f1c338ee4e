"""The resumable sampling loop: every problem gets ``n`` raw samples in ``raw.jsonl``.

Resume is keyed on (problem, sampling settings): each raw row carries ``key`` (a hash of the
teacher and every sampling setting) and ``prompt_sha`` (a hash of the exact prompt messages, so
a changed question or prompt format never reuses old samples). On start the log's torn tail (a
kill mid-write) is cut off, samples already there under the same key are counted, and only the
missing ones are requested; raising ``--n`` later tops problems up. Rows are appended as each
backend call returns (one call = ``batch`` problems; ``workers`` calls in flight), so a kill
loses at most the calls in flight. Other keys' rows stay in the log untouched.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from reasonlab.eval.progress import progress_bar
from reasonlab.io import append_jsonl, read_jsonl_rows, truncate_torn_tail
from reasonlab.types import Messages, Problem, SamplingParams


@dataclass(frozen=True)
class SamplingSettings:
    """Everything that changes what a sample could be; hashed into the resume key."""

    teacher: str
    prompt: str = "r1"
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 1024
    stop: tuple[str, ...] = ()
    seed: int | None = 0

    def key(self) -> str:
        return _sha(asdict(self))

    def params(self, n: int, seed: int | None) -> SamplingParams:
        return SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=self.max_new_tokens, stop=self.stop, seed=seed)


class GenerationError(RuntimeError):
    """A backend call failed for good (after its retries); what was already sampled is kept."""


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def prompt_sha(prompt: Messages) -> str:
    return _sha(prompt)


def existing(raw_path: Path, key: str, shas: dict[str, str]) -> dict[str, list[dict]]:
    """Raw rows under ``key`` whose prompt is still the problem's prompt, by problem id."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for r in read_jsonl_rows(raw_path):
        if r.get("key") == key and shas.get(r.get("problem_id")) == r.get("prompt_sha"):
            rows[r["problem_id"]].append(r)
    return rows


def sample_raw(backend, problems: list[Problem], prompts: dict[str, Messages], settings: SamplingSettings,
               n: int, raw_path: Path, batch: int = 8, workers: int = 1, progress: bool = True) -> dict:
    """Fill ``raw_path`` up to ``n`` samples per problem; returns counts for the stats."""
    key = settings.key()
    shas = {pid: prompt_sha(m) for pid, m in prompts.items()}
    truncate_torn_tail(raw_path)
    have = {pid: len(rows) for pid, rows in existing(raw_path, key, shas).items()}
    by_need: dict[int, list[Problem]] = defaultdict(list)
    for p in problems:
        if have.get(p.id, 0) < n:
            by_need[n - have.get(p.id, 0)].append(p)
    jobs = [(need, group[i:i + batch]) for need, group in sorted(by_need.items())
            for i in range(0, len(group), batch)]
    requested = sum(len(g) for _, g in jobs)
    counts = {"requested_problems": requested, "reused_problems": len(problems) - requested,
              "samples_requested": 0}

    def call(need: int, chunk: list[Problem]):
        seed = None if settings.seed is None else int(_sha([settings.seed, chunk[0].id, have.get(chunk[0].id, 0)]), 16) % 2**31
        return backend.generate([prompts[p.id] for p in chunk], settings.params(need, seed))

    with progress_bar(progress) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("generate", total=len(problems), completed=counts["reused_problems"])
        futures = {pool.submit(call, need, chunk): chunk for need, chunk in jobs}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    chunk = futures[fut]
                    rows = _rows(chunk, fut.result(), key, shas, have)
                    append_jsonl(raw_path, rows)
                    counts["samples_requested"] += len(rows)
                    bar.advance(task, len(chunk))
        except Exception as exc:
            for fut in pending:
                fut.cancel()
            left = sum(len(futures[f]) for f in pending)
            raise GenerationError(f"{type(exc).__name__}: {exc} ({left} problem(s) not sampled; "
                                  f"rerun the same command to resume)") from exc
    return counts


def _rows(chunk: list[Problem], outputs, key: str, shas: dict[str, str], have: dict[str, int]) -> list[dict]:
    rows = []
    for problem, completions in zip(chunk, outputs):
        start = have.get(problem.id, 0)
        for j, c in enumerate(completions):
            rows.append({"key": key, "problem_id": problem.id, "prompt_sha": shas[problem.id],
                         "sample_index": start + j, "text": c.text,
                         "reasoning": getattr(c, "reasoning", None), "finish_reason": c.finish_reason,
                         "tokens": c.num_tokens, "prompt_tokens": len(c.prompt_token_ids) or None})
    return rows

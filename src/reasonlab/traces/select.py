"""Per-problem pass rate and s1-style subset selection (Muennighoff et al. 2025, "s1: Simple
test-time scaling", §2: quality -> difficulty -> diversity).

- Pass rate of a problem: correct samples / samples drawn (a truncated sample counts as not
  correct: the teacher did not solve it within the budget). It measures difficulty for *this*
  teacher, as s1 used its models' accuracy.
- Difficulty band: only problems with ``lo <= pass rate <= hi`` are eligible (e.g. ``0,0.5``
  keeps problems the teacher solves at most half the time). Problems without a kept trace are
  never eligible.
- Diversity and length: s1 repeatedly picks a domain uniformly at random, then a problem of that
  domain favouring longer reasoning traces. We do the same with a problem's weight =
  (mean tokens of its kept traces) ** ``length_power`` (0 = uniform; the exact weighting is ours).
  The category is the problem's ``meta`` field ``category``, ``subject`` or ``type``, else the
  task name. Seeded: the same inputs and seed select the same subset.
- ``max_per_problem`` caps the traces kept per problem (0 = all), chosen at random by the seed.

The same band picks RL prompts (``keep_in_band``, GRPO's ``difficulty``): pass rates measured on
the policy itself (``problems.jsonl`` of ``reasonlab generate --n K``) keep the prompts it
sometimes solves, the ones whose groups carry signal (DAPO drops the rest after sampling them).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from reasonlab.errors import DataError
from reasonlab.io import read_jsonl
from reasonlab.types import Problem

CATEGORY_FIELDS = ("category", "subject", "type")


@dataclass(frozen=True)
class SelectConfig:
    select: int | None = None  # problems to select; None = every eligible problem
    band: tuple[float, float] = (0.0, 1.0)
    length_power: float = 1.0
    max_per_problem: int = 0
    seed: int = 0


def category(problem: Problem, task_name: str) -> str:
    for name in CATEGORY_FIELDS:
        if problem.meta.get(name):
            return str(problem.meta[name])
    return task_name


def valid_band(band) -> bool:
    """A band is (LO, HI) with 0 <= LO <= HI <= 1."""
    return len(band) == 2 and 0 <= band[0] <= band[1] <= 1


def in_band(rate: float, band: tuple[float, float]) -> bool:
    """Whether a pass rate lies in ``band``, inclusive: the one rule for traces and RL prompts."""
    return band[0] <= rate <= band[1]


def select(problems: list[Problem], pass_rate: dict[str, float], kept: dict[str, list[dict]],
           cfg: SelectConfig, task_name: str) -> list[dict]:
    """The selected kept traces (dicts with ``tokens`` and ``sample_index``), in problem order."""
    eligible = [p for p in problems if kept.get(p.id) and in_band(pass_rate.get(p.id, 0.0), cfg.band)]
    rng = random.Random(cfg.seed)
    if cfg.select is not None and cfg.select < len(eligible):
        by_cat: dict[str, list[Problem]] = defaultdict(list)
        for p in eligible:
            by_cat[category(p, task_name)].append(p)
        chosen: set[str] = set()
        while len(chosen) < cfg.select:
            cat = rng.choice(sorted(c for c, ps in by_cat.items() if ps))
            pool = by_cat[cat]
            weights = [_mean_tokens(kept[p.id]) ** cfg.length_power for p in pool]
            pick = rng.choices(range(len(pool)), weights=weights)[0]
            chosen.add(pool.pop(pick).id)
        eligible = [p for p in eligible if p.id in chosen]
    out = []
    for p in eligible:
        rows = kept[p.id]
        if cfg.max_per_problem and len(rows) > cfg.max_per_problem:
            rows = sorted(rng.sample(rows, cfg.max_per_problem), key=lambda r: r["sample_index"])
        out.extend(rows)
    return out


def _mean_tokens(rows: list[dict]) -> float:
    return max(1.0, sum(r["tokens"] for r in rows) / len(rows))


def read_pass_rates(path) -> dict[str, float]:
    """``problem_id -> pass_rate`` from a ``problems.jsonl`` that ``reasonlab generate`` wrote."""
    rates = {}
    for lineno, row in read_jsonl(path, ("problem_id", "pass_rate")):
        rate = row["pass_rate"]
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise DataError(f"{path}:{lineno}: pass_rate must be a number in [0, 1], got {rate!r}")
        rates[str(row["problem_id"])] = float(rate)
    return rates


def keep_in_band(problems: list[Problem], path, band: tuple[float, float]) -> list[Problem]:
    """The problems whose measured pass rate (``path``: a ``problems.jsonl``) lies in ``band``,
    inclusive, in their order; a problem the file does not measure is dropped."""
    rates = read_pass_rates(path)
    kept = [p for p in problems if p.id in rates and in_band(rates[p.id], band)]
    if not kept:
        measured = sum(p.id in rates for p in problems)
        raise DataError(f"{path}: no problem has a pass rate in [{band[0]}, {band[1]}] ({measured} of "
                        f"{len(problems)} problems measured; are they from the same task and split?)")
    return kept

"""Code reward: run the completion's code against the problem's tests in the sandbox
(the R1 "compiler" reward for coding). ``mode``: fraction of tests passed, or all-or-nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from reasonlab.rewards.base import REWARDS
from reasonlab.types import Sample
from reasonlab.verify.code import fraction_passed


@REWARDS.register("code")
def code(samples: list[Sample], mode: str = "fraction", timeout_s: float = 5.0, workers: int = 4,
         **_) -> list[float | None]:
    if mode not in ("fraction", "all"):
        raise ValueError(f"code reward: mode must be 'fraction' or 'all', not {mode!r}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: fraction_passed(s.problem, s.text, mode=mode, timeout_s=timeout_s),
                             samples))

"""Procedural arithmetic: "What is a + b?" — the R1-Zero starting point for tiny models.

Train and test come from different seeds and test questions are removed from train, so held-out
accuracy measures generalisation, not memory. ``max_number`` is the difficulty knob.
"""

from __future__ import annotations

import random

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem

SPLIT_SIZES = {"train": 10_000, "test": 500}


def _draw(rng: random.Random, max_number: int, ops: str) -> tuple[str, int]:
    a, b = rng.randint(0, max_number), rng.randint(0, max_number)
    op = rng.choice(ops)
    return f"What is {a} {op} {b}?", a + b if op == "+" else a - b


def generate(split: str, max_number: int = 20, seed: int = 0, ops: str = "+-",
             size: int | None = None) -> list[Problem]:
    if split not in SPLIT_SIZES:
        raise DataError(f"arith has splits {', '.join(SPLIT_SIZES)}, not {split!r}")
    size = size or SPLIT_SIZES[split]
    test_rng = random.Random(f"arith-test-{seed}-{max_number}-{ops}")
    test = [_draw(test_rng, max_number, ops) for _ in range(SPLIT_SIZES["test"])]
    if split == "test":
        pairs = test[:size]
    else:
        held_out = {q for q, _ in test}
        rng = random.Random(f"arith-train-{seed}-{max_number}-{ops}")
        pairs = []
        tries = 0
        while len(pairs) < size and tries < size * 50:
            tries += 1
            q, a = _draw(rng, max_number, ops)
            if q not in held_out:
                pairs.append((q, a))
    return [Problem(id=f"arith/{split}/{i}", question=q, answer=str(a),
                    meta={"max_number": max_number}) for i, (q, a) in enumerate(pairs)]


@TASKS.register("arith")
def arith(max_number: int = 20, seed: int = 0, ops: str = "+-") -> ListTask:
    if max_number < 1:
        raise DataError(f"arith: max_number must be >= 1, got {max_number}")
    if not ops or set(ops) - set("+-"):
        raise DataError(f"arith: ops must use '+' and '-', got {ops!r}")
    return ListTask("arith", lambda split: generate(split, max_number, seed, ops))

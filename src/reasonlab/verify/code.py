"""Checking model-written code by running it against tests, always inside the sandbox.

Problem formats (in ``problem.meta``):
- HumanEval style: ``prompt`` (signature + docstring), ``test`` (defines ``check(candidate)``),
  ``entry_point``. All-or-nothing: the ``check`` function stops at the first failing assert.
- ``tests``: a list of assert statements; each runs in its own try block, so the fraction passed
  is known from one execution.
- ``io``: a list of ``{"input", "output"}`` cases for a stdin/stdout program; one execution each.
Code is the last fenced block of the completion (```python or ```), else the whole completion
(a HumanEval-style continuation of the prompt). If the code does not define the entry point,
the prompt is put in front of it.
"""

from __future__ import annotations

import re

from reasonlab.sandbox import execute, execute_many
from reasonlab.types import Problem

_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
_MARK = "__REASONLAB_PASSED__"


def extract_code(text: str) -> str:
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else text


def program_for(problem: Problem, completion: str) -> str:
    code = extract_code(completion)
    meta = problem.meta
    entry = meta.get("entry_point")
    if entry and meta.get("prompt") and not re.search(rf"def\s+{re.escape(entry)}\s*\(", code):
        code = meta["prompt"] + code
    return code


def fraction_passed(problem: Problem, completion: str, *, mode: str = "fraction",
                    timeout_s: float = 5.0) -> float | None:
    """Share of the problem's tests the completion passes (all-or-nothing if ``mode == "all"``);
    None when the problem has no tests."""
    meta = problem.meta
    code = program_for(problem, completion)
    if "test" in meta and "entry_point" in meta:
        r = execute(f"{code}\n\n{meta['test']}\n\ncheck({meta['entry_point']})\n", timeout_s=timeout_s)
        return 1.0 if r.status == "ok" else 0.0
    if meta.get("tests"):
        tests = list(meta["tests"])
        body = "\n".join(f"try:\n    exec({t!r}, globals())\n    _n += 1\nexcept BaseException:\n    pass"
                         for t in tests)
        r = execute(f"{code}\n\n_n = 0\n{body}\nprint('{_MARK}', _n)\n", timeout_s=timeout_s)
        m = re.search(rf"{_MARK} (\d+)", r.stdout)
        share = int(m.group(1)) / len(tests) if m else 0.0
    elif meta.get("io"):
        cases = meta["io"]
        results = execute_many([code] * len(cases), stdins=[c["input"] for c in cases], timeout_s=timeout_s)
        ok = sum(r.status == "ok" and r.stdout.strip() == str(c["output"]).strip() for r, c in zip(results, cases))
        share = ok / len(cases)
    else:
        return None
    return share if mode == "fraction" else float(share == 1.0)

import pytest

from reasonlab.rewards import REWARDS
from reasonlab.tasks.base import get_task
from reasonlab.types import Completion, Problem, Sample
from reasonlab.verify.code import extract_code


def sample(problem, text):
    return Sample(problem, [], Completion(text))


ADD = Problem("p", "write add", "", meta={"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0",
                                                    "assert add(2, 2) == 5"]})
IO = Problem("q", "echo double", "", meta={"io": [{"input": "2\n", "output": "4"}, {"input": "5\n", "output": "10"}]})


def test_extract_code_takes_last_fence():
    assert extract_code("a\n```python\nx=1\n```\nb\n```\ny=2\n```") == "y=2\n"
    assert extract_code("def f(): pass") == "def f(): pass"


def test_code_reward_fraction_and_all():
    good = "Here:\n```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return 5 if a == 2 else a * b\n```"
    hostile = "```python\nimport os\nos.system('touch /tmp/reasonlab-pwned')\nwhile True: pass\n```"
    r = REWARDS.get("code")([sample(ADD, good), sample(ADD, bad), sample(ADD, "no code"),
                             sample(ADD, hostile)], timeout_s=1.0)
    assert r == [pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0, 0.0]
    assert REWARDS.get("code")([sample(ADD, good)], mode="all") == [0.0]


def test_code_reward_stdin_stdout_cases():
    prog = "```python\nprint(int(input()) * 2)\n```"
    assert REWARDS.get("code")([sample(IO, prog), sample(IO, "```python\nprint(4)\n```")]) == [1.0, 0.5]


def test_humaneval_task_scores_canonical_solutions_in_sandbox():
    task = get_task("humaneval")
    problems = task.load("test", 3)
    assert [p.id for p in problems] == ["humaneval/0", "humaneval/1", "humaneval/2"]
    for p in problems:
        assert task.score(p, p.answer).correct is True  # continuation of the prompt
        full = f"```python\n{p.meta['prompt']}{p.answer}```"
        assert task.score(p, full).correct is True
        assert task.score(p, "```python\ndef nothing(): pass\n```").correct is False

"""Generate-and-verify: countdown's and HumanEval's self_check, and the verifier scorer in search."""

import pytest

from reasonlab.search import SearchConfig, get_strategy
from reasonlab.search.runner import run_scale
from reasonlab.search.self_check import FAIL, PASS, UNKNOWN, SelfCheckScorer
from reasonlab.tasks.base import get_task
from reasonlab.tasks.errors import DataError
from reasonlab.types import Completion, Problem


class PerProblem:
    """A scripted backend: sample i of the problem whose question contains key q is ``table[q][i]``."""

    name = "per-problem"

    def __init__(self, table):
        self.table, self.calls = table, 0

    def generate(self, prompts, params):
        self.calls += 1
        out = []
        for m in prompts:
            texts = next(v for q, v in self.table.items() if q in m[-1]["content"])
            out.append([Completion(texts[i % len(texts)], (1,) * 5) for i in range(params.n)])
        return out

    def sync_weights(self):
        pass


@pytest.fixture(scope="module")
def countdown():
    task = get_task("countdown", size=8)
    return task, task.load("test")


def test_countdown_self_check_uses_the_numbers_and_target_not_the_reference(countdown):
    from reasonlab.tasks.countdown import self_check

    task, problems = countdown
    p = problems[0]
    nums, target = p.meta["entry"]["metadata"]["numbers"], p.meta["entry"]["metadata"]["target"]
    for q in problems:  # every reference solution checks out, and agrees with the task's scorer
        ref = f"<answer>{q.meta['entry']['answer']}</answer>"
        assert self_check(q, ref) is True and task.score(q, ref).correct
    blind = Problem(p.id, p.question, "", {"entry": {"metadata": {"numbers": nums, "target": target}}})
    assert self_check(blind, f"<answer>{p.meta['entry']['answer']}</answer>") is True  # no reference needed
    assert self_check(blind, f"<answer>{target}</answer>") is False  # numbers not used
    assert self_check(blind, f"<answer>{' + '.join(map(str, nums))}</answer>") is (sum(nums) == target)
    assert self_check(blind, f"<answer>{' + '.join(map(str, nums + nums[:1]))}</answer>") is False  # reused
    assert self_check(blind, "<answer>9**9**9**9</answer>") is False  # never evaluated
    assert self_check(blind, f"<answer>{nums[0]} / 0</answer>") is False
    assert self_check(blind, "no answer at all") is False
    assert self_check(Problem("x", "q", "1"), "<answer>1</answer>") is None  # nothing stated to check


def test_verifier_best_of_n_keeps_the_checked_sample_where_vote_follows_the_crowd(countdown):
    task, problems = countdown
    p = problems[0]
    nums = p.meta["entry"]["metadata"]["numbers"]
    wrong = f"<answer>{' * '.join(map(str, nums))}</answer>"
    right = f"<answer>{p.meta['entry']['answer']}</answer>"
    backend = PerProblem({p.question[:40]: [wrong, "<answer>7</answer>", wrong, right]})
    cfg = SearchConfig(n=4, prompt="plain")
    scorer = SelfCheckScorer.for_task(task)
    assert scorer.score([p] * 3, [wrong, right, "nothing"]) == [FAIL, PASS, FAIL]
    voted = get_strategy("vote")([p], backend, None, cfg)[0]
    best = get_strategy("best_of_n")([p], backend, scorer, cfg)[0]
    weighted = get_strategy("weighted_vote")([p], backend, scorer, cfg)[0]
    assert not task.score(p, voted.text).correct
    assert best.text == right and task.score(p, best.text).correct
    assert task.score(p, weighted.text).correct
    assert get_strategy("best_of_n")([p], backend, scorer, SearchConfig(n=2, prompt="plain"))[0].text == wrong


def test_verifier_scorer_in_a_scale_run_reaches_pass_at_n(countdown, tmp_path):
    task, problems = countdown
    table = {}
    for k, p in enumerate(problems):  # problem k: only sample k % 4 is right
        nums = p.meta["entry"]["metadata"]["numbers"]
        texts = [f"<answer>{' - '.join(map(str, nums))}</answer>"] * 4
        texts[k % 4] = f"<answer>{p.meta['entry']['answer']}</answer>"
        table[p.question[:40]] = texts
    scorer = SelfCheckScorer.for_task(task)
    summary = run_scale(problems, task, PerProblem(table), scorer, ["vote", "best_of_n"], [1, 4],
                        SearchConfig(prompt="plain"), tmp_path, progress=False)
    best = {r["n"]: r for r in summary["strategies"]["best_of_n"]}
    assert best[4]["accuracy"] == best[4]["pass@n"] == 1.0 and best[1]["accuracy"] == 0.25
    assert best[4]["gain"] == 0.75 and best[4]["gain_ci"][0] > 0
    assert summary["strategies"]["vote"][1]["accuracy"] < 1.0
    assert len(scorer.cache) == len({(p.id, t) for p in problems for t in table[p.question[:40]]})


def test_verifier_needs_a_task_that_can_check_itself():
    with pytest.raises(DataError, match="cannot check its own answers"):
        SelfCheckScorer.for_task(get_task("arith"))

    def crashes(problem, text):
        raise RuntimeError("boom")

    assert SelfCheckScorer(crashes).score([Problem("x", "q", "1")], ["t"]) == [UNKNOWN]


@pytest.fixture(scope="module")
def humaneval():
    task = get_task("humaneval")
    by_id = {p.id: p for p in task.load("test")}
    return task, by_id


def test_humaneval_visible_tests_from_doctests_and_prose(humaneval):
    from reasonlab.tasks.humaneval import visible_tests

    _, by_id = humaneval
    p0, p72, p67 = by_id["humaneval/0"], by_id["humaneval/72"], by_id["humaneval/67"]
    assert visible_tests(p0.meta["prompt"], p0.meta["entry_point"]) == (
        "assert (has_close_elements([1.0, 2.0, 3.0], 0.5)) == (False)",
        "assert (has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)) == (True)")
    assert "assert (will_it_fly([3, 2, 3], 9)) == (True)" in visible_tests(p72.meta["prompt"], "will_it_fly")
    assert visible_tests(p67.meta["prompt"], "fruit_distribution") == ()  # "-> 19 - 5 - 6 = 8": skipped
    assert visible_tests("def f(x):\n    '''f(1) = 3 defines it; f(2) => true'''\n", "f") == ()
    malformed = 'def f(x):\n    """\n    >>> f(1)\n  2\n    f(3) == 4\n    """\n'  # doctest raises on it
    assert visible_tests(malformed, "f") == ("assert (f(3)) == (4)",)


def test_humaneval_generate_and_verify_in_the_sandbox(humaneval):
    from reasonlab.tasks.humaneval import self_check

    task, by_id = humaneval
    p = by_id["humaneval/0"]
    right = f"```python\n{p.meta['prompt']}{p.answer}```"
    wrong = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"
    # passes both visible examples by memorising them; the hidden tests catch it
    memorised = ("```python\ndef has_close_elements(numbers, threshold):\n"
                 "    return numbers == [1.0, 2.8, 3.0, 4.0, 5.0, 2.0]\n```")
    assert self_check(p, right) is True and self_check(p, wrong) is False and self_check(p, memorised) is True
    assert task.score(p, memorised).correct is False and task.score(p, right).correct is True

    p2 = by_id["humaneval/2"]  # float output: compared with a tolerance
    assert self_check(p2, "```python\ndef truncate_number(number):\n    return number - int(number)\n```") is True
    assert self_check(by_id["humaneval/38"], "anything") is None  # no literal examples: cannot judge

    backend = PerProblem({"def has_close_elements": [wrong, right, wrong],
                          "def truncate_number": ["no code", "x = ", "1/0"]})
    results = get_strategy("best_of_n")([p, p2], backend, SelfCheckScorer.for_task(task),
                                        SearchConfig(n=3, prompt="plain"))
    assert results[0].text == right and task.score(p, results[0].text).correct
    assert results[1].text == "no code"  # nothing passes: the first sample, as with one sample


def test_scale_command_verifier_flag_end_to_end(tmp_path):
    """``reasonlab scale --scorer verifier`` on a real (tiny, random) model directory: every point
    carries its interval and paired gain; a task that cannot check itself is refused in one line."""
    import json

    from typer.testing import CliRunner

    from reasonlab.cli.main import app
    from tiny_model_dir import save_tiny_model

    model = save_tiny_model(tmp_path / "m")
    args = ["scale", "--model", str(model), "--strategy", "vote,best_of_n", "--scorer", "verifier", "--n", "1,2",
            "--limit", "3", "--max-new-tokens", "8", "--prompt", "plain"]
    result = CliRunner().invoke(app, args + ["--task", "countdown", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["baseline"]["from"] == "vote n=2"
    for rows in summary["strategies"].values():
        assert [r["n"] for r in rows] == [1, 2]
        assert all(len(r["accuracy_ci"]) == 2 and len(r["gain_ci"]) == 2 for r in rows)
    refused = CliRunner().invoke(app, args + ["--task", "arith", "--out", str(tmp_path / "arith")])
    assert refused.exit_code == 2 and "cannot check its own answers" in refused.output


def test_verifier_progress_is_one_growing_task(countdown):
    from reasonlab.eval.progress import progress_bar

    task, problems = countdown
    scorer = SelfCheckScorer.for_task(task)
    with progress_bar(True) as bar:
        scorer.bar = bar
        for p in problems[:3]:  # strategies score one problem per call
            scorer.score([p] * 2, ["<answer>1</answer>", "<answer>2</answer>"])
        scorer.score([problems[0]], ["<answer>1</answer>"])  # cached: nothing new to check
        checks = [t for t in bar.tasks if t.description == "self-check"]
    assert len(checks) == 1 and checks[0].total == checks[0].completed == 6

"""Search strategies with scripted backends: selection logic and token accounting."""

import json

import pytest

from reasonlab.search import SearchConfig, get_strategy
from reasonlab.search.runner import PrefixCache, point_intervals, run_scale
from reasonlab.tasks.base import get_task
from reasonlab.types import Completion, Problem, SamplingParams

P = Problem("p/0", "What is 2 + 3?", "5")


class Scripted:
    """Answers i-th sample of every prompt with answers[i]; 3 tokens each."""

    name = "scripted"

    def __init__(self, answers):
        self.answers, self.calls = answers, 0

    def generate(self, prompts, params):
        self.calls += 1
        return [[Completion(f"so <answer>{self.answers[i % len(self.answers)]}</answer>", (1, 2, 3))
                 for i in range(params.n)] for _ in prompts]

    def sync_weights(self):
        pass


class ByAnswer:
    """A scorer that likes one answer."""

    def __init__(self, good):
        self.good = good

    def score(self, problems, texts, aggregation="last"):
        return [0.9 if f">{self.good}<" in t else 0.1 for t in texts]


def test_vote_and_token_accounting():
    r = get_strategy("vote")([P], Scripted(["4", "5", "5.0", "7"]), None, SearchConfig(n=4))[0]
    assert r.answer == "5" and r.tokens == 12 and len(r.candidates) == 4 and r.extra["votes"] == 2


def test_weighted_vote_and_best_of_n_follow_scorer():
    backend = Scripted(["4", "5", "5", "4", "9"])
    cfg = SearchConfig(n=5)
    assert get_strategy("vote")([P], backend, None, cfg)[0].answer == "4"  # first of the 2-2 tie
    assert get_strategy("weighted_vote")([P], backend, ByAnswer("5"), cfg)[0].answer == "5"
    assert get_strategy("best_of_n")([P], backend, ByAnswer("9"), cfg)[0].answer == "9"
    with pytest.raises(ValueError, match="needs a scorer"):
        get_strategy("best_of_n")([P], backend, None, cfg)


class StepBackend:
    """Continues a partial solution: step k writes 'step{k}' then the delimiter; after 2 steps answers."""

    name = "steps"

    def __init__(self):
        self.tokens = 0

    def generate(self, prompts, params):
        out = []
        for prompt in prompts:
            partial = prompt[-1]["content"] if prompt[-1]["role"] == "assistant" else ""
            k = partial.count("\n\n")
            texts = [f"step{k}-{i}\n\n" if k < 2 else f"<answer>{5 if i == 1 else 4}</answer>" for i in range(params.n)]
            out.append([Completion(t, (1, 1)) for t in texts])
        return out

    def sync_weights(self):
        pass


class PrefersOne:
    def score(self, problems, texts, aggregation="last"):
        return [0.9 if text.endswith("-1\n\n") or "<answer>5" in text else 0.2 for text in texts]


@pytest.mark.parametrize("name", ["beam", "dvts"])
def test_stepwise_search_expands_prunes_and_counts(name):
    cfg = SearchConfig(n=4, beam_width=2, max_steps=5, prompt="plain")
    r = get_strategy(name)([P], StepBackend(), PrefersOne(), cfg)[0]
    assert r.answer == "5"
    assert "step0-1" in r.text and "step1-1" in r.text
    assert r.tokens > 0 and len(r.candidates) >= 2


class ThinkBackend:
    """Closes </think> at once (too short), or rambles past any budget."""

    name = "think"

    def __init__(self, close):
        self.close, self.seen = close, []

    def generate(self, prompts, params):
        self.seen.append(prompts[0][-1]["content"])
        if "</answer>" in params.stop:
            return [[Completion("5</answer>", (1, 1))]]
        if self.close:
            return [[Completion("short</think>", (1, 1, 1), finish_reason="stop")]]
        return [[Completion("more " * params.max_new_tokens, tuple(range(params.max_new_tokens)), finish_reason="length")]]


def test_budget_forcing_extends_with_wait_and_caps_thinking():
    b = ThinkBackend(close=True)
    r = get_strategy("budget")([P], b, None, SearchConfig(think_budget=50, min_think=8, max_waits=2, prompt="r1"))[0]
    assert r.text.count("Wait,") == 2 and r.extra["waits"] == 2 and r.answer == "5"
    assert r.tokens == 3 * 3 + 2
    b = ThinkBackend(close=False)
    r = get_strategy("budget")([P], b, None, SearchConfig(think_budget=16, prompt="r1"))[0]
    assert r.extra["think_tokens"] == 16 and "</think>\n<answer>" in r.text and r.answer == "5"


def test_prefix_cache_serves_smaller_n_from_larger():
    backend = Scripted(["1", "2", "3", "4"])
    cache = PrefixCache(backend)
    big = cache.generate(["q"], SamplingParams(n=4, seed=1))[0]
    small = cache.generate(["q"], SamplingParams(n=2, seed=1))[0]
    assert backend.calls == 1 and small == big[:2]


def test_prefix_cache_batches_misses_across_prompts_in_full_batches():
    class Echo:
        name, max_batch = "echo", 8

        def __init__(self):
            self.sizes = []

        def generate(self, prompts, params):
            self.sizes.append(len(prompts) * params.n)
            return [[Completion(f"{p}#{i}", (1,)) for i in range(params.n)] for p in prompts]

    backend = Echo()
    cache = PrefixCache(backend, batches_per_call=2)  # 16 rows per call -> 4 prompts at n = 4
    prompts = [f"q{i}" for i in range(10)] + ["q3"]  # a repeated prompt is sampled once
    out = cache.generate(prompts, SamplingParams(n=4, seed=0))
    assert backend.sizes == [16, 16, 8]
    assert [o[0].text for o in out] == [f"q{i}#0" for i in range(10)] + ["q3#0"]
    assert cache.generate(["q5"], SamplingParams(n=2, seed=0))[0] == out[5][:2] and len(backend.sizes) == 3


def test_run_scale_writes_curve_and_plot(tmp_path):
    task = get_task("arith")
    problems = task.load("test", 3)
    answers = {p.question: p.answer for p in problems}

    class Noisy:
        name = "noisy"

        def generate(self, prompts, params):
            return [[Completion(f"<answer>{answers[m[-1]['content'].split(chr(10))[0]] if i % 4 else 99}</answer>", (1,) * 4)
                     for i in range(params.n)] for m in prompts]

        def sync_weights(self):
            pass

    summary = run_scale(problems, task, Noisy(), None, ["vote"], [1, 2, 4], SearchConfig(prompt="plain"), tmp_path)
    rows = summary["strategies"]["vote"]
    assert [r["n"] for r in rows] == [1, 2, 4]
    assert rows[0]["accuracy"] == 0.0 and rows[2]["accuracy"] == 1.0  # sample 0 is wrong, majority right
    assert [r["tokens_per_problem"] for r in rows] == [4, 8, 16]
    assert rows[2]["pass@1"] == 0.75 and rows[2]["pass@n"] == 1.0 and rows[0]["pass@n"] == 0.0
    assert (tmp_path / "scaling.png").stat().st_size > 1000 and (tmp_path / "report.html").exists()
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 9
    assert json.loads((tmp_path / "summary.json").read_text())["problems"] == 3
    assert summary["baseline"]["pass@1"] == 0.75 and summary["baseline"]["from"] == "vote n=4"
    assert rows[2]["gain"] == 0.25 and rows[0]["gain"] == -0.75 and rows[2]["gain_ci"] == [0.25, 0.25]
    assert (tmp_path / "gain.png").stat().st_size > 1000


def test_run_scale_points_carry_intervals_and_paired_gains(tmp_path):
    task = get_task("arith")
    problems = task.load("test", 12)
    answers = {p.question: p.answer for p in problems}
    index = {p.question: k for k, p in enumerate(problems)}

    class Mixed:  # problem k: sample i is right iff (i + k) % 3 == 0 -> a third right, varying per problem
        name = "mixed"

        def generate(self, prompts, params):
            out = []
            for m in prompts:
                q = m[-1]["content"].split(chr(10))[0]
                out.append([Completion(f"<answer>{answers[q] if (i + index[q]) % 3 == 0 else 1000 + i}</answer>",
                                       (1,) * 2) for i in range(params.n)])
            return out

        def sync_weights(self):
            pass

    summary = run_scale(problems, task, Mixed(), None, ["vote", "cot"], [1, 3], SearchConfig(prompt="plain"), tmp_path)
    base = summary["baseline"]
    assert base["from"] == "vote n=3" and abs(base["pass@1"] - 1 / 3) < 1e-3
    for name, rows in summary["strategies"].items():
        for r in rows:
            lo, hi = r["accuracy_ci"]
            assert lo <= r["accuracy"] <= hi and r["gain"] == round(r["accuracy"] - base["pass@1"], 4)
            assert r["gain_ci"][0] <= r["gain"] <= r["gain_ci"][1]
    one = summary["strategies"]["vote"][0]  # n = 1: sample 0, right on every third problem
    assert one["accuracy"] == round(4 / 12, 4) and one["accuracy_ci"][0] < one["accuracy"] < one["accuracy_ci"][1]


def test_point_intervals_pairs_the_gain_with_the_baseline():
    correct = [True, True, False, True, False, True, True, False] * 4
    cands = [[c, False] for c in correct]  # each problem's pass@1 is half its accuracy
    row = point_intervals(correct, cands, [sum(c) / 2 for c in cands])
    assert row["gain"] == round(0.625 - 0.3125, 4)
    assert 0 < row["gain_ci"][0] < row["gain"] < row["gain_ci"][1]
    assert row["pass@n_ci"] == row["accuracy_ci"]  # same values, same resamples
    assert "gain" not in point_intervals(correct, cands, None)

import logging

from reasonlab.rewards import REWARDS, combine
from reasonlab.rewards.judge import parse_verdict
from reasonlab.rewards.language import language_share
from reasonlab.tasks.base import get_task
from reasonlab.types import Completion, Problem, Sample


def mk(text, answer="5", pid="p", tokens=None):
    return Sample(Problem(pid, "What is 2 + 3?", answer), [], Completion(text, token_ids=tuple(range(tokens or 1))))


def test_accuracy_and_format():
    task = get_task("arith")
    s = [mk("<think>2+3</think><answer>5</answer>"), mk("<think>x</think><answer>6</answer>"),
         mk("<think>a</think><answer>5</answer><answer>5</answer>")]
    assert REWARDS.get("accuracy")(s, task=task) == [1.0, 0.0, 1.0]
    assert REWARDS.get("format")(s) == [1.0, 1.0, 0.0]  # several answer blocks: a hack, 0
    assert REWARDS.get("tag_count")([mk("<think> </think>"), mk("plain")]) == [0.5, 0.0]


def test_language_share():
    assert language_share("<think>all english words</think><answer>5</answer>") == 1.0
    mixed = language_share("<think>half 中文混合</think>", "en")
    assert 0.3 < mixed < 0.8
    assert language_share("<think>中文</think>", "zh") == 1.0
    assert language_share("<think>123 + 4</think>") is None


def test_length_reward_kimi():
    task = get_task("arith")
    s = [mk("<answer>5</answer>", tokens=10), mk("<answer>5</answer>", tokens=30), mk("<answer>4</answer>", tokens=10),
         mk("<answer>4</answer>", tokens=30)]
    assert REWARDS.get("length")(s, task=task) == [0.5, -0.5, 0.0, -0.5]


def test_judge_with_scripted_backend(scripted):
    backend = scripted(lambda prompt, i: "reasoning... VERDICT: yes" if "<answer>5" in prompt[0]["content"] else "VERDICT: no")
    out = REWARDS.get("judge")([mk("<answer>5</answer>"), mk("<answer>7</answer>")], judge_backend=backend)
    assert out == [1.0, 0.0]
    assert parse_verdict("no idea") is None and parse_verdict("Yes.") == 1.0


def test_raising_reward_scores_only_that_sample_none(caplog):
    @REWARDS.register("explodes_on_b")
    def explodes(samples, **_):
        if any("b" in s.text for s in samples):
            raise RuntimeError("boom")
        return [1.0] * len(samples)

    with caplog.at_level(logging.WARNING):
        totals, comps = combine([mk("a"), mk("b"), mk("a")], {"explodes_on_b": 1.0, "tag_count": 1.0})
    assert comps["explodes_on_b"] == [1.0, None, 1.0]
    assert totals == [1.0, None, 1.0]
    assert "boom" in caplog.text

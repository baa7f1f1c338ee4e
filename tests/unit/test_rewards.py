import logging

import pytest
import yaml

from reasonlab.config import from_dict
from reasonlab.rewards import REWARDS, combine
from reasonlab.eval.metrics import thinking_nonempty
from reasonlab.rewards.format import partial_format_score
from reasonlab.rewards.judge import parse_verdict
from reasonlab.rewards.language import chain_of_thought, language_share, word_counts
from reasonlab.tasks.base import get_task
from reasonlab.types import Completion, Problem, Sample


def mk(text, answer="5", pid="p", tokens=None):
    return Sample(Problem(pid, "What is 2 + 3?", answer), [], Completion(text, token_ids=tuple(range(tokens or 1))))


def test_accuracy_and_format():
    task = get_task("arith")
    s = [mk("<think>2+3</think><answer>5</answer>"), mk("<think>x y</think><answer>6</answer>"),
         mk("<think>a</think><answer>5</answer><answer>5</answer>")]
    assert REWARDS.get("accuracy")(s, task=task) == [1.0, 0.0, 1.0]
    assert REWARDS.get("format")(s) == [1.0, 1.0, 0.0]  # several answer blocks: a hack, 0
    assert REWARDS.get("tag_count")([mk("<think>two words</think>"), mk("plain")]) == [0.5, 0.0]


EMPTY_THINKING = ["<think>\n</think>\n<answer>5</answer>", "<think> \t\n </think><answer>5</answer>",
                  "<think>.</think><answer>5</answer>", "<think>5</think><answer>5</answer>",
                  "<think>...?!</think><answer>5</answer>"]


def test_format_rewards_pay_nothing_for_empty_thinking():
    real = [mk("<think>\n2+3=5\n</think>\n<answer>5</answer>"), mk("<think>add them</think><answer>5</answer>"),
            mk("<think>二加三</think><answer>5</answer>")]
    empty = [mk(t) for t in EMPTY_THINKING]
    assert REWARDS.get("format")(real) == [1.0, 1.0, 1.0]
    assert REWARDS.get("format")(empty) == [0.0] * len(empty)
    assert REWARDS.get("format_partial")(real) == [1.0, 1.0, 1.0]
    assert REWARDS.get("format_partial")(empty) == [0.0] * len(empty)
    # tag_count: the answer tags still pay, the think tags of an empty block do not
    assert REWARDS.get("tag_count")(empty[:1] + real[:1]) == [0.5, 1.0]
    assert partial_format_score("<think>some work</think><answer>5") == 0.5


def test_thinking_nonempty_needs_two_words():
    assert thinking_nonempty("<think>7+5=12</think><answer>12</answer>")  # three numbers
    assert thinking_nonempty("<think>add</think> <think>x</think>") is False  # first block, one word
    assert not any(thinking_nonempty(t) for t in EMPTY_THINKING)
    assert not thinking_nonempty("<think>never closed, many words here")
    assert thinking_nonempty("<think>a b</think>", min_words=3) is False


def test_an_answer_inside_the_think_block_is_not_thinking():
    """The R1-Zero demo's second shortcut: tag names are not words, so the block is empty, the
    think tags earn no tag_count credit and format fails."""
    trap = "<think>\n<answer>23</answer>\n</think>\nSo that is it."
    assert not thinking_nonempty(trap)
    assert REWARDS.get("tag_count")([mk(trap)]) == [0.5]
    assert thinking_nonempty("<think>\n20 + 3 = 23 <answer>23</answer>\n</think>")  # work beside the tags


def test_language_share_counts_words_not_letters():
    assert language_share("<think>all english words</think><answer>5</answer>") == 1.0
    # 4 CJK words (one per character) and 4 Latin words: half and half, whichever the target
    mixed = "<think>我们 need to compute 总和 first</think><answer>5</answer>"
    assert word_counts(chain_of_thought(mixed)) == {"cjk": 4, "latin": 4, "other": 0}
    assert language_share(mixed, "en") == 0.5 and language_share(mixed, "zh") == 0.5
    # by letters this would be 20/21 English; by words it is one word of each
    assert language_share("<think>internationalization 是</think>") == 0.5
    assert language_share("<think>中文</think>", "zh") == 1.0
    assert language_share("<think>123 + 4</think>") is None


def test_language_share_ignores_math_notation():
    # variables (single letters) and LaTeX control words are notation, not English
    zh = "<think>设 x = \\frac{1}{2}，则 2x = 1，所以 y 是 \\sqrt{4}</think>"
    assert language_share(zh, "zh") == 1.0
    assert language_share("<think>so x plus y, then Пусть</think>", "en") == 0.75  # 3 latin + 1 cyrillic
    assert language_share("<think>the area is π r^2, and θ = 2π/3</think>") == 1.0  # lone Greek letters: symbols
    assert language_share("<think>le système café où</think>", "fr") == 1.0
    assert language_share("<think>think without a close tag 中") == 0.8  # unclosed block runs to the end
    with pytest.raises(ValueError, match="lang must be one of"):
        language_share("<think>hello</think>", "xx")


def test_language_reward_penalises_mixing():
    s = [mk("<think>first add, then carry</think>"), mk("<think>first 加 then 进位</think>")]
    assert REWARDS.get("language")(s, lang="en") == [1.0, 0.4]


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


JUDGE_YAML = """
rewards:
  weights: {judge: 1.0}
  options:
    judge: {backend: "toy_judges:make", model: grader-1, backend_options: {flavour: strict}}
"""


def test_judge_reward_from_yaml_spec_builds_backend_once():
    import toy_judges
    from reasonlab.train.grpo_config import GRPOConfig

    cfg = from_dict(GRPOConfig, yaml.safe_load(JUDGE_YAML))
    task = get_task("arith")
    samples = [mk("<think>2+3</think><answer>5</answer>"), mk("<think>2+3</think><answer>6</answer>")]
    before = len(toy_judges.BUILT)
    for _ in range(2):  # two "steps": the spec's backend is built on the first only
        totals, comps = combine(samples, cfg.rewards.weights, cfg.rewards.options, task=task)
        assert totals == [1.0, 0.0] and comps["judge"] == [1.0, 0.0]
    assert toy_judges.BUILT[before:] == [("grader-1", {"flavour": "strict"})]


def test_judge_reward_from_base_url_spec_against_live_server():
    from live_server import live
    from reasonlab.serve import create_app

    from conftest import ScriptedGenerator

    def grade(prompt, i):
        text = prompt[-1]["content"]
        return "VERDICT: yes" if "<answer>5</answer>" in text else "looks wrong.\nVERDICT: no"

    grader = ScriptedGenerator(grade)
    with live(create_app(grader, "grader")) as url:
        options = {"judge": {"backend": "openai", "base_url": url + "/v1", "model": "grader",
                             "backend_options": {"max_retries": 0}}}
        totals, _ = combine([mk("<think>a b</think><answer>5</answer>"), mk("<answer>7</answer>"), mk("")],
                            {"judge": 1.0}, options)
    assert totals == [1.0, 0.0, 0.0] and grader.prompts_seen == 3


def test_judge_spec_errors_name_the_field(monkeypatch):
    with pytest.raises(ValueError, match="needs a backend"):
        REWARDS.get("judge")([mk("x")])
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR"):
        REWARDS.get("judge")([mk("x")], backend="openai", base_url="http://127.0.0.1:9/v1",
                             api_key_env="NO_SUCH_KEY_VAR")

from math import comb

import pytest

from reasonlab.eval.metrics import maj_at_k, majority, pass_at_k, r1_format_ok, well_formed


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (10, 3, 5), (16, 0, 4), (5, 5, 2), (20, 7, 10)])
def test_pass_at_k_matches_combinatorial_definition(n, c, k):
    expected = 1 - comb(n - c, k) / comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_1_is_fraction_correct():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def eq(a, b):
    return float(a) == float(b)


def test_majority_groups_equivalent_answers_and_skips_missing():
    answers = ["2", "3", "2.0", None, None, None, "3"]
    assert majority(answers, eq) == 0  # tie 2:2 -> first group seen
    assert majority(["1", "5", "5.0"], eq) == 1
    assert majority([None, None], eq) is None
    assert maj_at_k(["1", "5", "5.0"], [False, True, True], 3, eq) == 1.0
    assert maj_at_k(["1", "5", "5.0"], [False, True, True], 1, eq) == 0.0


def test_weighted_majority():
    assert majority(["1", "2", "2"], eq, weights=[0.9, 0.3, 0.3]) == 0


@pytest.mark.parametrize("text,ok", [
    ("<think>a</think><answer>3</answer>", True),
    ("  <think>\nx\n</think>\n<answer> 3 </answer>\n", True),
    ("<think>a</think><answer>3</answer><answer>4</answer>", False),
    ("<answer>3</answer>", False),
    ("pre <think>a</think><answer>3</answer>", False),
    ("<think>a<think>b</think><answer>3</answer>", False),
])
def test_r1_format(text, ok):
    assert r1_format_ok(text) is ok


@pytest.mark.parametrize("text,layout,ok", [
    ("<think>2 + 3 = 5</think><answer>5</answer>", True, True),
    ("<think>\n</think>\n<answer>5</answer>", True, False),  # the layout, no thinking
    ("<think>\n<answer>5</answer>\n</think>", False, False),  # answer inside the think block
    ("<think>add them</think><answer>5</answer><answer>6</answer>", False, False),
])
def test_well_formed_is_the_layout_with_real_thinking(text, layout, ok):
    """The one check the format reward, trace filters and eval/GRPO ``nonempty_think_rate`` use."""
    from reasonlab.rewards import REWARDS
    from reasonlab.types import Completion, Problem, Sample

    assert r1_format_ok(text) is layout and well_formed(text) is ok
    assert REWARDS.get("format")([Sample(Problem("p", "q", "5"), [], Completion(text))]) == [float(ok)]

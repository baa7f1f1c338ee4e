"""Ranking quality of a verifier: AUC, best-of-n against pass@1/pass@n, on held-out labelled solutions."""

import random

import pytest
import torch

from reasonlab.search.ranking import auc, evaluate_ranking, ranking_quality, split_by_problem


def test_auc_by_hand_and_against_all_pairs():
    assert auc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == 0.75
    assert auc([1, 2, 3], [False, True, True]) == 1.0 and auc([1, 2, 3], [True, False, False]) == 0.0
    assert auc([0.5] * 4, [True, False, True, False]) == 0.5
    assert auc([0.1, 0.2], [True, True]) is None
    rng = random.Random(0)
    scores = [rng.choice([0.1, 0.2, 0.3, 0.4]) for _ in range(60)]  # many ties
    labels = [rng.random() < 0.3 + s for s in scores]
    pairs = [(p, q) for p, lp in zip(scores, labels) if lp for q, lq in zip(scores, labels) if not lq]
    assert auc(scores, labels) == pytest.approx(sum((p > q) + 0.5 * (p == q) for p, q in pairs) / len(pairs))


def test_best_of_n_against_pass_at_1_and_pass_at_n():
    correct = [True, False, False, False, False, False, True, True, False, False, False, False]
    groups = [g for g in "abc" for _ in range(4)]
    oracle = ranking_quality([float(c) for c in correct], correct, groups)
    assert oracle["best_of_n"] == oracle["pass@n"] == round(2 / 3, 4) and oracle["auc"] == 1.0
    assert oracle["pass@1"] == 0.25 and oracle["n"] == 4 and oracle["problems"] == 3 and oracle["correct"] == 3
    flat = ranking_quality([0.5] * 12, correct, groups)  # ties: the expected pick, i.e. pass@1
    assert flat["best_of_n"] == flat["pass@1"] == 0.25 and flat["gain"] == 0.0 and flat["auc"] == 0.5
    backwards = ranking_quality([1.0 - c for c in correct], correct, groups)
    assert backwards["best_of_n"] == 0.0 and backwards["auc"] == 0.0 and backwards["gain"] == -0.25
    with pytest.raises(ValueError, match="one score, label and problem"):
        ranking_quality([0.1], [True, False], ["a", "a"])


def test_within_problem_auc_ignores_telling_easy_problems_from_hard():
    """A scorer that only knows which problem is easy ranks well pooled (AUC 0.75) but no better
    than chance inside a problem, and best-of-n gains nothing; ranking inside problems is what
    auc_within sees."""
    correct = [True, True, True, False, True, False, False, False]
    groups = list("aaaabbbb")
    easy = ranking_quality([0.9] * 4 + [0.1] * 4, correct, groups)
    assert easy["auc"] == 0.75 and easy["auc_within"] == 0.5 and easy["gain"] == 0.0
    inside = ranking_quality([0.6, 0.6, 0.6, 0.5, 0.2, 0.1, 0.1, 0.1], correct, groups)
    assert inside["auc_within"] == 1.0 and inside["best_of_n"] == inside["pass@n"] == 1.0
    assert ranking_quality([1.0, 0.0], [True, True], ["a", "a"])["auc_within"] is None


def test_held_out_split_is_by_problem():
    from reasonlab.types import Problem

    rows = [{"problem": Problem(f"p/{i}", "q", "1"), "steps": ["s"], "labels": [1.0]}
            for i in range(10) for _ in range(3)]
    train, held = split_by_problem(rows, held_out=0.2, seed=1)
    held_ids = {r["problem"].id for r in held}
    assert len(held_ids) == 2 and len(held) == 6 and len(train) == 24
    assert held_ids.isdisjoint(r["problem"].id for r in train)
    assert split_by_problem(rows, 0.2, seed=1) == (train, held)


def test_trained_value_model_ranks_held_out_solutions_better_than_an_untrained_one(tmp_path):
    from reasonlab.models import load_tokenizer, tiny_llama
    from reasonlab.search.scorers import RewardModelScorer, ValueModel
    from reasonlab.tasks.base import get_task
    from reasonlab.train.prm import PRMConfig, train_value_model

    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    model = ValueModel(tiny_llama(vocab_size=len(tok), hidden=32, layers=2), "prm")
    rows = []
    for p in get_task("arith").load("train", 10):
        rows += [{"problem": p, "steps": ["good\n\n", f"<answer>{p.answer}</answer>"], "labels": [0.9, 1.0]},
                 {"problem": p, "steps": ["bad\n\n", "<answer>0</answer>"], "labels": [0.1, 0.0]},
                 {"problem": p, "steps": ["bad\n\n", "<answer>1</answer>"], "labels": [0.1, 0.0]}]
    train, held = split_by_problem(rows, held_out=0.3, seed=0)
    scorer = RewardModelScorer(model, tok, prompt="plain")
    before = evaluate_ranking(scorer, held)  # zero-initialised head: every score 0.5
    assert before["auc"] == 0.5 and before["best_of_n"] == before["pass@1"] == round(1 / 3, 4)
    assert before["pass@n"] == 1.0 and before["problems"] == 3
    cfg = PRMConfig(epochs=4, batch_size=4, head_lr=3e-2, lr=3e-3, train_layers=1, prompt="plain")
    train_value_model(model, tok, train, cfg, tmp_path, progress=False)
    after = evaluate_ranking(RewardModelScorer(model, tok, prompt="plain"), held)
    assert after["auc"] > 0.9 and after["best_of_n"] == 1.0 and after["gain_ci"][0] > 0

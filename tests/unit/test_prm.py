"""PRM: Monte Carlo step labels on a scripted backend, and a tiny value model that learns them."""

import torch

from reasonlab.models import load_tokenizer, tiny_llama
from reasonlab.search.scorers import RewardModelScorer, ValueModel, split_steps
from reasonlab.tasks.base import get_task
from reasonlab.train.prm import PRMConfig, mc_labels, train_value_model
from reasonlab.types import Completion, Problem


class Rollouts:
    """Solutions: 'good\\n\\n<answer>R</answer>' or 'bad\\n\\n<answer>0</answer>'. Continuations of
    a prefix starting with 'good' are right 3 times in 4; of 'bad', never."""

    name = "rollouts"

    def __init__(self, answer):
        self.answer = answer

    def generate(self, prompts, params):
        out = []
        for m in prompts:
            if m[-1]["role"] != "assistant":
                out.append([Completion(f"good\n\n<answer>{self.answer}</answer>" if i % 2 == 0 else
                                       "bad\n\n<answer>0</answer>", (1,)) for i in range(params.n)])
            else:
                good = m[-1]["content"].startswith("good")
                out.append([Completion(f"<answer>{self.answer if good and i < 3 else 0}</answer>", (1,))
                            for i in range(params.n)])
        return out

    def sync_weights(self):
        pass


def test_split_steps_roundtrip():
    text = "a\n\nb\n\nc"
    assert split_steps(text) == ["a\n\n", "b\n\n", "c"] and "".join(split_steps(text)) == text


def test_monte_carlo_soft_labels():
    task = get_task("arith")
    p = Problem("arith/x", "What is 3 + 4?", "7")
    data = mc_labels([p], Rollouts("7"), task, PRMConfig(solutions=2, rollouts=4, prompt="plain"), progress=False)
    assert [d["steps"][0] for d in data] == ["good\n\n", "bad\n\n"]
    assert data[0]["labels"] == [0.75, 1.0] and data[1]["labels"] == [0.0, 0.0]
    orm = mc_labels([p], Rollouts("7"), task, PRMConfig(kind="orm", solutions=2, prompt="plain"), progress=False)
    assert orm[0]["labels"] == [1.0, 1.0]


class PerQuestion(Rollouts):
    """Rollouts whose right answer depends on the question, counting backend calls."""

    def __init__(self, answers):
        self.answers, self.calls = answers, 0

    def generate(self, prompts, params):
        self.calls += 1
        out = []
        for m in prompts:
            self.answer = self.answers[next(x["content"] for x in m if x["role"] == "user")]
            out += super().generate([m], params)
        return out


def test_monte_carlo_labels_batched_across_problems_stay_aligned():
    task = get_task("arith")
    answers = {"What is 3 + 4?": "7", "What is 1 + 1?": "2", "What is 5 - 1?": "4"}
    problems = [Problem(f"arith/{i}", q, a) for i, (q, a) in enumerate(answers.items())]
    backend = PerQuestion(answers)
    data = mc_labels(problems, backend, task, PRMConfig(solutions=2, rollouts=4, prompt="plain", label_batch=2),
                     progress=False)
    assert backend.calls == 4  # two chunks, each: one call for solutions, one for all continuations
    assert [d["problem"].id for d in data] == ["arith/0", "arith/0", "arith/1", "arith/1", "arith/2", "arith/2"]
    assert [d["labels"] for d in data] == [[0.75, 1.0], [0.0, 0.0]] * 3


def test_value_model_learns_and_roundtrips(tmp_path):
    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    model = ValueModel(tiny_llama(vocab_size=len(tok), hidden=32, layers=2), "prm")
    task = get_task("arith")
    problems = task.load("train", 6)
    data = []
    for p in problems:
        data += [{"problem": p, "steps": ["good\n\n", f"<answer>{p.answer}</answer>"], "labels": [0.9, 1.0]},
                 {"problem": p, "steps": ["bad\n\n", "<answer>0</answer>"], "labels": [0.1, 0.0]}]
    cfg = PRMConfig(epochs=8, batch_size=4, head_lr=3e-2, lr=3e-3, train_layers=2, prompt="plain")
    hist = train_value_model(model, tok, data, cfg, tmp_path, progress=False)
    assert torch.isfinite(torch.tensor(hist[-1]["loss"])) and hist[-1]["loss"] < hist[0]["loss"]
    model.save(tmp_path / "rm", tok, {"step_delimiter": "\n\n", "prompt": "plain"})
    scorer = RewardModelScorer.load(tmp_path / "rm")
    good, bad = scorer.score([problems[0]] * 2, ["good\n\n<answer>1</answer>", "bad\n\n<answer>0</answer>"], "min")
    assert good > bad


def test_scorer_caches_and_batches_by_length_without_changing_scores():
    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    model = ValueModel(tiny_llama(vocab_size=len(tok), hidden=32, layers=2), "prm")
    torch.nn.init.normal_(model.head.weight)
    p = Problem("arith/x", "What is 3 + 4?", "7")
    texts = ["a\n\nb", "a much longer first step with many words\n\nand a second\n\n<answer>7</answer>", "7",
             "short\n\n<answer>1</answer>"]
    alone = [RewardModelScorer(model, tok, batch_size=1).step_scores([p], [t])[0] for t in texts]
    scorer = RewardModelScorer(model, tok, batch_size=2)
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    batched = scorer.step_scores([p] * 4, texts)
    assert len(calls) == 2  # 4 texts, batches of 2
    for a, b in zip(alone, batched):
        assert len(a) == len(b) and all(abs(x - y) < 1e-5 for x, y in zip(a, b))
    again = scorer.step_scores([p] * 2, [texts[3], texts[1]])  # served from the cache
    assert len(calls) == 2 and again == [batched[3], batched[1]]


def test_scale_runner_drives_scorer_progress(tmp_path):
    """weighted_vote through run_scale with a real (tiny) PRM: every candidate scored once, and
    sampling and scoring shown as their own progress tasks."""
    from reasonlab.search import SearchConfig
    from reasonlab.search.runner import run_scale

    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)

    class Watched(RewardModelScorer):
        def step_scores(self, problems, texts):
            scores = super().step_scores(problems, texts)
            self.tasks = [t.description for t in self.bar.tasks]
            return scores

    scorer = Watched(ValueModel(tiny_llama(vocab_size=len(tok), hidden=32, layers=2), "prm"), tok)
    task = get_task("arith")
    problems = task.load("test", 3)

    class Guess:
        name, max_batch = "guess", 8

        def generate(self, prompts, params):
            return [[Completion(f"step\n\n<answer>{i}</answer>", (1,) * 3) for i in range(params.n)]
                    for _ in prompts]

    summary = run_scale(problems, task, Guess(), scorer, ["weighted_vote"], [1, 4], SearchConfig(prompt="plain"),
                        tmp_path, progress=True)
    assert [r["n"] for r in summary["strategies"]["weighted_vote"]] == [1, 4]
    assert len(scorer.cache) == 3 * 4  # n = 1 reused n = 4's scores
    assert "scoring" in scorer.tasks and "sampling n=4" in scorer.tasks

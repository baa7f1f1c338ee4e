"""The compute counter (eval/compute.py) against hand counts on toy runs: 2N per generated or
prefilled token, 6N per trained token, plus the attention term, N read from the checkpoint."""

from __future__ import annotations

import json

import pytest
import yaml

from reasonlab.eval.compute import Shape, Tokens, flops, shape_of, stage_tokens
from reasonlab.types import Completion, SamplingParams

NO_ATTENTION = lambda n: Shape(params=n, layers=1, width=0)  # noqa: E731  (the 2N / 6N terms alone)


def test_shape_is_read_from_the_checkpoint_without_loading_it(tiny_dir):
    from reasonlab.models import load

    model, _ = load(str(tiny_dir))
    s = shape_of(tiny_dir)
    assert s.params == model.num_parameters()  # a tied head counted once
    assert (s.layers, s.width) == (model.config.num_hidden_layers,
                                   model.config.num_attention_heads * model.config.head_dim)


class FixedLengths:
    """Every prompt is 5 tokens; sample i of a problem has 3 + i tokens, its text a right answer."""

    name = "fixed"

    def generate(self, prompts, params: SamplingParams):
        return [[Completion(text="</think><answer>0</answer>", token_ids=tuple(range(3 + i)),
                            prompt_token_ids=tuple(range(5))) for i in range(params.n)] for _ in prompts]

    def sync_weights(self):
        pass


def test_eval_compute_matches_a_hand_count(toy_task, tmp_path):
    from reasonlab.eval.runner import evaluate

    problems = toy_task.load("test", 4)
    evaluate(FixedLengths(), toy_task, problems, prompt_format="plain", params=SamplingParams(n=2, max_new_tokens=8),
             out_dir=tmp_path, progress=False)
    t = stage_tokens("eval", tmp_path)
    # by hand: 4 problems, each a 5-token prefill and samples of 3 and 4 tokens
    assert t.forward == 4 * (5 + 3 + 4) and t.train == 0
    n = 1000
    assert flops(t, NO_ATTENTION(n)) == 2 * n * 4 * (5 + 3 + 4)
    # attention: the prefill attends 1..5, a 3-token sample 6..8, a 4-token one 6..9; 4 * L * d each
    attended = 4 * (sum(range(1, 6)) + sum(range(6, 9)) + sum(range(6, 10)))
    assert flops(t, Shape(n, 2, 8)) == 2 * n * t.forward + 4 * 2 * 8 * attended


def test_sft_compute_is_6n_per_trained_token(tiny_dir, tmp_path):
    from reasonlab.train.sft import SFTConfig, SFTTrainer

    rows = [{"messages": [{"role": "user", "content": f"What is {i} + 1?"},
                          {"role": "assistant", "content": f"{i} plus one is {i + 1}." * (i + 1)}]} for i in range(3)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = SFTConfig(model=str(tiny_dir), data=str(data), batch_size=1, pack=False, max_len=256, dtype="fp32",
                    report_to="none", save_every=0)
    cfg.optim.micro_batch = 1
    trainer = SFTTrainer(cfg, tmp_path / "sft")
    trainer.train(progress=False)
    lengths = [len(e) for e in trainer.examples]  # one example per step, no padding
    assert len(lengths) == 3 and len(set(lengths)) == 3
    t = stage_tokens("sft", tmp_path / "sft")
    n = shape_of(tiny_dir).params
    assert t.forward == 0 and t.train == sum(lengths)
    assert flops(t, NO_ATTENTION(n)) == 6 * n * sum(lengths)
    assert t.train_ctx == sum(k * (k + 1) / 2 for k in lengths)


@pytest.mark.parametrize("mu, beta", [(1, 0.0), (2, 0.1)])
def test_grpo_compute_matches_a_hand_count(tiny_dir, tmp_path, mu, beta):
    """Two logged steps, each with its own mean prompt length (30 and 25 tokens)."""
    task = {"name": "arith", "options": {"max_number": 9}, "split": "train", "prompt": "r1"}
    cfg = {"model": str(tiny_dir), "seed": 3, "task": task, "sampling": {"group_size": 4},
           "algo": {"mu": mu, "beta": beta}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    steps = [{"step": 1, "groups_sampled": 3, "groups_kept": 2, "prompt_tokens": 90, "gen_tokens": 30,
              "loss_tokens": 20, "loss_seqs": 8},
             {"step": 2, "groups_sampled": 2, "groups_kept": 1, "prompt_tokens": 50, "gen_tokens": 16,
              "loss_tokens": 12, "loss_seqs": 4}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    t = stage_tokens("grpo", tmp_path)
    generated = 30 + 16
    trained = 2 * 30 + 20 + 1 * 25 + 12  # kept groups' prompts once + the loss's completions
    extra = (mu > 1) + (beta > 0)  # old log-probs, reference log-probs: forward only
    assert t.forward == pytest.approx(90 + 50 + generated + extra * trained)
    assert t.train == pytest.approx(mu * trained)
    n = shape_of(tiny_dir).params
    assert flops(t, NO_ATTENTION(n)) == pytest.approx(2 * n * t.forward + 6 * n * mu * trained)


def test_tokens_add_and_scale():
    a = Tokens(1, 2, 3, 4) + Tokens(1, 1, 1, 1).scaled(2)
    assert a == Tokens(3, 4, 5, 6)

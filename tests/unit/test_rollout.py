"""DAPO dynamic sampling, over-provisioned: one generate call a step when the running keep rate
suffices, a fallback round when it does not, kept groups in draw order, the draw size from the
keep rate, and a resumed run (data position + keep rate from the checkpoint) drawing exactly what
an uninterrupted one does, in ``collect`` with a call-counting fake generator and in the trainer."""

import math
import shutil

import pytest
import torch

from reasonlab.config import ConfigError, from_dict
from reasonlab.train.grpo_config import GRPOConfig
from reasonlab.train.rollout import ProblemStream, blend, collect, groups_to_draw
from reasonlab.types import Completion
from test_grpo import tiny_config


class RecordingGenerator:
    """Group of problem ``q<i>``: one correct answer and the rest wrong when ``informative(i)``
    (unequal rewards), all wrong otherwise (a flat group). Records each call's questions and seed."""

    def __init__(self, informative):
        self.informative, self.calls = informative, []

    def generate(self, prompts, params):
        questions = [p[-1]["content"] for p in prompts]
        self.calls.append((tuple(questions), params.seed))
        out = []
        for q in questions:
            right = self.informative(int(q[1:]))
            texts = [f"\\boxed{{{q[1:]}}}" if right and j == 0 else "no" for j in range(params.n)]
            out.append([Completion(text=t, token_ids=(1, 2, 3), finish_reason="stop",
                                   prompt_token_ids=tuple(range(len(q)))) for t in texts])
        return out


def config(**sampling) -> GRPOConfig:
    s = {"prompts_per_step": 4, "group_size": 2, "dynamic_sampling": True, "max_sampling_rounds": 3, **sampling}
    return from_dict(GRPOConfig, {"seed": 1, "task": {"prompt": "plain"},
                                  "rewards": {"weights": {"accuracy": 1.0}}, "sampling": s})


def run(cfg, gen, toy_task, steps, pos=0, keep_rate=None):
    """``steps`` rollouts from data position ``pos``; returns (rollouts, stream)."""
    stream = ProblemStream(toy_task.load(), seed=cfg.seed, pos=pos)
    rolls = []
    for step in steps:
        rolls.append(collect(gen, toy_task, stream, cfg, step, keep_rate=keep_rate))
        keep_rate = rolls[-1].keep_rate
    return rolls, stream


def kept_questions(roll) -> list[str]:
    return [s.problem.question for s in roll.samples[::2]]


@pytest.fixture
def toy40(toy_task):
    toy_task.size = 40
    return toy_task


def test_one_generate_call_when_the_estimate_suffices(toy40):
    """2 in 3 groups informative: the prior (0.7) sizes one draw that holds 4 informative groups,
    where drawing only what is missing (``oversample_max: 1``, DAPO's rounds) takes several calls."""
    gen = RecordingGenerator(lambda i: i % 3 != 1)
    (roll,), _ = run(config(), gen, toy40, [0])
    drawn = groups_to_draw(4, 0.7, 2.0)
    assert drawn > 4 and len(gen.calls) == 1 and len(gen.calls[0][0]) == drawn
    assert roll.rounds == 1 and roll.groups_sampled == drawn and len(roll.samples) == 4 * 2
    # the kept groups are the first informative ones in draw order, the later ones dropped
    informative = [q for q in gen.calls[0][0] if int(q[1:]) % 3 != 1]
    assert roll.groups_informative == len(informative) > 4
    assert kept_questions(roll) == informative[:4]
    assert roll.keep_rate == pytest.approx(blend(0.7, len(informative), drawn))
    # what eval/compute.py counts: each drawn prompt prefilled once, every completion token
    assert roll.prompt_tokens == sum(len(q) for q in gen.calls[0][0]) and roll.tokens == drawn * 2 * 3
    rounds = RecordingGenerator(lambda i: i % 3 != 1)
    (old,), _ = run(config(oversample_max=1.0), rounds, toy40, [0])
    assert len(rounds.calls) == old.rounds > 1 and len(rounds.calls[0][0]) == 4


def test_fallback_round_when_the_estimate_falls_short(toy40):
    """1 in 4 informative: the first draw (sized for a 0.7 keep rate) falls short, and a second
    round, sized by the keep rate updated with what the first found, tops the step up."""
    gen = RecordingGenerator(lambda i: i % 4 == 0)
    cfg = config(oversample_max=3.0, max_sampling_rounds=2)
    (roll,), stream = run(cfg, gen, toy40, [0])
    first = groups_to_draw(4, 0.7, 3.0)
    assert len(gen.calls) == 2 == roll.rounds
    (q1, seed1), (q2, seed2) = gen.calls
    found = sum(int(q[1:]) % 4 == 0 for q in q1)
    assert len(q1) == first and found < 4
    assert len(q2) == groups_to_draw(4 - found, blend(0.7, found, first), 3.0)
    assert seed1 != seed2 and stream.pos == len(q1) + len(q2) == roll.groups_sampled
    assert roll.keep_rate < 0.7


def test_draw_size_follows_the_keep_rate():
    assert groups_to_draw(8, 1.0, 2.0) == 8  # everything informative: no over-provisioning
    assert groups_to_draw(8, 0.7, 1.0) == 8  # oversample_max 1: only what is missing
    assert groups_to_draw(8, 0.01, 2.0) == 16  # capped
    sizes = [groups_to_draw(8, p, 4.0) for p in (0.99, 0.9, 0.7, 0.5)]
    assert sizes == sorted(sizes) and sizes[0] == 8 < sizes[1] < sizes[-1] < 32

    def enough(n, p):  # P(at least 8 of n groups informative)
        return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(8, n + 1))

    n = groups_to_draw(8, 0.7, 4.0)  # the fewest n that suffice 4 times in 5
    assert enough(n, 0.7) >= 0.8 > enough(n - 1, 0.7)


def test_resumed_rollouts_draw_like_an_uninterrupted_run(toy40):
    """Steps 2-4 after a 'checkpoint' at step 2 (data position + keep rate) make the same calls
    (questions, seeds) as an uninterrupted run; resuming the position alone (keep rate back at its
    prior) would not."""
    cfg, informative = config(), (lambda i: i % 10 != 0)
    straight = RecordingGenerator(informative)
    rolls, end = run(cfg, straight, toy40, range(4))
    first = RecordingGenerator(informative)
    head, stream = run(cfg, first, toy40, range(2))
    saved = {"pos": stream.pos, "keep_rate": head[-1].keep_rate}
    resumed = RecordingGenerator(informative)
    tail, end2 = run(cfg, resumed, toy40, range(2, 4), pos=saved["pos"], keep_rate=saved["keep_rate"])
    assert first.calls + resumed.calls == straight.calls and end2.pos == end.pos
    assert [r.keep_rate for r in head + tail] == [r.keep_rate for r in rolls]
    forgetful = RecordingGenerator(informative)
    run(cfg, forgetful, toy40, range(2, 4), pos=saved["pos"])
    assert forgetful.calls != resumed.calls


def test_config_checks_the_new_fields():
    with pytest.raises(ConfigError, match=r"sampling\.oversample_max: must be >= 1"):
        config(oversample_max=0.5)
    with pytest.raises(ConfigError, match=r"sampling\.keep_rate_prior: must be in \(0, 1\]"):
        config(keep_rate_prior=0.0)


def test_trainer_checkpoints_the_keep_rate_and_resumes_the_same_draws(tmp_path, tiny_dir):
    """On the tiny model: a run resumed from its step-2 checkpoint draws step 3 exactly as the
    uninterrupted run did (same questions, same seed, same number of groups), with the keep rate
    restored from ``trainer_state.pt``; the step's metrics say how many groups and rounds it took."""
    from reasonlab.train.grpo import GRPOTrainer

    cfg = from_dict(GRPOConfig, tiny_config(tiny_dir, steps=3, save_every=1, sampling={
        "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 8, "dynamic_sampling": True}))

    def recorded(trainer):
        calls, real = [], trainer.sampler.generate

        def generate(prompts, params):
            calls.append(([p[-2]["content"] for p in prompts], params.seed))
            return real(prompts, params)

        trainer.sampler.generate = generate
        return calls

    straight = GRPOTrainer(cfg, tmp_path / "a")
    calls_a = recorded(straight)
    history = straight.train(progress=False)
    assert straight.keep_rate != cfg.sampling.keep_rate_prior
    for m in history:
        assert m["sampling_rounds"] >= 1 and m["groups_sampled"] >= m["groups_informative"] >= m["groups_kept"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step-3")
    resumed = GRPOTrainer(cfg, tmp_path / "b")
    calls_b = recorded(resumed)
    assert resumed.resume_if_possible() and resumed.step == 2
    saved = torch.load(tmp_path / "b" / "checkpoints" / "step-2" / "trainer_state.pt", weights_only=False)
    assert resumed.keep_rate == saved["data"]["keep_rate"] != cfg.sampling.keep_rate_prior
    resumed.train(progress=False)
    step3 = [c for c in calls_a if c[1] // 1000 == cfg.seed * 7919 + 2]
    assert calls_b == step3 and resumed.keep_rate == straight.keep_rate


def test_train_pass_at_k_counts_every_drawn_group(toy40):
    """The flat (all-wrong) groups dynamic sampling drops still count in the train pass@k:
    informative groups have 1 of 2 right, flat ones 0 of 2, so pass@1 = 0.5 x the informative share
    and pass@2 = that share, over all drawn groups, where ``accuracy`` (kept groups only) says 0.5."""
    from reasonlab.train.grpo import train_pass_at_k

    gen = RecordingGenerator(lambda i: i % 3 != 1)
    (roll,), _ = run(config(), gen, toy40, [0])
    informative = sum(int(q[1:]) % 3 != 1 for q in gen.calls[0][0])
    assert len(roll.group_correct) == roll.groups_sampled > len(roll.samples) // 2
    share = informative / roll.groups_sampled
    got = train_pass_at_k(roll.group_correct, 2)
    assert got == {"train_pass@1": pytest.approx(share / 2), "train_pass@2": pytest.approx(share)}
    assert train_pass_at_k([], 2) == {} and train_pass_at_k([(0, 0)], 2) == {}

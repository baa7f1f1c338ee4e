"""GRPO off-policy pieces on a tiny random Llama: the sampler/trainer log-prob gap metric, truncated
importance sampling (TIS) reaching the gradient, ``correction: auto``, and sharded training refused."""

import copy
import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from reasonlab.config import ConfigError, from_dict
from reasonlab.train.grpo_config import GRPOConfig
from test_grpo import tiny_config

SAMPLING = {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 12, "temperature": 0.5}


def make_trainer(tmp_path, model_dir, **algo):
    from reasonlab.train.grpo import GRPOTrainer

    cfg = tiny_config(model_dir, steps=3, save_every=0, sampling=SAMPLING, algo=algo)
    return GRPOTrainer(from_dict(GRPOConfig, cfg), tmp_path)


def test_sampler_logprob_gap_is_tiny_when_synced_and_large_when_stale(tmp_path, tiny_dir):
    """fp32 sampler and trainer on the same weights agree to rounding, at temperature 0.5 too (the
    trainer scores at the sampling temperature); weights changed behind the sampler's back (no
    ``sync_weights``) show up as a large gap."""
    trainer = make_trainer(tmp_path, tiny_dir)
    synced = trainer.train_step()  # syncs the sampler after its update
    assert 0 <= synced["sampler_logprob_diff"] <= synced["sampler_logprob_diff_max"] < 0.005
    g = torch.Generator().manual_seed(0)
    for p in trainer.model.parameters():  # new storage: the sampler keeps reading the old weights
        p.data = p.data + 0.05 * torch.randn(p.shape, generator=g)
    stale = trainer.train_step()
    assert stale["sampler_logprob_diff"] > 0.05
    assert stale["sampler_logprob_diff"] <= stale["sampler_logprob_diff_max"]


def with_logprobs(roll, fn):
    """The rollout with every completion's sampler log-probs mapped through ``fn``."""
    samples = [replace(s, completion=replace(s.completion, logprobs=fn(s.completion.logprobs)))
               for s in roll.samples]
    return replace(roll, samples=samples)


def test_tis_weights_scale_the_gradient_and_are_capped(tmp_path, tiny_dir):
    """On-policy the trainer's and sampler's log-probs agree, so shifting the sampler's by log 2
    makes every weight 1/2 (gradient halved) and by -log 4 makes it 4, capped at 2 (doubled)."""
    from reasonlab.train.rollout import collect

    trainer = make_trainer(tmp_path, tiny_dir, correction="tis", tis_cap=2.0)
    roll = collect(trainer.sampler, trainer.task, trainer.stream, trainer.cfg, 0)
    weights = copy.deepcopy(trainer.model.state_dict())

    def grad_norm(shift: float) -> float:
        trainer.model.load_state_dict(weights)
        return trainer.policy_update(with_logprobs(roll, lambda lps: tuple(x + shift for x in lps)))["grad_norm"]

    base = grad_norm(0.0)
    assert base > 0
    assert grad_norm(math.log(2)) == pytest.approx(base / 2, rel=1e-3)
    assert grad_norm(-math.log(4)) == pytest.approx(base * 2, rel=1e-3)


@pytest.mark.parametrize("correction", ["tis", "none"])
def test_a_backend_without_logprobs_refuses_tis_and_trains_without_it(tmp_path, tiny_dir, correction):
    trainer = make_trainer(tmp_path, tiny_dir, correction=correction)
    real = trainer.sampler.generate
    trainer.sampler.generate = lambda prompts, params: [[replace(c, logprobs=None) for c in cs]
                                                       for cs in real(prompts, params)]
    if correction == "tis":
        with pytest.raises(ConfigError, match=r"^algo\.correction: tis needs the sampler's per-token log-probs"):
            trainer.train_step()
    else:
        m = trainer.train_step()
        assert m["grad_norm"] > 0 and m["sampler_logprob_diff"] is None


@pytest.mark.parametrize("backend, correction, resolved", [
    ("hf", "auto", "none"), ("vllm", "auto", "tis"), ("hf", "tis", "tis"), ("vllm", "none", "none")])
def test_correction_auto_is_off_only_for_our_own_sampler(backend, correction, resolved):
    cfg = from_dict(GRPOConfig, {"backend": {"name": backend}, "algo": {"correction": correction}})
    assert cfg.correction_name() == resolved


def test_unknown_correction_and_bad_cap_fail_at_load():
    with pytest.raises(ConfigError, match=r"algo\.correction: unknown importance-sampling correction"):
        from_dict(GRPOConfig, {"algo": {"correction": "tiss"}})
    with pytest.raises(ConfigError, match=r"algo\.tis_cap: must be > 0"):
        from_dict(GRPOConfig, {"algo": {"tis_cap": 0}})


def test_sharded_training_is_refused_in_one_line():
    from accelerate.utils import DistributedType

    from reasonlab.train.grpo import refuse_sharded

    for kind, plugin in [(DistributedType.FSDP, None), (DistributedType.DEEPSPEED, SimpleNamespace(zero_stage=3))]:
        with pytest.raises(ConfigError) as err:
            refuse_sharded(kind, plugin, "hf")
        msg = str(err.value)
        assert msg.startswith("FSDP / ZeRO-3 sharded training is not supported with the hf sampler yet")
        assert "--multi_gpu" in msg and "\n" not in msg
    for kind, plugin in [(DistributedType.NO, None), (DistributedType.MULTI_GPU, None),
                         (DistributedType.DEEPSPEED, SimpleNamespace(zero_stage=2))]:
        refuse_sharded(kind, plugin, "hf")  # DDP and ZeRO-1/2 keep whole weights on every process

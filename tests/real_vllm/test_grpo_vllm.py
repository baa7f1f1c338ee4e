"""GRPO with ``backend: vllm``: the engine follows the trainer (``sampler_logprob_diff`` stays at
fp32 noise every step), and without the weight sync the gap grows: the test can fail."""

import os

import pytest

pytest.importorskip("vllm.entrypoints.llm",
                    reason="vLLM is not installed here: make test-vllm runs tests/real_vllm in .venv-vllm")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from reasonlab.config import from_dict
from reasonlab.train.grpo_config import GRPOConfig


def config(**extra):
    cfg = {"model": "smollm2-135m", "steps": 3, "dtype": "fp32", "seed": 0, "report_to": "none",
           "save_every": 0, "backend": {"name": "vllm", "options": {"max_model_len": 512, "max_num_seqs": 16}},
           "task": {"name": "arith", "prompt": "r1"}, "algo": {"correction": "none"},
           "sampling": {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 24, "dynamic_sampling": False},
           "optim": {"lr": 1e-4, "micro_batch": 8, "warmup_steps": 0}}
    cfg.update(extra)
    return from_dict(GRPOConfig, cfg)


def run(tmp_path, monkeypatch, sync: bool):
    from reasonlab.backends.vllm import VLLMGenerator
    from reasonlab.train.grpo import GRPOTrainer

    if not sync:
        monkeypatch.setattr(VLLMGenerator, "sync_weights", lambda self: None)
    trainer = GRPOTrainer(config(), tmp_path)
    try:
        return trainer.train(progress=False)
    finally:
        trainer.sampler.llm.llm_engine.engine_core.shutdown()


def test_weights_follow_the_trainer(tmp_path, monkeypatch):
    hist = run(tmp_path / "synced", monkeypatch, sync=True)
    gaps = [h["sampler_logprob_diff"] for h in hist]
    assert len(gaps) == 3 and all(g <= 0.02 for g in gaps), gaps


def test_without_the_sync_the_gap_grows(tmp_path, monkeypatch):
    hist = run(tmp_path / "stale", monkeypatch, sync=False)
    gaps = [h["sampler_logprob_diff"] for h in hist]
    assert gaps[0] <= 0.02 and gaps[-1] > 0.05, gaps

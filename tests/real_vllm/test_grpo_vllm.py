"""GRPO with ``backend: vllm``: the engine follows the trainer (``sampler_logprob_diff`` stays at
fp32 noise every step), and without the weight sync the gap grows: the test can fail; a run
killed with SIGKILL resumes exactly."""

import os

import pytest

pytest.importorskip("vllm.entrypoints.llm",
                    reason="vLLM is not installed here: make test-vllm runs tests/real_vllm in .venv-vllm")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from reasonlab.config import from_dict
from reasonlab.train.grpo_config import GRPOConfig


RAW = {"model": "smollm2-135m", "steps": 3, "dtype": "fp32", "seed": 0, "report_to": "none",
       "save_every": 0, "backend": {"name": "vllm", "options": {"max_model_len": 512, "max_num_seqs": 16}},
       "task": {"name": "arith", "prompt": "r1"}, "algo": {"correction": "none"},
       "sampling": {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 24, "dynamic_sampling": False},
       "optim": {"lr": 1e-4, "micro_batch": 8, "warmup_steps": 0}}


def config(**extra):
    return from_dict(GRPOConfig, {**RAW, **extra})


def run(tmp_path, monkeypatch, sync: bool):
    from reasonlab.backends.vllm import VLLMGenerator
    from reasonlab.train.grpo import GRPOTrainer

    if not sync:
        monkeypatch.setattr(VLLMGenerator, "sync_weights", lambda self: None)
    trainer = GRPOTrainer(config(), tmp_path)
    try:
        return trainer.train(progress=False)
    finally:
        trainer.sampler.close()


def test_weights_follow_the_trainer(tmp_path, monkeypatch):
    hist = run(tmp_path / "synced", monkeypatch, sync=True)
    gaps = [h["sampler_logprob_diff"] for h in hist]
    assert len(gaps) == 3 and all(g <= 0.02 for g in gaps), gaps


def test_without_the_sync_the_gap_grows(tmp_path, monkeypatch):
    hist = run(tmp_path / "stale", monkeypatch, sync=False)
    gaps = [h["sampler_logprob_diff"] for h in hist]
    assert gaps[0] <= 0.02 and gaps[-1] > 0.05, gaps


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    """``reasonlab train grpo`` with ``backend: vllm``, killed after its step-1 checkpoint and run
    again: the engine is rebuilt, takes the checkpoint's weights, and the run ends where an
    uninterrupted one does (same rewards every step, same final weights)."""
    import json

    import torch
    import yaml
    from faults import kill_when, run
    from safetensors.torch import load_file

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**RAW, "steps": 2, "save_every": 1, "keep_last": 3}))
    args = lambda out: ["train", "grpo", "--config", str(cfg), "--out", str(out)]  # noqa: E731
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(args(straight), timeout=900)
    kill_when(args(killed), killed / "checkpoints" / "step-1" / "trainer_state.pt", timeout=600)
    assert not (killed / "checkpoints" / "step-2").exists()
    r = run(args(killed), timeout=900)
    assert "resumed from step" in r.stderr + r.stdout
    a, b = (load_file(d / "checkpoints" / "step-2" / "model.safetensors") for d in (straight, killed))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    m1, m2 = ([json.loads(x)["reward"] for x in (d / "metrics.jsonl").read_text().splitlines()]
              for d in (straight, killed))
    assert m1 == m2 and len(m1) == 2
